"""Evaluation metrics for language models and sequence-to-sequence models.

For a model that assigns probability ``p(w_t | w_{<t})`` to each of ``N`` tokens,

* cross-entropy   ``J = -(1/N) Σ_t log p(w_t | w_{<t})``   (nats per token),
* perplexity      ``PP = exp(J)``,
* bits per char   ``BPC = J / log 2``   (when the tokens are characters).

For predicted output sequences compared with reference sequences (grapheme-to-phoneme
conversion, where a word may have several correct pronunciations),

* edit distance        the Levenshtein distance between two sequences,
* word error rate      the share of predictions equal to none of their references,
* phoneme error rate   edit operations per reference symbol, against the closest reference.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Sequence

import torch
import torch.nn.functional as F

from course_lib.data.padding import length_mask


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int | None = None
) -> torch.Tensor:
    """Mean negative log-likelihood in nats.

    Args:
        logits: unnormalised scores, shape ``(N, V)`` or ``(T, B, V)``.
        targets: token ids, shape ``(N,)`` or ``(T, B)``.
        ignore_index: a target id (usually ``<pad>``) whose positions are left out.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} need targets of shape {tuple(logits.shape[:-1])}, "
            f"got {tuple(targets.shape)}"
        )
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=-100 if ignore_index is None else ignore_index,
    )


def mean_negative_log_likelihood(log_probs: Iterable[float]) -> float:
    """``J = -(1/N) Σ log p`` from the natural-log probabilities of ``N`` predicted tokens."""
    total, count = 0.0, 0
    for log_prob in log_probs:
        total -= log_prob
        count += 1
    if count == 0:
        raise ValueError("cannot average over zero tokens: the evaluation data is empty")
    return total / count


def perplexity(nll: float | torch.Tensor) -> float:
    """Perplexity ``exp(J)`` from a mean negative log-likelihood ``J`` in nats (``inf`` stays ``inf``)."""
    nll = float(nll)
    return math.inf if nll > 700 else math.exp(nll)


def bits_per_character(nll: float | torch.Tensor) -> float:
    """Convert a mean negative log-likelihood per character from nats to bits."""
    return float(nll) / math.log(2)


def masked_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    lengths: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy over the real positions of a padded batch, in nats.

        J = Σ_{t,b} m_{t,b} · (−log softmax(z_{t,b})[y_{t,b}]) / Σ_{t,b} m_{t,b},

    with m_{t,b} = 1 at real positions and 0 at padding. Targets at padded positions may hold
    any id (they are never looked at). This is :func:`cross_entropy` with ``ignore_index`` when
    the padding is marked by a padding id, but it needs no special id.

    Args:
        logits: z, shape (T, B, C).
        targets: y, class ids, shape (T, B).
        lengths: n_b, shape (B,), marking m_{t,b} = [t < n_b]; give this or ``mask``.
        mask: m, a BoolTensor of shape (T, B).

    Returns:
        J, a scalar tensor.
    """
    if logits.dim() != 3 or logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"need logits of shape (T, B, C) and targets of shape (T, B), "
            f"got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if (lengths is None) == (mask is None):
        raise ValueError("give exactly one of lengths and mask")
    if mask is None:
        lengths = torch.as_tensor(lengths, device=logits.device)
        if lengths.shape != targets.shape[1:]:
            raise ValueError(f"need one length per sequence ({targets.shape[1]}), got {tuple(lengths.shape)}")
        mask = length_mask(lengths, targets.shape[0])
    if mask.shape != targets.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a BoolTensor of shape {tuple(targets.shape)}, got {mask.dtype} {tuple(mask.shape)}"
        )
    if not mask.any():
        raise ValueError("the mask has no real position: the mean is undefined")
    return F.cross_entropy(logits[mask], targets[mask])


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """The Levenshtein distance: the fewest insertions, deletions and substitutions turning a into b.

    Dynamic programming over prefixes, D[i][j] = distance between a[:i] and b[:j]:

        D[i][0] = i,   D[0][j] = j,
        D[i][j] = min(D[i-1][j] + 1, D[i][j-1] + 1, D[i-1][j-1] + [a_i ≠ b_j]),

    kept one row at a time (O(|a|·|b|) time, O(|b|) memory). Works on any sequences of
    comparable items: strings (characters), tuples of phonemes, lists of words.
    """
    previous = list(range(len(b) + 1))
    for i, item_a in enumerate(a, start=1):
        current = [i]
        for j, item_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item_a != item_b)))
        previous = current
    return previous[-1]


def _check_references(
    predictions: Sequence[Sequence[Hashable]], references: Sequence[Collection[Sequence[Hashable]]]
) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions for {len(references)} reference sets")
    if not predictions:
        raise ValueError("no predictions to score")
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise TypeError(
                f"references[{i}] is the string {refs!r}; give a list of references for every "
                f"prediction, e.g. [{refs!r}]"
            )
        if len(refs) == 0:
            raise ValueError(f"prediction {i} has no reference")


def word_error_rate(
    predictions: Sequence[Sequence[Hashable]], references: Sequence[Collection[Sequence[Hashable]]]
) -> float:
    """The share of predictions that equal none of their references (0 = all right, 1 = all wrong).

    This is the word error rate of grapheme-to-phoneme conversion: a word counts as an error
    unless its predicted pronunciation is exactly one of the dictionary's pronunciations.

    Args:
        predictions: one predicted sequence per item (e.g. a tuple of phonemes).
        references: for every item, a non-empty collection of correct sequences.
    """
    _check_references(predictions, references)
    pairs = zip(predictions, references, strict=True)
    wrong = sum(tuple(prediction) not in {tuple(r) for r in refs} for prediction, refs in pairs)
    return wrong / len(predictions)


def phoneme_error_rate(
    predictions: Sequence[Sequence[Hashable]], references: Sequence[Collection[Sequence[Hashable]]]
) -> float:
    """Edit operations per reference symbol, against the closest reference of every item.

        PER = Σ_i d(p_i, r*_i) / Σ_i |r*_i|,   r*_i = argmin_{r ∈ R_i} d(p_i, r),

    with d = :func:`edit_distance` and ties between references going to the first listed.
    It can exceed 1 when predictions are longer than their references.

    Args:
        predictions: one predicted sequence per item.
        references: for every item, a non-empty collection of correct sequences.
    """
    _check_references(predictions, references)
    errors, length = 0, 0
    for prediction, refs in zip(predictions, references, strict=True):
        distance, closest = min(((edit_distance(prediction, r), r) for r in refs), key=lambda pair: pair[0])
        errors += distance
        length += len(closest)
    if length == 0:
        raise ValueError("the closest references are all empty: the rate is undefined")
    return errors / length
