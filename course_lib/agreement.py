"""Subject–verb agreement: one measurement for every kind of language model of the course.

An agreement item (``course_lib.data.grammar.agreement_examples``) is a sentence prefix that
ends just before the main verb, with the verb in the right number and in the wrong one::

    the writer of the books | is / are

A model *prefers the correct form* when P(correct | prefix) > P(wrong | prefix). Over a set
of items, the **agreement accuracy** is the percentage of items where it does, ties counting
half: 50% is what a model that ignores the subject gets on average.

Two kinds of model are scored:

* **n-gram models** (``course_lib.ngram``), through ``model.prob(word, context)``. The prefix is
  padded with ``<s>`` · (n − 1), as in training.
* **torch language models** with the course interface
  ``model(inputs (T, B), state) -> (logits (T, B, V), state)``: fixed-window, RNN, LSTM, GRU.
  The model starts from its initial state (``state=None``) and reads ``</s>`` and then the
  prefix, as when it generates a sentence: in a stream of training sentences, ``</s>`` is
  where a new sentence starts. Another history can be given, one for all items or one per
  item; :func:`preceding_sentences` builds histories of whole sentences, which put a model
  trained on a stream with its state carried over in the kind of state it was trained in.
  The softmax keeps the order of the logits, so the choice compares the logits of the two
  verbs at the last position; :func:`verb_log_probs` gives the log-probabilities.

Items of different lengths are batched by padding them at the end; the models are causal
(the output at position t depends only on the inputs up to t), so padding after an item's last
position does not change its scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from course_lib.data.grammar import AgreementExample
from course_lib.vocab import BOS, EOS, Vocabulary

History = Sequence[str] | Sequence[Sequence[str]]
"""The tokens a torch model reads before each prefix: one list for all items, or one per item."""


def choices_from_scores(correct: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """Per item: 1.0 if ``correct > wrong``, 0.0 if ``correct < wrong``, 0.5 for a tie.

    ``correct`` and ``wrong`` are scores that increase with the probability (probabilities,
    log-probabilities or logits), shape (N,) each.
    """
    correct, wrong = np.asarray(correct), np.asarray(wrong)
    if correct.shape != wrong.shape or correct.ndim != 1:
        raise ValueError(
            f"need two score arrays of the same shape (N,), got {correct.shape} and {wrong.shape}"
        )
    return (correct > wrong) + 0.5 * (correct == wrong)


def agreement_accuracy(choices: Sequence[float] | np.ndarray) -> float:
    """Percentage of items where the correct verb is preferred (the mean of the choices × 100)."""
    choices = np.asarray(choices, dtype=float)
    if choices.size == 0:
        raise ValueError("cannot compute an accuracy over zero items")
    return float(100 * np.mean(choices))


def _is_ngram_model(model: object) -> bool:
    return hasattr(model, "prob") and hasattr(model, "order") and not isinstance(model, nn.Module)


def _check_items(items: Sequence[AgreementExample]) -> list[AgreementExample]:
    items = list(items)
    if not items:
        raise ValueError("no agreement items were given")
    return items


def _ngram_probs(model, items: list[AgreementExample]) -> tuple[np.ndarray, np.ndarray]:
    """P(correct | <s>^{n−1} prefix) and P(wrong | same), shape (N,) each."""
    padding = [BOS] * (model.order - 1)
    correct = np.array([model.prob(item.correct, padding + list(item.prefix)) for item in items])
    wrong = np.array([model.prob(item.wrong, padding + list(item.prefix)) for item in items])
    return correct, wrong


def preceding_sentences(
    sentences: Sequence[Sequence[str]], n_items: int, per_item: int = 2
) -> list[list[str]]:
    """Per-item histories made of whole sentences, each followed by ``</s>``.

    Item i reads sentences ``per_item · i`` … ``per_item · i + per_item − 1`` of ``sentences``
    (for example unrelated test sentences) before its prefix, so that a recurrent model meets
    the prefix in a state like those of training, where a sentence always follows other
    sentences. A model trained with its state carried from chunk to chunk has rarely started
    from the zero state, and can behave badly there.

    Returns:
        ``n_items`` token lists, to pass as ``history``.
    """
    if per_item < 1:
        raise ValueError(f"per_item must be at least 1, got {per_item}")
    if len(sentences) < per_item * n_items:
        raise ValueError(f"need {per_item * n_items} sentences for {n_items} items, got {len(sentences)}")
    histories = []
    for i in range(n_items):
        history: list[str] = []
        for sentence in sentences[per_item * i : per_item * (i + 1)]:
            history.extend([*sentence, EOS])
        histories.append(history)
    return histories


def _histories(history: History | None, n_items: int) -> list[list[str]]:
    """One token list per item: ``[</s>]`` by default, or the shared or per-item history given."""
    if history is None:
        return [[EOS]] * n_items
    if isinstance(history, str):
        raise TypeError("history must be a list of tokens (or one list per item), not a string")
    history = list(history)
    if not history or isinstance(history[0], str):
        return [list(history)] * n_items
    if len(history) != n_items:
        raise ValueError(
            f"got {len(history)} histories for {n_items} items: give one per item, or one for all"
        )
    return [list(h) for h in history]


@torch.no_grad()
def _lm_logits(
    model: nn.Module,
    vocab: Vocabulary,
    items: list[AgreementExample],
    history: History | None,
    device: torch.device | str | None,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits of the correct and wrong verbs after each prefix, and the log-normaliser.

    Returns three float64 arrays of shape (N,): z_correct, z_wrong and log Σ_w exp(z_w), all
    at the last position of ``history + prefix``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if device is None:
        device = next(model.parameters()).device
    texts = [h + list(item.prefix) for h, item in zip(_histories(history, len(items)), items, strict=True)]
    if min(map(len, texts)) == 0:
        raise ValueError("an item has an empty history and an empty prefix: there is nothing to read")
    correct_ids = torch.tensor(vocab.encode([item.correct for item in items]))
    wrong_ids = torch.tensor(vocab.encode([item.wrong for item in items]))
    pad_id = vocab.token_to_id.get(EOS, 0)
    was_training = model.training
    model.eval()
    z_correct, z_wrong, log_norm = [], [], []
    try:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            lengths = torch.tensor([len(text) for text in batch])
            ids = torch.full((int(lengths.max()), len(batch)), pad_id, dtype=torch.long)
            for b, text in enumerate(batch):
                ids[: len(text), b] = torch.tensor(vocab.encode(text))
            logits, _ = model(ids.to(device), None)
            last = logits[lengths.to(logits.device) - 1, torch.arange(len(batch), device=logits.device)]
            last = last.double().cpu()  # (B, V)
            rows = torch.arange(len(batch))
            z_correct.append(last[rows, correct_ids[start : start + len(batch)]])
            z_wrong.append(last[rows, wrong_ids[start : start + len(batch)]])
            log_norm.append(torch.logsumexp(last, dim=-1))
    finally:
        model.train(was_training)
    return tuple(torch.cat(part).numpy() for part in (z_correct, z_wrong, log_norm))


def verb_log_probs(
    model,
    items: Sequence[AgreementExample],
    vocab: Vocabulary | None = None,
    history: History | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """ln P(correct verb | prefix) and ln P(wrong verb | prefix) for every item, shape (N,) each.

    Args:
        model: an n-gram model (``.prob(word, context)``) or a torch language model
            (``model(inputs (T, B), state) -> (logits (T, B, V), state)``).
        items: agreement items.
        vocab: the torch model's vocabulary (not used for n-gram models).
        history: tokens a torch model reads before each prefix, ``[</s>]`` by default; one list
            for all items or one list per item. n-gram models always pad with ``<s>``.
        device: where to run a torch model (default: where its parameters are).
        batch_size: items per forward pass.
    """
    items = _check_items(items)
    if _is_ngram_model(model):
        if history is not None:
            raise ValueError(
                "n-gram models read the prefix after their <s> padding; history is for torch models"
            )
        correct, wrong = _ngram_probs(model, items)
        with np.errstate(divide="ignore"):
            return np.log(correct), np.log(wrong)
    if vocab is None:
        raise ValueError("a torch language model needs its vocabulary (vocab=...) to encode the prefixes")
    z_correct, z_wrong, log_norm = _lm_logits(model, vocab, items, history, device, batch_size)
    return z_correct - log_norm, z_wrong - log_norm


def agreement_choices(
    model,
    items: Sequence[AgreementExample],
    vocab: Vocabulary | None = None,
    history: History | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Per item: 1.0 if the model prefers the correct verb, 0.0 if the wrong one, 0.5 for a tie.

    Arguments as for :func:`verb_log_probs`. n-gram models compare the two probabilities,
    torch models the two logits at the last position (the same order as the probabilities).

    Returns:
        shape (N,); :func:`agreement_accuracy` turns it into a percentage.
    """
    items = _check_items(items)
    if _is_ngram_model(model):
        if history is not None:
            raise ValueError(
                "n-gram models read the prefix after their <s> padding; history is for torch models"
            )
        return choices_from_scores(*_ngram_probs(model, items))
    if not isinstance(model, nn.Module):
        raise TypeError(
            "expected an n-gram model (with .prob and .order) or a torch language model, "
            f"got {type(model).__name__}"
        )
    if vocab is None:
        raise ValueError("a torch language model needs its vocabulary (vocab=...) to encode the prefixes")
    z_correct, z_wrong, _ = _lm_logits(model, vocab, items, history, device, batch_size)
    return choices_from_scores(z_correct, z_wrong)


def accuracy_by_distance(
    model,
    examples: Mapping[int, Sequence[AgreementExample]],
    vocab: Vocabulary | None = None,
    history: History | None = None,
    device: torch.device | str | None = None,
) -> dict[int, float]:
    """Agreement accuracy (%) for each distance: ``{distance: accuracy}`` for ``{distance: items}``.

    ``history`` is used for the items of every distance (so a per-item history needs as many
    entries as each distance has items); see :func:`agreement_choices`.
    """
    return {
        distance: agreement_accuracy(
            agreement_choices(model, items, vocab=vocab, history=history, device=device)
        )
        for distance, items in examples.items()
    }


def accuracy_by_attractors(
    choices: Sequence[float] | np.ndarray, items: Sequence[AgreementExample]
) -> dict[int, tuple[float, int]]:
    """``{number of attractors: (accuracy in %, number of items)}`` for the items' choices.

    An attractor is a noun between the subject and the verb whose number differs from the
    subject's (``books`` in *the writer of the books is*).
    """
    choices = np.asarray(choices, dtype=float)
    items = list(items)
    if len(choices) != len(items):
        raise ValueError(f"got {len(choices)} choices for {len(items)} items")
    attractors = np.array([item.attractors for item in items])
    return {
        int(a): (float(100 * choices[attractors == a].mean()), int(np.sum(attractors == a)))
        for a in np.unique(attractors)
    }
