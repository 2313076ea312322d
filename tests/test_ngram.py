"""Tests of course_lib.ngram, with NLTK's nltk.lm as an independent oracle.

Where our definitions and NLTK's agree, NLTK is given exactly the n-grams our model counts
(see ``predicted_ngrams``) and must produce the same numbers. Where they differ, each
difference has its own ``test_nltk_difference_*`` test that pins it down.
"""

import math
import pickle
import random
from itertools import chain

import numpy as np
import pytest
from nltk.lm import MLE as NltkMLE
from nltk.lm import KneserNeyInterpolated, Lidstone, NgramCounter
from nltk.lm import Laplace as NltkLaplace
from nltk.lm import StupidBackoff as NltkStupidBackoff
from nltk.lm import Vocabulary as NltkVocabulary
from nltk.lm.models import InterpolatedLanguageModel
from nltk.lm.preprocessing import padded_everygram_pipeline
from nltk.lm.smoothing import KneserNey as NltkKneserNeySmoothing

from course_lib import ngram
from course_lib.ngram import (
    MLE,
    AddK,
    KneserNey,
    Laplace,
    NGramModel,
    StupidBackoff,
    context_totals,
    count_ngrams,
    padded_ngrams,
    sampling_distribution,
)
from course_lib.vocab import BOS, EOS, PAD, UNK, Vocabulary

WORDS = "the cat dog sat on mat a rug ran fast and".split()
_rng = random.Random(0)
# A few dozen short sentences over a dozen words, so that n-grams repeat.
TRAIN = [[_rng.choice(WORDS) for _ in range(_rng.randint(1, 7))] for _ in range(40)]
TRAIN += [["the", "yak", "sat"], ["a", "gnu", "ran", "fast"]]  # two rare words
# Held-out sentences (one empty), with an out-of-vocabulary word.
TEST = [[_rng.choice([*WORDS, "zebra"]) for _ in range(_rng.randint(0, 6))] for _ in range(10)]
TEST += [["the", "zebra"], []]

# Three sentences small enough to count by hand.
HAND = [["a", "b"], ["a", "b", "b"], ["b"]]

TOL = 1e-9


def predicted_ngrams(sentences, order, vocab):
    """Per sentence, the k-grams (k = 1 … order) ending at each predicted token: what we count."""
    result = []
    for sentence in sentences:
        padded = [BOS] * (order - 1) + [w if w in vocab else UNK for w in sentence] + [EOS]
        result.append(
            [
                tuple(padded[t - k + 1 : t + 1])
                for t in range(order - 1, len(padded))
                for k in range(1, order + 1)
            ]
        )
    return result


def top_order_ngrams(sentences, order, vocab):
    return [g for g in chain.from_iterable(predicted_ngrams(sentences, order, vocab)) if len(g) == order]


def nltk_vocabulary(model, with_bos=False):
    """An NLTK vocabulary holding our predictable tokens, so len() is our V (plus 1 with <s>).

    NLTK always adds its unknown label; naming it "<unk>" makes it our <unk>. Without <s>,
    NLTK's ``score`` would look <s> up as "<unk>", so models whose size must be V are queried
    with ``unmasked_score`` and our own lookup instead.
    """
    tokens = [t for t in model.vocab.id_to_token if t not in (PAD, BOS, UNK)]
    return NltkVocabulary(tokens + ([BOS] if with_bos else []), unk_label=UNK)


def nltk_counter(model, sentences):
    return NgramCounter(predicted_ngrams(sentences, model.order, model.vocab))


def queries(model, sentences=(*TRAIN, *TEST)):
    """(word, context) pairs: every predictable word and an unknown one, after every history
    (and every shorter suffix of it) found in ``sentences``, and after two more."""
    n, vocab = model.order, model.vocab
    contexts = {g[:-1] for g in top_order_ngrams(sentences, n, vocab)}
    contexts |= {c[j:] for c in contexts for j in range(len(c) + 1)}
    if n > 1:
        contexts |= {(UNK,) * (n - 1), ("rug",) * (n - 1)}
    words = [*model.next_word_distribution()[0], "zebra"]
    return [(w, c) for c in sorted(contexts) for w in words]


def as_tokens(model, context):
    return tuple(t if t in model.vocab else UNK for t in context)


# ---------------------------------------------------------------- agreement with NLTK


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_mle_matches_nltk(order):
    ours = MLE(order).fit(TRAIN)
    theirs = NltkMLE(
        order, vocabulary=nltk_vocabulary(ours, with_bos=True), counter=nltk_counter(ours, TRAIN)
    )
    for word, context in queries(ours):
        assert ours.prob(word, context) == pytest.approx(theirs.score(word, context), abs=TOL)
    expected = theirs.perplexity(top_order_ngrams(TRAIN, order, ours.vocab))
    assert ours.perplexity(TRAIN) == pytest.approx(expected, rel=TOL)
    unseen_ngrams = top_order_ngrams(TEST, order, ours.vocab)
    assert ours.perplexity(TEST) == math.inf and theirs.perplexity(unseen_ngrams) == math.inf


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize(("ours_cls", "k"), [(Laplace, 1.0), (AddK, 1.0), (AddK, 0.1)])
def test_add_k_matches_nltk_lidstone(order, ours_cls, k):
    ours = (ours_cls(order) if ours_cls is Laplace else AddK(order, k=k)).fit(TRAIN)
    vocabulary, counter = nltk_vocabulary(ours), nltk_counter(ours, TRAIN)
    if ours_cls is Laplace:
        theirs = NltkLaplace(order, vocabulary=vocabulary, counter=counter)
    else:
        theirs = Lidstone(k, order, vocabulary=vocabulary, counter=counter)
    assert len(theirs.vocab) == ours.vocab_size
    for word, context in queries(ours):
        expected = theirs.unmasked_score(as_tokens(ours, [word])[0], as_tokens(ours, context))
        assert ours.prob(word, context) == pytest.approx(expected, abs=TOL)
    test_ngrams = top_order_ngrams(TEST, order, ours.vocab)
    nll = [-math.log(theirs.unmasked_score(g[-1], g[:-1])) for g in test_ngrams]
    assert ours.perplexity(TEST) == pytest.approx(math.exp(sum(nll) / len(nll)), rel=TOL)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("alpha", [0.4, 0.7])
def test_stupid_backoff_matches_nltk(order, alpha):
    ours = StupidBackoff(order, alpha=alpha).fit(TRAIN)
    theirs = NltkStupidBackoff(
        alpha, order=order, vocabulary=nltk_vocabulary(ours, with_bos=True), counter=nltk_counter(ours, TRAIN)
    )
    for word, context in queries(ours):
        assert ours.prob(word, context) == pytest.approx(theirs.score(word, context), abs=TOL)
    expected = theirs.perplexity(top_order_ngrams(TRAIN, order, ours.vocab))
    assert ours.perplexity(TRAIN) == pytest.approx(expected, rel=TOL)


class _NltkKneserNeyWithOurLowestOrder(NltkKneserNeySmoothing):
    """NLTK's Kneser–Ney smoothing with its lowest order replaced by a given function."""

    def __init__(self, vocabulary, counter, order, discount, lowest_order):
        super().__init__(vocabulary, counter, order=order, discount=discount)
        self.lowest_order = lowest_order

    def unigram_score(self, word):
        return self.lowest_order(word)


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("discount", [0.75, 0.3])
def test_kneser_ney_matches_nltk_above_the_lowest_order(order, discount):
    """With the same lowest order (the one documented difference), every probability agrees:
    raw counts at the highest order, continuation counts below, unseen histories backing off,
    and shorter contexts starting at the lower order."""
    ours = KneserNey(order, discount=discount).fit(TRAIN)
    params = {"order": order, "discount": discount, "lowest_order": ours.prob}
    theirs = InterpolatedLanguageModel(
        _NltkKneserNeyWithOurLowestOrder,
        order,
        params=params,
        vocabulary=nltk_vocabulary(ours, with_bos=True),
        counter=nltk_counter(ours, TRAIN),
    )
    for word, context in queries(ours):
        assert ours.prob(word, context) == pytest.approx(theirs.score(word, context), abs=TOL)
    for sentences in (TRAIN, TEST):
        expected = theirs.perplexity(top_order_ngrams(sentences, order, ours.vocab))
        assert ours.perplexity(sentences) == pytest.approx(expected, rel=TOL)


def test_min_freq_matches_nltk_unk_cutoff():
    """NLTK maps the words below its cut-off to its unknown label while fitting, as we do."""
    ours = MLE(3).fit(TRAIN, min_freq=3)
    words = list(chain.from_iterable(TRAIN)) + [BOS, EOS] * 3
    vocabulary = NltkVocabulary(words, unk_cutoff=3, unk_label=UNK)
    theirs = NltkMLE(3, vocabulary=vocabulary)
    theirs.fit(predicted_ngrams(TRAIN, 3, vocab=set(words)))  # the words themselves: NLTK maps them
    assert ours.count([UNK]) > 0
    assert set(vocabulary) == set(ours.next_word_distribution()[0]) | {BOS}
    for word, context in queries(ours):
        assert ours.prob(word, context) == pytest.approx(theirs.score(word, context), abs=TOL)


# ---------------------------------------------------------------- documented differences with NLTK


def nltk_default(cls, order, *args, **kwargs):
    """An NLTK model trained the usual NLTK way, with padded_everygram_pipeline."""
    model = cls(*args, order=order, **kwargs)
    train, vocabulary_text = padded_everygram_pipeline(order, TRAIN)
    model.fit(train, vocabulary_text)
    return model


def test_nltk_difference_right_padding():
    """NLTK pads n − 1 </s> (and counts every everygram of the padded sentence); we pad one."""
    n, sentences, tokens = 3, len(TRAIN), sum(map(len, TRAIN))
    theirs, ours = nltk_default(NltkMLE, n), MLE(n).fit(TRAIN)
    padded_length = tokens + 2 * (n - 1) * sentences
    assert theirs.score(EOS) == pytest.approx((n - 1) * sentences / padded_length, abs=1e-15)
    assert ours.prob(EOS) == pytest.approx(sentences / (tokens + sentences), abs=1e-15)
    last_word = TRAIN[0][-1]
    assert theirs.counts[[last_word, EOS]][EOS] >= 1 and theirs.score(EOS, [last_word, EOS]) == 1.0
    assert ours.count([last_word, EOS, EOS]) == 0 and ours.prob(EOS, [last_word, EOS]) == 0.0


def test_nltk_difference_none_for_full_histories_without_end_marker():
    """The extra right padding only adds n-grams whose history holds </s>: trigram MLEs agree elsewhere."""
    theirs, ours = nltk_default(NltkMLE, 3), MLE(3).fit(TRAIN)
    for word, context in queries(ours, TRAIN):
        if len(context) == 2:
            assert ours.prob(word, context) == pytest.approx(theirs.score(word, context), abs=TOL)


def test_nltk_difference_vocabulary_size():
    """NLTK's vocabulary also holds <s>, so its add-one denominator is c(h •) + V + 1."""
    theirs, ours = nltk_default(NltkLaplace, 3), Laplace(3).fit(TRAIN)
    tokens, _ = ours.next_word_distribution()
    assert set(theirs.vocab) == (set(tokens) - {UNK}) | {BOS, "<UNK>"}
    assert len(theirs.vocab) == ours.vocab_size + 1
    v = ours.vocab_size
    for context in {c for _, c in queries(ours, TRAIN) if len(c) == 2}:
        c_h = sum(ours.count([*context, w]) for w in tokens)
        for word in tokens:
            c_hw = ours.count([*context, word])
            assert ours.prob(word, context) == pytest.approx((c_hw + 1) / (c_h + v), abs=1e-15)
            assert theirs.score(word, context) == pytest.approx((c_hw + 1) / (c_h + v + 1), abs=1e-15)


def test_nltk_difference_unknown_label():
    """NLTK's unknown label is "<UNK>", ours "<unk>" (and only ours is a configurable Vocabulary)."""
    theirs, ours = nltk_default(NltkMLE, 2), MLE(2).fit(TRAIN)
    assert theirs.vocab.lookup("zebra") == "<UNK>" and "<UNK>" not in ours.vocab
    assert ours.vocab.decode([ours.vocab.lookup("zebra")]) == [UNK] == ["<unk>"]


def test_nltk_difference_entropy_in_bits():
    """NLTK's entropy is in bits (log base 2), our cross-entropy in nats; perplexities agree."""
    ours = MLE(2).fit(TRAIN)
    theirs = NltkMLE(2, vocabulary=nltk_vocabulary(ours, with_bos=True), counter=nltk_counter(ours, TRAIN))
    ngrams = top_order_ngrams(TRAIN, 2, ours.vocab)
    assert ours.cross_entropy(TRAIN) == pytest.approx(theirs.entropy(ngrams) * math.log(2), rel=TOL)
    assert ours.perplexity(TRAIN) == pytest.approx(2 ** theirs.entropy(ngrams), rel=TOL)


def test_nltk_difference_kneser_ney_lowest_order():
    """NLTK's lowest order is the bare continuation unigram N1+(• w) / N1+(• •); ours discounts
    it and interpolates with the uniform 1/V, so no word (e.g. an unseen <unk>) gets 0."""
    d = 0.75
    ours = KneserNey(3, discount=d).fit(TRAIN)
    theirs = KneserNeyInterpolated(
        3, discount=d, vocabulary=nltk_vocabulary(ours, with_bos=True), counter=nltk_counter(ours, TRAIN)
    )
    bigram_types = {g for g in chain.from_iterable(predicted_ngrams(TRAIN, 3, ours.vocab)) if len(g) == 2}
    left_contexts = {w: sum(1 for g in bigram_types if g[1] == w) for w in ours.next_word_distribution()[0]}
    total, seen_types, v = len(bigram_types), sum(1 for c in left_contexts.values() if c > 0), ours.vocab_size
    for word, n_left in left_contexts.items():
        assert theirs.estimator.unigram_score(word) == pytest.approx(n_left / total, abs=1e-15)
        expected = max(n_left - d, 0) / total + d * seen_types / total / v
        assert ours.prob(word) == pytest.approx(expected, abs=1e-15)
    assert left_contexts[UNK] == 0
    assert theirs.score(UNK, ["the", "cat"]) == 0.0 and ours.prob(UNK, ["the", "cat"]) > 0
    test_ngrams = top_order_ngrams(TEST, 3, ours.vocab)
    assert math.isinf(theirs.perplexity(test_ngrams)) and math.isfinite(ours.perplexity(TEST))


def test_nltk_difference_kneser_ney_predicts_bos():
    """Trained the NLTK way, Kneser–Ney gives <s> probability (NLTK counts the bigram <s> <s>); ours never."""
    theirs, ours = nltk_default(KneserNeyInterpolated, 3, discount=0.75), KneserNey(3).fit(TRAIN)
    assert theirs.score(BOS, ["the", "cat"]) > 0
    assert ours.prob(BOS, ["the", "cat"]) == 0.0 and BOS not in ours.next_word_distribution(["the", "cat"])[0]


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "model",
    [
        MLE(1),
        MLE(2),
        MLE(3),
        Laplace(2),
        AddK(3, k=0.1),
        KneserNey(1),
        KneserNey(2),
        KneserNey(3, discount=0.2),
        KneserNey(4),
    ],
    ids=repr,
)
def test_distributions_sum_to_one(model):
    model.fit(TRAIN)
    seen = {g[:-1] for g in top_order_ngrams(TRAIN, model.order, model.vocab)}
    contexts = sorted(seen)[:20] + [(), ("the",)]
    if not isinstance(model, MLE):
        contexts += [("zebra",) * (model.order - 1), ("rug", "rug", "rug"), ("the", "zebra")]
    for context in contexts:
        tokens, probs = model.next_word_distribution(context)
        assert probs.shape == (model.vocab_size,) and len(tokens) == model.vocab_size
        assert probs.sum() == pytest.approx(1.0, abs=1e-12)
        assert probs[tokens.index(EOS)] == model.prob(EOS, context)
        assert model.prob(BOS, context) == 0.0 and model.prob(PAD, context) == 0.0


def test_stupid_backoff_scores_are_not_normalised():
    model = StupidBackoff(3).fit(TRAIN)
    context = top_order_ngrams(TRAIN, 3, model.vocab)[5][:-1]
    scores = [model.prob(w, context) for w in model.next_word_distribution()[0]]
    assert sum(scores) > 1.0
    tokens, probs = model.next_word_distribution(context)
    assert probs.sum() == pytest.approx(1.0) and np.allclose(probs, np.array(scores) / sum(scores))


# ---------------------------------------------------------------- tiny examples by hand
# HAND = a b / a b b / b. Bigram model: <s> a b </s>, <s> a b b </s>, <s> b </s>.
# Bigram counts: (<s> a) 2, (<s> b) 1, (a b) 2, (b b) 1, (b </s>) 3; unigrams: a 2, b 4, </s> 3 (N = 9).
# Histories: <s>: c = 3, 2 types; a: c = 2, 1 type; b: c = 4, 2 types. V = |{<unk>, </s>, a, b}| = 4.


def test_counts_by_hand():
    model = MLE(3).fit(HAND)
    assert model.vocab_size == 4 and model.num_ngrams() == {1: 3, 2: 5, 3: 7}
    assert [model.count([w]) for w in ["a", "b", EOS, BOS, UNK, "zebra"]] == [2, 4, 3, 0, 0, 0]
    assert model.count(["b", EOS]) == 3 and model.count(["a", "b", "b"]) == 1
    assert model.count([BOS, BOS, "a"]) == 2  # sentences starting with a
    assert model.count([BOS, BOS]) == 0  # <s> <s> is only ever a history


def test_mle_by_hand():
    model = MLE(2).fit(HAND)
    assert model.prob("a", [BOS]) == pytest.approx(2 / 3)
    assert model.prob("b", ["a"]) == 1.0 and model.prob("a", ["a"]) == 0.0
    assert model.prob(EOS, ["b"]) == pytest.approx(3 / 4) and model.prob("b", ["b"]) == pytest.approx(1 / 4)
    assert model.prob("b") == pytest.approx(4 / 9)
    assert model.prob("a", ["zebra"]) == 0.0  # a history never seen has no estimate
    nll = -(2 * math.log(2 / 3) + math.log(1 / 3) + 3 * math.log(3 / 4) + math.log(1 / 4))
    assert model.cross_entropy(HAND) == pytest.approx(nll / 9)
    assert model.perplexity(HAND) == pytest.approx(math.exp(nll / 9))
    assert model.perplexity([["b", "a"]]) == math.inf and model.logprob("a", ["a"]) == -math.inf


def test_shorter_and_longer_contexts():
    model = MLE(3).fit(HAND)
    assert model.prob("b", ["a"]) == pytest.approx(1.0)  # the bigram level: c(a b) / c(a •)
    assert model.prob(EOS, ["b"]) == pytest.approx(3 / 4)
    assert model.prob("b", ["zebra", BOS, "a"]) == model.prob("b", [BOS, "a"]) == 1.0  # last n − 1 tokens
    assert model.prob("b", ["a", "b"]) == pytest.approx(1 / 2)


def test_add_k_by_hand():
    laplace, add_half = Laplace(2).fit(HAND), AddK(2, k=0.5).fit(HAND)
    assert laplace.prob("b", ["a"]) == pytest.approx(3 / 6)
    assert laplace.prob("a", ["a"]) == pytest.approx(1 / 6)
    assert laplace.prob(EOS, ["b"]) == pytest.approx(4 / 8)
    assert laplace.prob(UNK, [BOS]) == pytest.approx(1 / 7)
    assert laplace.prob("a", ["zebra"]) == pytest.approx(1 / 4)  # unseen history: uniform 1/V
    assert add_half.prob("b", ["a"]) == pytest.approx(2.5 / 4)
    assert add_half.prob("a") == pytest.approx(2.5 / 11)


def test_stupid_backoff_by_hand():
    model = StupidBackoff(2).fit(HAND)
    assert model.prob("b", ["a"]) == 1.0
    assert model.prob("a", ["a"]) == pytest.approx(0.4 * 2 / 9)
    assert model.prob("a", ["zebra"]) == pytest.approx(0.4 * 2 / 9)  # an unseen history backs off too
    assert model.prob(UNK, ["a"]) == 0.0
    trigram = StupidBackoff(3, alpha=0.5).fit(HAND)
    assert trigram.prob("a", ["b", "b"]) == pytest.approx(0.5 * 0.5 * 2 / 9)
    assert trigram.prob("b", ["b", "b"]) == pytest.approx(0.5 * 1 / 4)


def test_kneser_ney_by_hand():
    # Continuation counts N1+(• w): a 1 (after <s>), b 3 (after <s>, a, b), </s> 1 (after b);
    # N1+(• •) = 5 bigram types, 3 words with a continuation. P(w) = max(N1+(• w) − .75, 0)/5 + .75·3/5/4.
    model = KneserNey(2, discount=0.75).fit(HAND)
    lowest = {"a": 0.25 / 5 + 0.1125, "b": 2.25 / 5 + 0.1125, EOS: 0.25 / 5 + 0.1125, UNK: 0.1125}
    for word, p in lowest.items():
        assert model.prob(word) == pytest.approx(p, abs=1e-15)
        assert model.prob(word, ["zebra"]) == pytest.approx(p, abs=1e-15)  # unseen history: passed down
    assert model.prob("b", ["a"]) == pytest.approx(1.25 / 2 + 0.75 * 1 / 2 * lowest["b"], abs=1e-15)
    assert model.prob("a", ["a"]) == pytest.approx(0.75 * 1 / 2 * lowest["a"], abs=1e-15)
    assert model.prob(EOS, ["b"]) == pytest.approx(2.25 / 4 + 0.75 * 2 / 4 * lowest[EOS], abs=1e-15)
    # Order 1: plain counts a 2, b 4, </s> 3 (N = 9, 3 types).
    unigram = KneserNey(1, discount=0.75).fit(HAND)
    assert unigram.prob("a") == pytest.approx(1.25 / 9 + 0.75 * 3 / 9 / 4, abs=1e-15)
    assert unigram.prob(UNK) == pytest.approx(0.75 * 3 / 9 / 4, abs=1e-15)


def test_batch_scoring_matches_prob():
    for model in [MLE(3), AddK(2, k=0.1), StupidBackoff(3), KneserNey(3)]:
        model.fit(TRAIN)
        expected = [
            model.logprob(padded[t], padded[t - model.order + 1 : t])
            for sentence in TEST
            for padded in [[BOS] * (model.order - 1) + sentence + [EOS]]
            for t in range(model.order - 1, len(padded))
        ]
        np.testing.assert_allclose(model.token_logprobs(TEST), expected, rtol=1e-12)


# ---------------------------------------------------------------- vocabulary and unknown words


def test_unknown_words_are_scored_as_unk():
    model = KneserNey(3).fit(TRAIN)
    assert "zebra" not in model.vocab and model.count([UNK]) == 0
    assert model.prob("zebra", ["the", "cat"]) == model.prob(UNK, ["the", "cat"]) > 0
    assert model.prob("dog", ["zebra", "cat"]) == model.prob("dog", [UNK, "cat"])


def test_min_freq_gives_unk_real_counts():
    words, counts = np.unique(list(chain.from_iterable(TRAIN)), return_counts=True)
    rare = [str(w) for w, c in zip(words, counts, strict=True) if c < 2]
    assert {"yak", "gnu"} <= set(rare)
    model = MLE(2).fit(TRAIN, min_freq=2)
    assert all(w not in model.vocab for w in rare)
    assert model.count([UNK]) == sum(sentence.count(w) for sentence in TRAIN for w in rare)
    assert model.prob("yak", ["the"]) == model.prob(UNK, ["the"]) == model.prob("okapi", ["the"]) > 0


def test_given_vocabulary_and_vocab_size():
    vocab = Vocabulary.build([*TRAIN, ["zebra", "okapi"]])
    model = KneserNey(2).fit(TRAIN, vocab=vocab)
    assert model.vocab is vocab and model.vocab_size == len(vocab) - 2  # all but <s> and <pad>
    assert model.count(["zebra"]) == 0 and model.prob("zebra", ["the"]) > 0 and "zebra" in model.vocab
    no_pad = Vocabulary(vocab.id_to_token[4:], specials=(UNK, BOS, EOS))
    assert AddK(2).fit(TRAIN, vocab=no_pad).vocab_size == len(no_pad) - 1


# ---------------------------------------------------------------- saving and loading


@pytest.mark.parametrize(
    "model",
    [MLE(3), Laplace(2), AddK(3, k=0.25), StupidBackoff(2, alpha=0.3), KneserNey(3, discount=0.6)],
    ids=repr,
)
def test_save_load_round_trip(tmp_path, model):
    model.fit(TRAIN, min_freq=2)
    path = tmp_path / "model.lm"
    model.save(path)
    loaded = NGramModel.load(path)
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert loaded.vocab.id_to_token == model.vocab.id_to_token and loaded.num_ngrams() == model.num_ngrams()
    contexts = [g[:-1] for g in top_order_ngrams(TRAIN, model.order, model.vocab)[:10]]
    if not isinstance(model, MLE):
        contexts += [("zebra", "dog"), ("dog", "dog")]
    for context in contexts:
        tokens, probs = model.next_word_distribution(context)
        loaded_tokens, loaded_probs = loaded.next_word_distribution(context)
        assert loaded_tokens == tokens and np.array_equal(loaded_probs, probs)
    assert np.array_equal(loaded.token_logprobs(TEST), model.token_logprobs(TEST))
    assert type(model).load(path).generate(seed=3) == model.generate(seed=3)
    assert [p.name for p in tmp_path.iterdir()] == ["model.lm"]
    with np.load(path, allow_pickle=False) as archive:
        assert "metadata" in archive.files


def test_load_rejects_other_files(tmp_path):
    text, pickled, array, npz = (tmp_path / name for name in ["a.txt", "a.pkl", "a.npy", "a.npz"])
    text.write_text("not a model")
    pickled.write_bytes(pickle.dumps({"counts": [1, 2]}))
    np.save(array, np.arange(3))
    np.savez(npz, counts_1=np.arange(3))
    for path in [text, pickled, array, npz]:
        with pytest.raises(ValueError, match="not an n-gram model"):
            NGramModel.load(path)
    MLE(2).fit(TRAIN).save(tmp_path / "mle.npz")
    with pytest.raises(ValueError, match="holds a MLE model, not a KneserNey"):
        KneserNey.load(tmp_path / "mle.npz")
    with pytest.raises(FileNotFoundError):
        NGramModel.load(tmp_path / "missing.npz")


def test_keys_beyond_int64_fall_back_to_python_integers(tmp_path, monkeypatch):
    """With B^n above the int64 range, keys become Python integers; the numbers must not change."""
    reference = [cls(3).fit(TRAIN) for cls in (MLE, StupidBackoff, KneserNey)]
    monkeypatch.setattr(ngram, "_INT64_MAX", 100)
    for expected in reference:
        model = type(expected)(3).fit(TRAIN)
        assert model._key_dtype is object
        assert np.array_equal(model.token_logprobs(TEST), expected.token_logprobs(TEST))
        assert model.count(["the", "cat"]) == expected.count(["the", "cat"])
        model.save(tmp_path / "big.npz")
        loaded = NGramModel.load(tmp_path / "big.npz")
        assert np.array_equal(loaded.token_logprobs(TEST), expected.token_logprobs(TEST))


# ---------------------------------------------------------------- generation


def greedy(model, max_tokens=20):
    history, words = [BOS] * (model.order - 1), []
    for _ in range(max_tokens):
        tokens, probs = model.next_word_distribution(history)
        word = tokens[int(np.argmax(probs))]
        if word == EOS:
            break
        words.append(word)
        history.append(word)
    return words


def test_generate_is_reproducible():
    model = KneserNey(3).fit(TRAIN)
    samples = [model.generate(max_tokens=15, seed=seed) for seed in range(6)]
    assert samples == [model.generate(max_tokens=15, seed=seed) for seed in range(6)]
    assert len({tuple(s) for s in samples}) > 1
    assert all(len(s) <= 15 and BOS not in s and EOS not in s for s in samples)
    assert model.generate(seed=np.random.default_rng(4)) == model.generate(seed=4)


def test_low_temperature_and_top_1_are_greedy():
    for model in [KneserNey(3).fit(TRAIN), MLE(2).fit(TRAIN), StupidBackoff(3).fit(TRAIN)]:
        expected = greedy(model)
        assert model.generate(max_tokens=20, top_k=1, seed=0) == expected
    kneser_ney = KneserNey(3).fit(TRAIN)  # no ties among its probabilities, so T → 0 is greedy too
    assert kneser_ney.generate(max_tokens=20, temperature=1e-6, seed=1) == greedy(kneser_ney)


def test_top_k_only_draws_from_the_k_most_probable():
    model = KneserNey(2).fit(TRAIN)
    for seed in range(5):
        history = [BOS, "the"]
        for word in [*model.generate(max_tokens=10, context=["the"], top_k=3, seed=seed), EOS]:
            tokens, probs = model.next_word_distribution(history)
            assert probs[tokens.index(word)] >= np.sort(probs)[-3]
            history.append(word)


def test_generate_max_tokens():
    model = MLE(2).fit([["a"] * 10])  # P(a | a) = 0.9, P(</s> | a) = 0.1
    assert model.generate(max_tokens=4, top_k=1) == ["a"] * 4
    assert model.generate(max_tokens=0) == []


# ---------------------------------------------------------------- errors


def fitted():
    return MLE(2).fit(TRAIN)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda: MLE(order=0), ValueError, "order"),
        (lambda: KneserNey(order=-1), ValueError, "order"),
        (lambda: MLE(order=2.5), TypeError, "order"),
        (lambda: AddK(2, k=0), ValueError, "k must be a positive"),
        (lambda: AddK(2, k=-1.0), ValueError, "k must be a positive"),
        (lambda: KneserNey(2, discount=0.0), ValueError, "discount"),
        (lambda: KneserNey(2, discount=1.0), ValueError, "discount"),
        (lambda: KneserNey(2, discount=1.5), ValueError, "discount"),
        (lambda: StupidBackoff(2, alpha=0.0), ValueError, "alpha"),
        (lambda: MLE(2).fit([]), ValueError, "no sentences"),
        (lambda: MLE(2).fit([[], []]), ValueError, "no tokens"),
        (lambda: MLE(2).fit(["the cat sat"]), TypeError, "word_tokenize"),
        (lambda: MLE(2).fit("the cat sat"), TypeError, "got a string"),
        (lambda: MLE(2).fit([["the", BOS, "cat"]]), ValueError, "must not contain"),
        (lambda: MLE(2).fit(TRAIN, vocab=Vocabulary(["the"], specials=(UNK,))), ValueError, "boundary token"),
        (lambda: MLE(2).fit(TRAIN, vocab=Vocabulary.build(TRAIN), min_freq=2), ValueError, "min_freq"),
        (lambda: KneserNey(3).prob("the", ["a"]), RuntimeError, r"\.fit"),
        (lambda: KneserNey(3).perplexity(TEST), RuntimeError, r"\.fit"),
        (lambda: KneserNey(3).generate(), RuntimeError, r"\.fit"),
        (lambda: KneserNey(3).save("unused.npz"), RuntimeError, r"\.fit"),
        (lambda: fitted().perplexity([]), ValueError, "no sentences"),
        (lambda: fitted().perplexity(["the cat"]), TypeError, "word_tokenize"),
        (lambda: fitted().prob("cat", "the"), TypeError, "not a string"),
        (lambda: fitted().count([]), ValueError, "1 to 2 tokens"),
        (lambda: fitted().count(["a", "b", "c"]), ValueError, "1 to 2 tokens"),
        (lambda: fitted().generate(temperature=0), ValueError, "temperature"),
        (lambda: fitted().generate(top_k=0), ValueError, "top_k"),
        (lambda: fitted().generate(context=["zebra"]), ValueError, "never saw"),
        (
            lambda: KneserNey(2).fit(TRAIN, vocab=Vocabulary(["the"], specials=(BOS, EOS))),
            KeyError,
            "not in the",
        ),
    ],
)
def test_clear_errors(action, error, message):
    with pytest.raises(error, match=message):
        action()


def test_teaching_functions_agree_with_the_vectorised_model():
    sentences = [["the", "cat", "sat"], ["the", "dog"], ["a", "cat", "sat", "down"]]
    assert padded_ngrams(["a"], 3) == [("<s>", "<s>", "a"), ("<s>", "a", "</s>")]
    for n in (1, 2, 3):
        counts = count_ngrams(sentences, n)
        model = MLE(order=n).fit(sentences)
        totals = context_totals(counts)
        for gram, count in counts.items():
            assert model.count(gram) == count
            assert model.prob(gram[-1], gram[:-1]) == pytest.approx(count / totals[gram[:-1]], abs=1e-12)
    probs = np.array([0.1, 0.6, 0.3])
    assert np.allclose(sampling_distribution(probs, 1.0, 2), [0, 2 / 3, 1 / 3])
    assert np.allclose(sampling_distribution(probs, 0.5), probs**2 / (probs**2).sum())
    with pytest.raises(ValueError, match="the order n"):
        padded_ngrams(["a"], 0)
    with pytest.raises(ValueError, match="temperature"):
        sampling_distribution(probs, 0.0)
