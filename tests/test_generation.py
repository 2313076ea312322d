"""Tests of course_lib.generation.

Oracles: the NumPy sampling distribution of the n-gram models (the same semantics of
temperature and top-k), argmax for greedy decoding, empirical frequencies for the sampler,
and a decoder that re-reads the whole prefix at every step (no carried state).
"""

import numpy as np
import pytest
import torch

from course_lib.generation import generate, sample_next, sampling_probs
from course_lib.models.rnn import RNNLM
from course_lib.ngram import sampling_distribution
from course_lib.vocab import BOS, EOS, PAD, Vocabulary

WORDS = "the cat dog sat ran on a mat".split()


@pytest.mark.parametrize("temperature", [0.2, 0.7, 1.0, 3.0])
@pytest.mark.parametrize("top_k", [None, 1, 3, 10, 50])
def test_sampling_probs_equal_the_ngram_sampling_distribution(temperature, top_k):
    generator = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(5, 10, dtype=torch.float64, generator=generator)
    logits[0, [2, 5, 7]] = logits[0].max() + 1  # a three-way tie at the top, cut by top_k = 1 or 2
    probs = sampling_probs(logits, temperature, top_k)
    for row, row_probs in zip(logits, probs, strict=True):
        expected = sampling_distribution(torch.softmax(row, -1).numpy(), temperature, top_k)
        assert np.abs(row_probs.numpy() - expected).max() < 1e-12
    assert torch.allclose(probs.sum(-1), torch.ones(5, dtype=torch.float64))


def test_top_k_ties_keep_the_lower_index():
    logits = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.5], dtype=torch.float64)
    assert sampling_probs(logits, top_k=2).tolist() == [0.0, 0.5, 0.5, 0.0, 0.0]
    expected = sampling_distribution(torch.softmax(logits, -1).numpy(), top_k=2)
    assert np.allclose(expected, [0.0, 0.5, 0.5, 0.0, 0.0], atol=1e-15)


def test_top_1_is_argmax_and_shapes_follow_the_input():
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(1))
    for temperature in (0.5, 1.0, 5.0):
        assert torch.equal(sample_next(logits, temperature, top_k=1), logits.argmax(-1))
    assert sample_next(logits[0]).shape == () and sample_next(logits[0]).dtype == torch.long
    assert sample_next(logits).shape == (64,)
    with pytest.raises(ValueError, match="shape"):
        sample_next(logits.view(8, 8, 30))


def test_sampling_is_reproducible_with_a_seeded_generator():
    logits = torch.randn(16, 30, generator=torch.Generator().manual_seed(2))
    draws = [sample_next(logits, 1.3, 10, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])
    other = sample_next(logits, 1.3, 10, torch.Generator().manual_seed(4))
    assert not torch.equal(draws[0], other)


def test_sample_frequencies_follow_the_distribution():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, 3.0])
    generator = torch.Generator().manual_seed(5)
    for temperature, top_k in [(1.0, None), (0.5, 3), (2.0, 4)]:
        draws = sample_next(logits.expand(40_000, -1), temperature, top_k, generator)
        frequencies = torch.bincount(draws, minlength=6) / len(draws)
        expected = sampling_probs(logits, temperature, top_k)
        assert (frequencies - expected).abs().max() < 0.01  # 4 standard errors at most
        assert (frequencies[expected == 0] == 0).all()


def test_bad_sampling_arguments_are_rejected():
    with pytest.raises(ValueError, match="temperature"):
        sample_next(torch.zeros(3), temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        sampling_probs(torch.zeros(3), top_k=0)


@pytest.fixture()
def word_model():
    torch.manual_seed(6)
    vocab = Vocabulary(WORDS)
    return RNNLM(len(vocab), 6, 12), vocab


def greedy_without_state(model, vocab, prompt, max_tokens):
    """Greedy decoding that re-reads the whole prefix at every step."""
    ids = vocab.encode(prompt)
    banned = [vocab.token_to_id[PAD], vocab.token_to_id[BOS]]
    out = []
    with torch.no_grad():
        for _ in range(max_tokens):
            logits, _ = model(torch.tensor(ids).unsqueeze(1))
            logits = logits[-1, 0].clone()
            logits[banned] = float("-inf")
            next_id = int(logits.argmax())
            if next_id == vocab.token_to_id[EOS]:
                break
            ids.append(next_id)
            out.append(vocab.id_to_token[next_id])
    return out


@pytest.mark.parametrize("cell", ["scratch", "cudnn"])
def test_greedy_generation_equals_decoding_without_carried_state(word_model, cell):
    model, vocab = word_model
    if cell == "cudnn":
        fused = RNNLM(len(vocab), 6, 12, cell="cudnn")
        fused.load_state_dict(model.state_dict())
        model = fused
    model.output.bias.data[vocab.token_to_id[EOS]] = -5.0  # long outputs, so many steps are checked
    prompt = [BOS, "the", "cat"]
    expected = greedy_without_state(model, vocab, prompt, 20)
    assert generate(model, vocab, prompt, max_tokens=20, top_k=1) == expected
    assert len(expected) == 20


def test_generation_is_reproducible_and_leaves_the_model_as_it_was(word_model):
    model, vocab = word_model
    model.train()
    samples = [generate(model, vocab, [BOS], max_tokens=30, temperature=1.5, seed=seed) for seed in (7, 7, 8)]
    assert samples[0] == samples[1] and samples[0] != samples[2]
    assert model.training
    assert all(parameter.grad is None for parameter in model.parameters())


def test_generation_stops_at_the_stop_token_and_never_samples_pad_or_bos(word_model):
    model, vocab = word_model
    bias = model.output.bias.data
    bias[vocab.token_to_id[PAD]] = bias[vocab.token_to_id[BOS]] = 50.0  # what the model prefers most
    words = generate(model, vocab, [BOS, "a"], max_tokens=200, seed=9)
    assert len(words) < 200 and PAD not in words and BOS not in words and EOS not in words
    bias[vocab.token_to_id[EOS]] = 100.0
    assert generate(model, vocab, [BOS], max_tokens=10, seed=9) == []
    assert generate(model, vocab, [BOS], max_tokens=10, seed=9, stop_token=None) == [EOS] * 10
    assert generate(model, vocab, [BOS], max_tokens=0) == []


def test_character_level_generation():
    text = "hello world, hello there"
    vocab = Vocabulary.build([list(text)], specials=())
    torch.manual_seed(10)
    model = RNNLM(len(vocab), 4, 8)
    chars = generate(model, vocab, list("hel"), max_tokens=15, temperature=0.8, top_k=5, seed=11)
    assert len(chars) == 15 and set(chars) <= set(text)
    assert isinstance("".join(chars), str)
    with pytest.raises(ValueError, match="prompt"):
        generate(model, vocab, [], max_tokens=5)
