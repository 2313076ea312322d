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
