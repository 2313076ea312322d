"""Generating text from a neural language model, one sampled token at a time.

Works with any course language model, ``model(inputs (T, B), state) -> (logits (T, B, V), state)``
(the RNN, LSTM and Transformer models alike): the prompt is read in one pass, then each sampled
token is fed back in with the carried state.

Temperature and top-k reshape the next-token distribution exactly as
``course_lib.ngram.sampling_distribution`` does for the n-gram models, here starting from
logits z (p = softmax(z)):

* top-k keeps the k largest logits (ties: the lower index) and gives the others probability 0;
* the temperature τ > 0 gives q_i ∝ p_i^{1/τ} = exp(z_i / τ): τ < 1 sharpens the distribution,
  τ → 0 approaches the argmax (``top_k=1`` is exactly greedy decoding), τ > 1 flattens it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_lib.vocab import BOS, EOS, PAD, Vocabulary


def _check_sampling_arguments(temperature: float, top_k: int | None) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (or None), got {top_k}")


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """The distribution to sample the next token from: top-k, then q_i ∝ exp(z_i / τ).

    Args:
        logits: unnormalised scores z, shape (V,) or (B, V).
        temperature: τ > 0.
        top_k: how many tokens to keep, k ≥ 1; ``None`` keeps all.

    Returns:
        probabilities of the same shape as ``logits``, summing to 1 over the last axis.
    """
    _check_sampling_arguments(temperature, top_k)
    if top_k is not None and top_k < logits.shape[-1]:
        ranked = torch.sort(logits, dim=-1, descending=True, stable=True).indices
        logits = logits.scatter(-1, ranked[..., top_k:], float("-inf"))
    return torch.softmax(logits / temperature, dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw the next token id from :func:`sampling_probs` of ``logits``.

    Args:
        logits: shape (V,) for one sequence or (B, V) for a batch.
        temperature, top_k: see :func:`sampling_probs`.
        generator: a seeded ``torch.Generator`` on the device of ``logits``, for reproducible
            draws; ``None`` uses torch's global generator.

    Returns:
        a LongTensor of token ids: shape () for logits (V,), shape (B,) for logits (B, V).
    """
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must have shape (V,) or (B, V), got {tuple(logits.shape)}")
    probs = sampling_probs(logits, temperature, top_k)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def generate(
    model: nn.Module,
    vocab: Vocabulary,
    prompt: Sequence[str],
    max_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    stop_token: str | None = EOS,
    device: torch.device | str | None = None,
) -> list[str]:
    """Continue ``prompt`` with tokens sampled from ``model``.

    The model reads the prompt, then repeatedly samples a token from its next-token logits
    (:func:`sample_next`) and reads that token, carrying its state, until it samples
    ``stop_token`` or has produced ``max_tokens`` tokens. ``<pad>`` and ``<s>`` are never
    sampled (a language model never has to predict them). The model runs in eval mode
    without gradients; its training mode is restored afterwards.

    Args:
        model: a course language model, ``model(inputs (T, B), state) -> (logits (T, B, V), state)``.
        vocab: its vocabulary, word- or character-level.
        prompt: the tokens to start from, at least one. A model trained on a stream from
            ``encode_stream`` has seen every sentence start after ``</s>``, so ``["</s>"]``
            generates a sentence from scratch; ``list("def ")`` starts a character-level one.
        max_tokens: the most tokens to sample.
        temperature, top_k: see :func:`sampling_probs`; ``top_k=1`` is greedy decoding.
        seed: makes the result reproducible; ``None`` uses torch's global generator.
        stop_token: generation stops when this token is sampled (it is not returned);
            ``None``, or a token not in ``vocab``, never stops early.
        device: where to run; by default the device of the model's parameters.

    Returns:
        the sampled tokens, without the prompt (join them with ``""`` for characters, ``" "`` for words).
    """
    _check_sampling_arguments(temperature, top_k)
    if len(prompt) == 0:
        raise ValueError("the prompt must hold at least one token, e.g. ['</s>'] to start a sentence")
    if device is None:
        device = next(model.parameters()).device
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    never_sampled = [vocab.token_to_id[token] for token in (PAD, BOS) if token in vocab]
    stop_id = None if stop_token is None else vocab.token_to_id.get(stop_token)

    was_training = model.training
    model.eval()
    tokens: list[str] = []
    try:
        with torch.no_grad():
            inputs = torch.tensor(vocab.encode(prompt), device=device).unsqueeze(1)  # (P, 1)
            logits, state = model(inputs)
            for _ in range(max_tokens):
                next_logits = logits[-1, 0].clone()
                next_logits[never_sampled] = float("-inf")
                token_id = int(sample_next(next_logits, temperature, top_k, generator))
                if token_id == stop_id:
                    break
                tokens.append(vocab.id_to_token[token_id])
                logits, state = model(torch.tensor([[token_id]], device=device), state)
    finally:
        model.train(was_training)
    return tokens
