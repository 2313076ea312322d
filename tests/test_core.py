import math
import random

import numpy as np
import pytest
import torch

from course_lib.data.splits import train_val_test_split
from course_lib.data.stdlib import python_prose_sentences, python_source_text
from course_lib.device import get_device, seed_everything
from course_lib.metrics import bits_per_character, cross_entropy, mean_negative_log_likelihood, perplexity


def test_device_defaults_and_override(monkeypatch):
    monkeypatch.delenv("COURSE_LIB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert get_device().type == expected
    monkeypatch.setenv("COURSE_LIB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_device_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("COURSE_LIB_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="COURSE_LIB_DEVICE"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_LIB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            get_device()


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first


def test_splits_are_deterministic_and_partition_the_items():
    items = list(range(103))
    train, val, test = train_val_test_split(items, seed=7)
    assert (len(train), len(val), len(test)) == (82, 10, 11)
    assert sorted(train + val + test) == items
    assert train_val_test_split(items, seed=7) == (train, val, test)
    assert train_val_test_split(items, seed=8)[0] != train
    assert train_val_test_split(items, (0.5, 0.25, 0.25), seed=None) == (items[:52], items[52:78], items[78:])


def test_split_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        train_val_test_split([])
    with pytest.raises(ValueError, match="summing to 1"):
        train_val_test_split([1, 2], (0.5, 0.5, 0.5))


def test_cross_entropy_matches_log_softmax_and_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(5, 3, 7)
    targets = torch.randint(1, 7, (5, 3))
    targets[4, 2] = 0
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(cross_entropy(logits, targets), -log_probs.mean())
    kept = targets != 0
    assert torch.allclose(cross_entropy(logits, targets, ignore_index=0), -log_probs[kept].mean())
    with pytest.raises(ValueError, match="targets of shape"):
        cross_entropy(logits, targets[:4])


def test_perplexity_of_uniform_model_is_vocabulary_size():
    nll = mean_negative_log_likelihood([math.log(1 / 50)] * 20)
    assert perplexity(nll) == pytest.approx(50)
    assert bits_per_character(math.log(2)) == pytest.approx(1.0)
    assert perplexity(math.inf) == math.inf
    with pytest.raises(ValueError, match="zero tokens"):
        mean_negative_log_likelihood([])


def test_stdlib_corpora_are_large_and_deterministic():
    sentences = python_prose_sentences()
    n_words = sum(token.isalpha() for sentence in sentences for token in sentence)
    assert n_words > 150_000
    assert not any(">>>" in " ".join(s) for s in sentences[:2000])
    assert python_prose_sentences()[:50] == sentences[:50]
    assert len(python_source_text()) > 5_000_000
