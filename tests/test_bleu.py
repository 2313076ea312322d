"""BLEU and exact match: against sacrebleu called directly, and against scores computed by hand."""

from __future__ import annotations

import math
import random

import pytest
import sacrebleu

from course_lib.bleu import (
    corpus_bleu,
    corpus_bleu_score,
    exact_match,
    normalise,
    reference_streams,
    sentence_bleu,
)

WORDS = "a small large red blue circle square above below is there".split()


def random_corpus(seed: int, n: int = 40, refs: int = 3) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))

    references = [[sentence() for _ in range(refs)] for _ in range(n)]
    # Hypotheses that share some n-grams with their references: a reference with a few words changed.
    hypotheses = []
    for refs_i in references:
        words = rng.choice(refs_i).split()
        for _ in range(rng.randint(0, 2)):
            words[rng.randrange(len(words))] = rng.choice(WORDS)
        hypotheses.append(" ".join(words))
    return hypotheses, references


def test_corpus_bleu_equals_sacrebleu_with_reference_streams():
    hypotheses, references = random_corpus(0)
    streams = [[refs[k] for refs in references] for k in range(3)]
    expected = sacrebleu.corpus_bleu(hypotheses, streams).score
    assert 5 < expected < 95
    assert corpus_bleu(hypotheses, references) == pytest.approx(expected, abs=1e-9)
    assert reference_streams(references) == streams


def test_a_varying_number_of_references_works_like_repeating_one():
    """Repeating a reference changes neither the clipping counts (a maximum) nor the closest length."""
    hypotheses, references = random_corpus(1)
    ragged = [refs[: 1 + i % 3] for i, refs in enumerate(references)]
    padded = [refs + [refs[-1]] * (3 - len(refs)) for refs in ragged]
    assert reference_streams(ragged)[2][0] is None
    assert corpus_bleu(hypotheses, ragged) == pytest.approx(corpus_bleu(hypotheses, padded), abs=1e-9)


def test_perfect_match_is_100_and_no_shared_word_is_0():
    refs = [["a small red circle above a blue square", "there is a red circle"]]
    assert corpus_bleu(["a small red circle above a blue square"], refs) == pytest.approx(100.0)
    assert corpus_bleu(["there is a red circle"], refs) == pytest.approx(100.0)
    assert corpus_bleu(["large green triangle below"], refs) == pytest.approx(0.0)


def test_brevity_penalty_and_precisions_by_hand():
    """Hypothesis of 7 words, reference of 8; one wrong n-gram of each order at the end:
    p = 7/7, 5/6, 4/5, 3/4 and BP = exp(1 − 8/7)."""
    hypothesis = "a small red circle above a square"
    reference = "a small red circle above a blue square"
    score = corpus_bleu_score([hypothesis], [[reference]])
    assert score.counts == [7, 5, 4, 3] and score.totals == [7, 6, 5, 4]
    assert (score.sys_len, score.ref_len) == (7, 8)
    by_hand = 100 * math.exp(1 - 8 / 7) * (1 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    assert corpus_bleu([hypothesis], [[reference]]) == pytest.approx(by_hand, abs=1e-9)
    assert by_hand == pytest.approx(72.895, abs=1e-3)


def test_counts_are_clipped_by_the_reference_where_a_word_occurs_most():
    hypothesis = "a a a a a"
    score = corpus_bleu_score([hypothesis], [["a small red circle"]])
    assert score.counts[0] == 1 and score.totals[0] == 5  # "a" counted once: it occurs once
    two = corpus_bleu_score([hypothesis], [["a small red circle", "a circle above a square"]])
    assert two.counts[0] == 2  # the second reference has "a" twice


def test_the_closest_reference_length_sets_the_brevity_penalty():
    hypothesis = "a red circle is above a blue square"  # 8 words, all in both references
    references = ["a red circle is above a blue square to the left", "a red circle is above a blue square"]
    score = corpus_bleu_score([hypothesis], [references])
    assert score.ref_len == 8 and score.bp == pytest.approx(1.0)
    short = corpus_bleu_score(["a red circle is above"], [references])
    assert short.ref_len == 8 and short.bp == pytest.approx(math.exp(1 - 8 / 5))


def test_corpus_bleu_pools_counts_before_the_geometric_mean():
    hypotheses = ["a small red circle above a square", "there is a blue square"]
    references = [["a small red circle above a blue square"], ["there is a blue square"]]
    # Summed statistics: lengths 7 + 5 = 12 against 8 + 5 = 13, matches (7+5, 5+4, 4+3, 3+2)
    # out of (7+5, 6+4, 5+3, 4+2).
    by_hand = 100 * math.exp(1 - 13 / 12) * (12 / 12 * 9 / 10 * 7 / 8 * 5 / 6) ** 0.25
    assert corpus_bleu(hypotheses, references) == pytest.approx(by_hand, abs=1e-9)
    mean_of_sentences = (sentence_bleu(hypotheses[0], references[0]) + 100) / 2
    assert abs(by_hand - mean_of_sentences) > 1


def test_sentence_bleu_equals_sacrebleu():
    hypotheses, references = random_corpus(2, n=10)
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        expected = sacrebleu.sentence_bleu(hypothesis, refs).score
        assert sentence_bleu(hypothesis, refs) == pytest.approx(expected, abs=1e-9)


def test_exact_match_ignores_case_and_spacing_and_accepts_any_reference():
    hypotheses = ["A small  red circle ", "a blue square", "a red square"]
    references = [["a small red circle"], ["there is a blue square", "a blue square"], ["a red circle"]]
    assert exact_match(hypotheses, references) == pytest.approx(2 / 3)
    assert normalise("  A  b\tC ") == "a b c"


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        corpus_bleu(["a", "b"], [["a"]])
    with pytest.raises(ValueError):
        exact_match(["a"], [[]])
    with pytest.raises(TypeError):
        corpus_bleu("a red circle", [["a red circle"]])
    with pytest.raises(TypeError):
        exact_match(["a red circle"], ["a red circle"])
