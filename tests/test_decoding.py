"""Tests of course_lib.decoding: greedy decoding and beam search over a step function.

Oracles: exhaustive enumeration of every possible output of a small second-order Markov chain
(a hand-built step function whose state is a nested tuple, so a wrong row selection changes
the results), greedy decoding (beam width 1), decoding rows one at a time, and a real
Seq2Seq model decoded in a batch and row by row.
"""

import itertools
import math

import pytest
import torch

from course_lib.decoding import Hypothesis, beam_search, greedy_decode, select_rows
from course_lib.models.seq2seq import Seq2Seq

pytestmark = pytest.mark.usefixtures("one_thread")

BOS, EOS = 0, 1
SYMBOLS = (2, 3, 4)
V = 5



class MarkovChain:
    """p(y_t | y_{t−2}, y_{t−1}) from a table (V, V, V) of log-probabilities; never emits <s>.

    The step function's state is ``(y_{t−2} (N,), (steps taken (N, 1),))``.
    """

    def __init__(self, seed: int, eos_bias: float = 0.0):
        generator = torch.Generator().manual_seed(seed)
        logits = 2.0 * torch.randn(V, V, V, generator=generator, dtype=torch.float64)
        logits[..., EOS] += eos_bias
        logits[..., BOS] = float("-inf")
        self.table = logits.log_softmax(-1)
        self.calls = 0

    def initial(self, rows: int = 1, previous: int = BOS):
        return (torch.full((rows,), previous), (torch.zeros(rows, 1),))

    def step(self, y_prev: torch.Tensor, state):
        self.calls += 1
        before, (steps,) = state
        return self.table[before, y_prev].float(), (y_prev, (steps + 1,))

    def log_prob(self, tokens: list[int], ended: bool, previous: int = BOS) -> float:
        total, before, prev = 0.0, previous, BOS
        for token in tokens + ([EOS] if ended else []):
            total += self.table[before, prev, token].float().item()
            before, prev = prev, token
        return total


def all_outputs(max_len: int):
    """Every possible output: (tokens, ended), ended with </s> below max_len tokens, cut at max_len."""
    for length in range(max_len + 1):
        for tokens in itertools.product(SYMBOLS, repeat=length):
            yield list(tokens), length < max_len


def brute_force(chain: MarkovChain, max_len: int, length_penalty: float = 0.0) -> list[Hypothesis]:
    hypotheses = []
    for tokens, ended in all_outputs(max_len):
        log_prob = chain.log_prob(tokens, ended)
        length = len(tokens) + int(ended)
        hypotheses.append(Hypothesis(tokens, log_prob, log_prob / length**length_penalty))
    return sorted(hypotheses, key=lambda h: -h.score)


def test_select_rows_indexes_every_tensor_of_a_nested_state():
    state = (torch.arange(4), (torch.arange(8).view(4, 2), torch.arange(4.0)))
    picked = select_rows(state, torch.tensor([2, 0, 2]))
    assert torch.equal(picked[0], torch.tensor([2, 0, 2]))
    assert torch.equal(picked[1][0], torch.tensor([[4, 5], [0, 1], [4, 5]]))
    assert torch.equal(picked[1][1], torch.tensor([2.0, 0.0, 2.0]))
    with pytest.raises(TypeError):
        select_rows([torch.arange(3)], torch.tensor([0]))


@pytest.mark.parametrize("seed", range(6))
def test_greedy_takes_the_most_probable_token_at_every_step(seed):
    chain = MarkovChain(seed)
    (output,) = greedy_decode(chain.step, chain.initial(), BOS, EOS, max_len=6)
    emitted = output + [EOS] if len(output) < 6 else output
    before, prev = BOS, BOS
    for token in emitted:
        assert token == int(chain.table[before, prev].argmax())
        before, prev = prev, token


def test_greedy_rows_decoded_together_equal_rows_decoded_alone():
    chain = MarkovChain(seed=3)
    starts = [BOS, 2, 3, 4, 2]
    state = (torch.tensor(starts), (torch.zeros(len(starts), 1),))
    together = greedy_decode(chain.step, state, BOS, EOS, max_len=7)
    alone = [greedy_decode(chain.step, chain.initial(1, start), BOS, EOS, max_len=7)[0] for start in starts]
    assert together == alone
    assert len({tuple(output) for output in together}) > 1


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_width_one_is_greedy(seed, length_penalty):
    chain = MarkovChain(seed, eos_bias=-1.0)
    (greedy,) = greedy_decode(chain.step, chain.initial(), BOS, EOS, max_len=5)
    (best,) = beam_search(chain.step, chain.initial(), BOS, EOS, 1, 5, length_penalty)
    assert best.tokens == greedy
    ended = len(greedy) < 5
    assert best.log_prob == pytest.approx(chain.log_prob(greedy, ended), abs=1e-5)


@pytest.mark.parametrize("length_penalty", [0.0, 0.7, 1.0])
def test_a_wide_beam_finds_the_best_output_of_all_where_greedy_does_not(length_penalty):
    max_len, wins = 4, 0
    for seed in range(10):
        chain = MarkovChain(seed)
        exhaustive = brute_force(chain, max_len, length_penalty)
        found = beam_search(chain.step, chain.initial(), BOS, EOS, 200, max_len, length_penalty)
        assert len(found) == len(exhaustive) == sum(3**n for n in range(max_len + 1))
        assert [h.tokens for h in found[:3]] == [h.tokens for h in exhaustive[:3]]
        for hypothesis, expected in zip(found, exhaustive, strict=True):
            assert hypothesis.score == pytest.approx(expected.score, abs=1e-5)
        (greedy,) = greedy_decode(chain.step, chain.initial(), BOS, EOS, max_len)
        wins += greedy != found[0].tokens
    assert wins >= 2  # seeds 7 and 9 (and 1, 5 for λ = 0): greedy decoding misses the best output


def test_greedy_commits_to_a_first_token_that_beam_search_revisits():
    """p(a | <s>) = 0.5 beats p(b | <s>) = 0.4, but only b is followed by a likely </s>."""
    chain = MarkovChain(seed=0)
    a, b = SYMBOLS[:2]
    rows = {BOS: {a: 0.5, b: 0.4, EOS: 0.1}, a: {a: 0.4, b: 0.3, EOS: 0.3}, b: {EOS: 0.9, a: 0.05, b: 0.05}}
    chain.table.fill_(float("-inf"))
    for prev, row in rows.items():
        for token, p in row.items():
            chain.table[:, prev, token] = math.log(p)
    assert greedy_decode(chain.step, chain.initial(), BOS, EOS, 3) == [[a, a, a]]  # p = 0.08
    found = beam_search(chain.step, chain.initial(), BOS, EOS, 2, 3)
    assert found[0].tokens == [b] and found[0].log_prob == pytest.approx(math.log(0.36))
    assert found[0].tokens == brute_force(chain, 3)[0].tokens


def test_beam_search_keeps_only_the_best_candidates_of_each_step():
    chain = MarkovChain(seed=4)
    found = beam_search(chain.step, chain.initial(), BOS, EOS, 3, 4)
    assert 1 <= len(found) <= 3
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
    first_tokens = chain.table[BOS, BOS].argsort(descending=True)[:3].tolist()
    assert {h.tokens[0] for h in found if h.tokens} <= set(first_tokens)
    for hypothesis in found:
        ended = len(hypothesis.tokens) < 4
        assert hypothesis.log_prob == pytest.approx(chain.log_prob(hypothesis.tokens, ended), abs=1e-5)


def test_length_penalty_divides_by_the_length_and_favours_longer_outputs():
    max_len, longer = 5, 0
    for seed in range(10):
        chain = MarkovChain(seed, eos_bias=1.0)
        plain = beam_search(chain.step, chain.initial(), BOS, EOS, 1000, max_len, 0.0)
        normalised = beam_search(chain.step, chain.initial(), BOS, EOS, 1000, max_len, 1.0)
        for hypothesis in normalised:
            length = len(hypothesis.tokens) + (len(hypothesis.tokens) < max_len)
            assert hypothesis.score == pytest.approx(hypothesis.log_prob / length)
        assert all(h.score == h.log_prob for h in plain)
        assert len(normalised[0].tokens) >= len(plain[0].tokens)
        longer += len(normalised[0].tokens) > len(plain[0].tokens)
    assert longer >= 1


def test_max_len_cuts_outputs_that_never_end():
    chain = MarkovChain(seed=0)
    chain.table[..., EOS] = float("-inf")
    outputs = greedy_decode(chain.step, chain.initial(3, 2), BOS, EOS, max_len=4)
    assert all(len(output) == 4 for output in outputs)
    found = beam_search(chain.step, chain.initial(), BOS, EOS, 3, 4, length_penalty=1.0)
    assert len(found) == 3 and all(len(h.tokens) == 4 for h in found)
    assert all(h.score == pytest.approx(h.log_prob / 4) for h in found)


def test_end_of_sequence_is_not_part_of_the_output_and_stops_the_search():
    chain = MarkovChain(seed=1)
    chain.table[BOS, BOS] = torch.tensor([-math.inf, 0.0, -math.inf, -math.inf, -math.inf])
    assert greedy_decode(chain.step, chain.initial(), BOS, EOS, 5) == [[]]
    assert chain.calls == 1
    found = beam_search(chain.step, chain.initial(), BOS, EOS, 4, 5, length_penalty=1.0)
    assert found == [Hypothesis([], 0.0, 0.0)]
    assert chain.calls == 2


def test_greedy_stops_stepping_when_every_row_has_ended():
    chain = MarkovChain(seed=2)
    chain.table[:, 2:, :] = torch.tensor([-math.inf, 0.0, -math.inf, -math.inf, -math.inf])
    chain.table[:, BOS, :] = torch.tensor([-math.inf, -math.inf, 0.0, -math.inf, -math.inf])
    assert greedy_decode(chain.step, chain.initial(2), BOS, EOS, 10) == [[2], [2]]
    assert chain.calls == 2


def test_invalid_arguments_raise_value_errors():
    chain = MarkovChain(seed=0)
    with pytest.raises(ValueError, match="one row"):
        beam_search(chain.step, chain.initial(2), BOS, EOS, 3, 4)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(chain.step, chain.initial(), BOS, EOS, 0, 4)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(chain.step, chain.initial(), BOS, EOS, 0)


@pytest.mark.parametrize("attention", [None, "additive"])
def test_batched_greedy_on_a_seq2seq_model_equals_decoding_each_source_alone(attention):
    torch.manual_seed(0)
    model = Seq2Seq(9, 9, embedding_size=8, hidden_size=16, attention=attention).eval()
    lengths = torch.tensor([5, 2, 4, 1])
    src = torch.randint(4, 9, (5, 4))
    step, state = model.step_function(src, lengths)
    together = greedy_decode(step, state, BOS, EOS, max_len=8)
    for b, n in enumerate(lengths.tolist()):
        step, state = model.step_function(src[:n, b : b + 1], lengths[b : b + 1])
        assert greedy_decode(step, state, BOS, EOS, max_len=8) == [together[b]]
        (best,) = beam_search(step, state, BOS, EOS, 1, 8)
        assert best.tokens == together[b]
