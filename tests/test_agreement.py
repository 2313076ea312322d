"""Tests of course_lib.agreement against models whose preferences are known.

Oracles: a maximum-likelihood bigram model on a corpus small enough to read its counts, the
same bigram model written as a torch language model (logits = log-probabilities), Chapter 1's
formula for n-gram models, and a recurrent model run on each prefix by hand.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.agreement import (
    accuracy_by_attractors,
    accuracy_by_distance,
    agreement_accuracy,
    agreement_choices,
    choices_from_scores,
    verb_log_probs,
)
from course_lib.data.grammar import AgreementExample, agreement_examples, grammar_corpus
from course_lib.models.fixed_window import FixedWindowLM
from course_lib.models.lstm import RecurrentLM
from course_lib.models.rnn import RNNLM
from course_lib.ngram import MLE, KneserNey
from course_lib.vocab import BOS, EOS, Vocabulary

CORPUS = [
    ["the", "dog", "sleeps", "."],
    ["the", "dog", "sleeps", "."],
    ["the", "dogs", "sleep", "."],
    ["the", "cat", "sleep", "."],  # the bigram model will prefer the wrong verb after "cat"
    ["the", "cat", "often", "sleeps", "."],
    ["the", "cats", "often", "sleep", "."],
]


def item(prefix: str, correct: str, wrong: str, attractors: int = 0) -> AgreementExample:
    words = prefix.split()
    distance = len(words) - next(i for i, w in enumerate(words) if w in {"dog", "dogs", "cat", "cats"})
    return AgreementExample(words, correct, wrong, distance, attractors)


ITEMS = [
    item("the dog", "sleeps", "sleep"),  # P(sleeps | dog) = 1 > 0: right
    item("the dogs", "sleep", "sleeps"),  # right
    item("the cat", "sleeps", "sleep"),  # P(sleeps | cat) = 0 < P(sleep | cat) = 1/2: wrong
    item("the cat often", "sleeps", "sleep"),  # P(· | often) = 1/2 each: tie
    item("the cats often", "sleep", "sleeps", attractors=1),  # tie
]
EXPECTED = [1.0, 1.0, 0.0, 0.5, 0.5]


class BigramTorchLM(nn.Module):
    """A torch language model whose logits after token v are ln P_MLE(w | v) (−∞ → −1e9)."""

    def __init__(self, ngram: MLE, vocab: Vocabulary):
        super().__init__()
        logits = torch.full((len(vocab), len(vocab)), -1e9, dtype=torch.float64)
        for v in vocab.id_to_token:
            for w in vocab.id_to_token:
                p = ngram.prob(w, [v]) if v != EOS else ngram.prob(w, [BOS])
                if p > 0:
                    logits[vocab.token_to_id[v], vocab.token_to_id[w]] = math.log(p)
        self.table = nn.Embedding.from_pretrained(logits)

    def forward(self, inputs, state=None):
        return self.table(inputs), None


@pytest.fixture(scope="module")
def bigram():
    vocab = Vocabulary.build(CORPUS)
    return MLE(2).fit(CORPUS, vocab=vocab), vocab


def test_choices_from_scores_and_accuracy():
    choices = choices_from_scores(np.array([2.0, 1.0, 1.0, -np.inf]), np.array([1.0, 2.0, 1.0, -np.inf]))
    np.testing.assert_array_equal(choices, [1.0, 0.0, 0.5, 0.5])
    assert agreement_accuracy(choices) == pytest.approx(50.0)
    assert agreement_accuracy([1, 1, 1, 0]) == pytest.approx(75.0)
    with pytest.raises(ValueError):
        agreement_accuracy([])
    with pytest.raises(ValueError):
        choices_from_scores(np.zeros(3), np.zeros(4))


def test_ngram_choices_follow_the_counts(bigram):
    model, _ = bigram
    np.testing.assert_array_equal(agreement_choices(model, ITEMS), EXPECTED)
    assert agreement_accuracy(agreement_choices(model, ITEMS)) == pytest.approx(60.0)
    correct, wrong = verb_log_probs(model, ITEMS)
    np.testing.assert_allclose(correct[:2], [0.0, 0.0])
    assert wrong[0] == -np.inf and correct[2] == -np.inf and wrong[2] == pytest.approx(math.log(0.5))


def test_torch_model_with_the_same_probabilities_makes_the_same_choices(bigram):
    ngram, vocab = bigram
    model = BigramTorchLM(ngram, vocab)
    np.testing.assert_array_equal(agreement_choices(model, ITEMS, vocab=vocab), EXPECTED)
    correct, wrong = verb_log_probs(model, ITEMS, vocab=vocab)
    ngram_correct, ngram_wrong = verb_log_probs(ngram, ITEMS)
    finite = np.isfinite(ngram_correct)
    np.testing.assert_allclose(correct[finite], ngram_correct[finite], atol=1e-12)
    assert (correct[~finite] < -1e8).all()
    np.testing.assert_allclose(
        wrong[np.isfinite(ngram_wrong)], ngram_wrong[np.isfinite(ngram_wrong)], atol=1e-12
    )


def test_ngram_choices_match_chapter_one_formula():
    train = grammar_corpus(2000, seed=1)
    items = agreement_examples(60, distance=2, seed=100)
    for order in (2, 3):
        model = KneserNey(order).fit(train)
        padding = [BOS] * (order - 1)
        correct = np.array([model.prob(it.correct, padding + it.prefix) for it in items])
        wrong = np.array([model.prob(it.wrong, padding + it.prefix) for it in items])
        expected = 100 * np.mean((correct > wrong) + 0.5 * (correct == wrong))
        assert agreement_accuracy(agreement_choices(model, items)) == expected


@pytest.fixture(scope="module")
def grammar_setup():
    sentences = grammar_corpus(300, seed=0)
    vocab = Vocabulary.build(sentences)
    items = [it for d in (1, 3, 5) for it in agreement_examples(8, distance=d, seed=1)]
    return vocab, items


def _by_hand(model, vocab, items, history):
    """ln P(correct) and ln P(wrong) by running the model on each item alone."""
    out = []
    with torch.no_grad():
        for h, it in zip(history, items, strict=True):
            ids = torch.tensor(vocab.encode(h + it.prefix)).unsqueeze(1)
            log_probs = torch.log_softmax(model(ids)[0][-1, 0].double(), dim=-1)
            out.append((log_probs[vocab.lookup(it.correct)].item(), log_probs[vocab.lookup(it.wrong)].item()))
    return np.array(out).T


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "fixed_window"])
def test_torch_models_are_scored_item_by_item_whatever_the_batching(grammar_setup, kind):
    vocab, items = grammar_setup
    torch.manual_seed(0)
    if kind == "rnn":
        model = RNNLM(len(vocab), 8, 16, cell="cudnn")
    elif kind == "fixed_window":
        model = FixedWindowLM(len(vocab), 3, 8, 16, pad_id=vocab.token_to_id[EOS])
    else:
        model = RecurrentLM(len(vocab), 8, 16, cell=kind, implementation="cudnn")
    model.train()
    expected = _by_hand(model, vocab, items, [[EOS]] * len(items))
    for batch_size in (1, 5, 256):
        got = verb_log_probs(model, items, vocab=vocab, batch_size=batch_size)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert model.training, "the model's mode is restored"
    choices = agreement_choices(model, items, vocab=vocab)
    np.testing.assert_array_equal(choices, choices_from_scores(*verb_log_probs(model, items, vocab=vocab)))


def test_histories_shared_or_per_item(grammar_setup):
    vocab, items = grammar_setup
    torch.manual_seed(1)
    model = RNNLM(len(vocab), 8, 16, cell="cudnn")
    default = verb_log_probs(model, items, vocab=vocab)
    np.testing.assert_allclose(default, verb_log_probs(model, items, vocab=vocab, history=[EOS]))
    per_item = [["the", "dog", "sleeps", ".", EOS] if i % 2 else [EOS] for i in range(len(items))]
    got = verb_log_probs(model, items, vocab=vocab, history=per_item)
    np.testing.assert_allclose(got, _by_hand(model, vocab, items, per_item), atol=1e-5)
    assert not np.allclose(got, default)
    with pytest.raises(ValueError):
        verb_log_probs(model, items, vocab=vocab, history=per_item[:-1])
    with pytest.raises(TypeError):
        verb_log_probs(model, items, vocab=vocab, history="</s>")


def test_accuracy_by_distance_and_by_attractors(bigram):
    model, _ = bigram
    by_distance = {1: ITEMS[:3], 2: ITEMS[3:]}
    assert accuracy_by_distance(model, by_distance) == pytest.approx({1: 200 / 3, 2: 50.0})
    by_attractors = accuracy_by_attractors(EXPECTED, ITEMS)
    assert by_attractors == {0: (pytest.approx(62.5), 4), 1: (pytest.approx(50.0), 1)}
    with pytest.raises(ValueError):
        accuracy_by_attractors(EXPECTED[:2], ITEMS)


def test_bad_arguments(bigram, grammar_setup):
    ngram, _ = bigram
    vocab, items = grammar_setup
    model = RNNLM(len(vocab), 4, 4)
    with pytest.raises(ValueError):
        agreement_choices(model, items)  # no vocabulary
    with pytest.raises(ValueError):
        agreement_choices(ngram, ITEMS, history=[EOS])  # n-gram models pad with <s>
    with pytest.raises(ValueError):
        agreement_choices(ngram, [])
    with pytest.raises(TypeError):
        agreement_choices(object(), ITEMS)
    with pytest.raises(ValueError):
        agreement_choices(model, items, vocab=vocab, batch_size=0)
