"""Two synthetic benchmarks for long-range memory: the adding problem and the copy-memory task.

Both come from the literature on vanishing gradients. Each is solved by remembering one or a
few inputs over a gap of ``T`` steps and ignoring everything in between, so the length of the
gap sets how far back the gradient must reach. Sequences are time-major, like every recurrent
input of the course, and generated from a ``torch.Generator``: the same seed always gives the
same batches, on every machine.

**The adding problem** (Hochreiter & Schmidhuber, 1997, in the form of Le, Jaitly & Hinton,
2015). Each step t = 1 … T has two input channels: a value v_t ~ U(0, 1) and a marker
m_t ∈ {0, 1}. Exactly two markers are 1, one at a uniformly random step of the first half
of the sequence and one in the second half. The target is the sum of the two marked values,

    y = Σ_t m_t v_t ∈ [0, 2],

read from the network's last state. A network that ignores the inputs does best by always
answering E[y] = 1, with mean squared error Var(v_a + v_b) = 2 · (1/12) = 1/6
(:data:`ADDING_BASELINE_MSE`). We call the problem solved when the test MSE is below
:data:`ADDING_SOLVED_MSE` = 0.01, one seventeenth of the baseline.

**The copy-memory task** (in the form of Arjovsky, Shah & Bengio, 2016). With K symbols to
remember, drawn uniformly from an alphabet of 8 (ids 1 … 8), and a delay T, each input
sequence has length T + 2K:

    input    s_1 … s_K   blank × (T − 1)   go   blank × K
    target   blank × (T + K)                    s_1 … s_K

(``blank`` is id 0, the ``go`` marker id 9.) The network must output ``blank`` until it
sees ``go``, then reproduce the K symbols in order; the loss is the cross-entropy at all
T + 2K steps. A network that does not remember the symbols can still output ``blank`` with
certainty until it has seen ``go`` and guess uniformly among the 8 symbols after it, for a
mean cross-entropy of

    K ln 8 / (T + 2K)   nats per step       (:func:`copy_memory_baseline`).

We call the task solved when at least 99% of the recalled symbols (the last K outputs) are
right (:data:`COPY_SOLVED_ACCURACY`); guessing gets 1/8 of them.
"""

from __future__ import annotations

import math

import torch

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always answering 1, the mean of the target: Var(v_a + v_b) = 2/12."""

ADDING_SOLVED_MSE = 0.01
"""The adding problem counts as solved when the test MSE is below this (1/17 of the baseline)."""

COPY_ALPHABET = 8
"""Number of distinct symbols to copy (ids 1 … 8)."""

COPY_BLANK = 0
"""Id of the blank input and output."""

COPY_GO = COPY_ALPHABET + 1
"""Id of the marker that asks for the symbols (9)."""

COPY_INPUT_TOKENS = COPY_ALPHABET + 2
"""Number of distinct input ids: blank, the 8 symbols and ``go`` (10)."""

COPY_OUTPUT_CLASSES = COPY_ALPHABET + 1
"""Number of distinct target ids: blank and the 8 symbols (9); ``go`` is never a target."""

COPY_SOLVED_ACCURACY = 0.99
"""The copy task counts as solved when at least this fraction of the recalled symbols is right."""


def _generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU generator: the one given, or a new one seeded with the integer ``seed``."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")


def adding_problem(
    seq_len: int, batch_size: int, seed: int | torch.Generator = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the adding problem.

    Args:
        seq_len: T, the number of steps, at least 2 (one marker in each half).
        batch_size: B.
        seed: an integer seed, or a generator to draw from (successive calls then give new
            batches: use one generator for a whole training run).

    Returns:
        ``(inputs, targets)``: inputs of shape (T, B, 2), channel 0 the values v_t ~ U(0, 1) and
        channel 1 the markers, with one 1 among steps 0 … ⌊T/2⌋ − 1 and one among ⌊T/2⌋ … T − 1
        (0-based); targets of shape (B,), the sum of the two marked values.
    """
    _check_positive("seq_len", seq_len, minimum=2)
    _check_positive("batch_size", batch_size)
    generator = _generator(seed)
    half = seq_len // 2
    values = torch.rand(seq_len, batch_size, generator=generator)
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, seq_len, (batch_size,), generator=generator)
    markers = torch.zeros(seq_len, batch_size)
    columns = torch.arange(batch_size)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = values[first, columns] + values[second, columns]
    return torch.stack([values, markers], dim=-1), targets


def copy_memory(
    delay: int, batch_size: int, seed: int | torch.Generator = 0, num_symbols: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the copy-memory task (ids: blank 0, symbols 1 … 8, ``go`` 9).

    Args:
        delay: T, the number of steps from the last symbol to the ``go`` marker (T − 1 blanks
            in between), at least 1.
        batch_size: B.
        seed: an integer seed, or a generator to draw from.
        num_symbols: K, the number of symbols to remember.

    Returns:
        ``(inputs, targets)``, token ids of shape (T + 2K, B) each: the K symbols, T − 1 blanks,
        ``go`` and K blanks; the targets are blank except for the last K steps, which hold the
        K symbols.
    """
    _check_positive("delay", delay)
    _check_positive("batch_size", batch_size)
    _check_positive("num_symbols", num_symbols)
    generator = _generator(seed)
    length = delay + 2 * num_symbols
    symbols = torch.randint(1, COPY_ALPHABET + 1, (num_symbols, batch_size), generator=generator)
    inputs = torch.full((length, batch_size), COPY_BLANK, dtype=torch.long)
    targets = torch.full((length, batch_size), COPY_BLANK, dtype=torch.long)
    inputs[:num_symbols] = symbols
    inputs[num_symbols + delay - 1] = COPY_GO
    targets[-num_symbols:] = symbols
    return inputs, targets


def copy_memory_baseline(delay: int, num_symbols: int = 10) -> float:
    """Mean cross-entropy (nats per step) without memory of the symbols: K ln 8 / (T + 2K)."""
    _check_positive("delay", delay)
    _check_positive("num_symbols", num_symbols)
    return num_symbols * math.log(COPY_ALPHABET) / (delay + 2 * num_symbols)
