"""Evaluation metrics for language models.

For a model that assigns probability ``p(w_t | w_{<t})`` to each of ``N`` tokens,

* cross-entropy   ``J = -(1/N) Σ_t log p(w_t | w_{<t})``   (nats per token),
* perplexity      ``PP = exp(J)``,
* bits per char   ``BPC = J / log 2``   (when the tokens are characters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
