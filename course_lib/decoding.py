"""Decoding a conditional language model: greedy search and beam search.

A conditional language model (a seq2seq decoder, an image captioner) gives the distribution
of the next token given the ones before and a source x:

    log p(y | x) = Σ_t log p(y_t | y_1 … y_{t−1}, x),     y ending with </s>.

Both searches here only need one decoder step at a time, a *step function*

    step(y_prev (N,), state) -> (log p(· | …) (N, V), new state),

for N rows (sentences or beams) at once; the state is whatever the model carries from one
step to the next (a tensor, or a nested tuple of tensors, rows in dim 0), and the source
lives inside the step function.

**Greedy decoding** takes the most probable token at every step, ŷ_t = argmax_w p(w | ŷ_<t, x).
It is fast, but a locally best token can lead to a bad continuation, and the choice is
never revisited.

**Beam search** keeps the k most probable prefixes (the beam) instead of one. At every step
each of them is extended by every token; of those k·V candidates the k best by log-probability
are kept. A candidate that ends in </s> is finished and leaves the beam, which then holds one
prefix fewer (so at most k hypotheses finish). After ``max_len`` tokens the prefixes still in
the beam are finished as they are. The finished hypotheses are ranked by

    score = log p(y | x) / L^λ,

with L the length of y including </s> and λ the length penalty: log-probabilities only
decrease as tokens are added, so with λ = 0 short outputs are favoured, and λ ≈ 1 ranks by
the mean log-probability per token. With k = 1 beam search is greedy decoding; a beam wider
than the number of possible outputs is an exhaustive search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

State = torch.Tensor | tuple
"""A tensor, or a (nested) tuple of tensors, each with its rows (sentences or beams) in dim 0."""

StepFunction = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]
"""``step(y_prev: LongTensor (N,), state) -> (log_probs (N, V), new_state)``."""


def select_rows(state: State, rows: torch.Tensor) -> State:
    """The rows ``rows`` (LongTensor (M,)) of every tensor of ``state``, in that order (dim 0)."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, rows.to(state.device))
    if isinstance(state, tuple):
        return tuple(select_rows(part, rows) for part in state)
    raise TypeError(f"a state is a tensor or a tuple of states, got {type(state).__name__}")


def _first_tensor(state: State) -> torch.Tensor:
    """The first tensor of a (nested) state: it gives the number of rows and the device."""
    while isinstance(state, tuple):
        if not state:
            raise ValueError("the state holds no tensor")
        state = state[0]
    if not isinstance(state, torch.Tensor):
        raise TypeError(f"a state is a tensor or a tuple of states, got {type(state).__name__}")
    return state


def _check_max_len(max_len: int) -> None:
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")


@torch.no_grad()
def greedy_decode(
    step: StepFunction, state: State, bos_id: int, eos_id: int, max_len: int
) -> list[list[int]]:
    """Greedy decoding of N rows together: ŷ_t = argmax_w log p(w | ŷ_<t, x).

    Every row starts from ``bos_id``. A row is done at ``eos_id`` or after ``max_len`` tokens;
    the others go on (rows that are done are still stepped, their tokens ignored) until all are
    done.

    Args:
        step: the model's step function.
        state: the initial state, N rows.
        bos_id: the id of ``<s>``, the first input.
        eos_id: the id of ``</s>``.
        max_len: the largest number of tokens produced per row (``</s>`` not counted).

    Returns:
        N lists of token ids, without ``<s>`` and ``</s>``.
    """
    _check_max_len(max_len)
    first = _first_tensor(state)
    rows = first.shape[0]
    y = torch.full((rows,), bos_id, dtype=torch.long, device=first.device)
    outputs: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    for _ in range(max_len):
        log_probs, state = step(y, state)
        y = log_probs.argmax(-1)
        for row, token in enumerate(y.tolist()):
            if done[row]:
                continue
            if token == eos_id:
                done[row] = True
            else:
                outputs[row].append(token)
        if all(done):
            break
    return outputs


@dataclass
class Hypothesis:
    """A finished output of beam search: its tokens (without ``<s>`` and ``</s>``), log p(y | x), score."""

    tokens: list[int]
    log_prob: float
    score: float


def _hypothesis(tokens: list[int], log_prob: float, ended: bool, length_penalty: float) -> Hypothesis:
    """score = log_prob / L^λ, L = the number of tokens, ``</s>`` included when the output has it."""
    length = len(tokens) + (1 if ended else 0)
    return Hypothesis(tokens, log_prob, log_prob / length**length_penalty)


@torch.no_grad()
def beam_search(
    step: StepFunction,
    state: State,
    bos_id: int,
    eos_id: int,
    beam_width: int,
    max_len: int,
    length_penalty: float = 0.0,
) -> list[Hypothesis]:
    """Beam search for one source: the k most probable prefixes are extended step by step.

    At every step the live prefixes are extended by every token, and the k' best candidates by
    log-probability are kept (k' = k minus the hypotheses finished so far; ties go to the lower
    beam and token index, as with ``argmax``). Candidates ending in ``</s>`` are finished; the
    others form the next beam. After ``max_len`` tokens the remaining prefixes are finished
    without ``</s>``. Candidates of probability 0 are never kept.

    Args:
        step: the model's step function.
        state: the initial state, ONE row (one source).
        bos_id: the id of ``<s>``.
        eos_id: the id of ``</s>``.
        beam_width: k ≥ 1.
        max_len: the largest number of tokens of an output (``</s>`` not counted).
        length_penalty: λ in score = log p(y | x) / L^λ, L = len(tokens) + 1 for ``</s>``.

    Returns:
        the finished hypotheses (at most k), best score first (ties: found first).
    """
    _check_max_len(max_len)
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    first = _first_tensor(state)
    if first.shape[0] != 1:
        raise ValueError(f"beam search decodes one source: the state must have one row, got {first.shape[0]}")
    device = first.device
    prefixes: list[list[int]] = [[]]
    prefix_log_probs = torch.zeros(1, dtype=torch.float64, device=device)
    y = torch.full((1,), bos_id, dtype=torch.long, device=device)
    finished: list[Hypothesis] = []
    for _ in range(max_len):
        log_probs, state = step(y, state)
        vocab_size = log_probs.shape[-1]
        candidates = (prefix_log_probs.unsqueeze(1) + log_probs.double()).flatten()
        order = torch.sort(candidates, descending=True, stable=True).indices
        order = order[torch.isfinite(candidates[order])][: beam_width - len(finished)]
        keep_rows, keep_tokens, keep_log_probs, next_prefixes = [], [], [], []
        for index, log_prob in zip(order.tolist(), candidates[order].tolist(), strict=True):
            row, token = divmod(index, vocab_size)
            if token == eos_id:
                finished.append(_hypothesis(prefixes[row], log_prob, True, length_penalty))
            else:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_log_probs.append(log_prob)
                next_prefixes.append(prefixes[row] + [token])
        if not next_prefixes:
            break
        rows = torch.tensor(keep_rows, dtype=torch.long, device=device)
        state = select_rows(state, rows)
        y = torch.tensor(keep_tokens, dtype=torch.long, device=device)
        prefixes = next_prefixes
        prefix_log_probs = torch.tensor(keep_log_probs, dtype=torch.float64, device=device)
    else:
        for prefix, log_prob in zip(prefixes, prefix_log_probs.tolist(), strict=True):
            finished.append(_hypothesis(prefix, log_prob, False, length_penalty))
    return sorted(finished, key=lambda hypothesis: -hypothesis.score)
