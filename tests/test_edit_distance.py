"""Tests of the sequence metrics of course_lib.metrics: edit distance, word and phoneme error rates.

Oracles: ``nltk.edit_distance`` on random strings and token lists, and cases worked out by hand.
"""

import random

import nltk
import pytest

from course_lib.metrics import edit_distance, phoneme_error_rate, word_error_rate


def test_edit_distance_hand_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("", "") == 0
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance(("N", "AY", "T"), ("K", "N", "AY", "T")) == 1
    assert edit_distance(["R", "EH", "D"], ("R", "IY", "D")) == 1  # lists and tuples compare by items


def test_edit_distance_matches_nltk():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choices("abcd", k=rng.randrange(0, 12)))
        b = "".join(rng.choices("abcd", k=rng.randrange(0, 12)))
        assert edit_distance(a, b) == nltk.edit_distance(a, b) == edit_distance(b, a)
    phonemes = ["AH", "B", "K", "N", "T"]
    for _ in range(100):
        a = rng.choices(phonemes, k=rng.randrange(1, 9))
        b = rng.choices(phonemes, k=rng.randrange(1, 9))
        assert edit_distance(a, b) == nltk.edit_distance(a, b)


def test_word_error_rate_with_several_references():
    references = [
        [("R", "EH", "D"), ("R", "IY", "D")],  # read
        [("N", "AY", "T")],  # knight
        [("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")],  # tomato
        [("AH",), ("EY",)],  # a
    ]
    predictions = [("R", "IY", "D"), ("K", "N", "AY", "T"), ["T", "AH", "M", "AA", "T", "OW"], ("AH",)]
    assert word_error_rate(predictions, references) == pytest.approx(1 / 4)
    assert word_error_rate([p for refs in references for p in refs[:1]], references) == 0
    assert word_error_rate(["1999-03-03", "1999-03-04"], [["1999-03-03"], ["2000-01-01"]]) == 0.5


def test_phoneme_error_rate_uses_the_closest_reference():
    references = [
        [("R", "EH", "D"), ("R", "IY", "D")],
        [("N", "AY", "T")],
        [("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")],
    ]
    predictions = [("R", "IY", "D"), ("K", "N", "AY", "T"), ("T", "AH", "M", "AA", "D", "OW")]
    # distances 0 (second reference), 1 (insertion), 1 (closest is the second reference)
    assert phoneme_error_rate(predictions, references) == pytest.approx(2 / (3 + 3 + 6))
    # closest reference for a short prediction: "AH" is 1 edit from ("AH", "B") and 2 from ("EY", "B", "IY")
    assert phoneme_error_rate([("AH",)], [[("EY", "B", "IY"), ("AH", "B")]]) == pytest.approx(1 / 2)
    # ("A", "B") is 1 edit from both references; ties go to the first listed, whose length counts
    assert phoneme_error_rate([("A", "B")], [[("A",), ("A", "B", "C")]]) == 1
    assert phoneme_error_rate([("A", "B")], [[("A", "B", "C"), ("A",)]]) == pytest.approx(1 / 3)
    assert phoneme_error_rate([("X", "Y")], [[("A", "B", "C"), ("X", "Y", "Z", "W")]]) == pytest.approx(2 / 4)
    # longer predictions than references can give a rate above 1
    assert phoneme_error_rate([("A", "B", "C")], [[("D",)]]) == 3


def test_error_rates_reject_bad_input():
    with pytest.raises(ValueError, match="2 predictions for 1"):
        word_error_rate([("A",), ("B",)], [[("A",)]])
    with pytest.raises(ValueError, match="no reference"):
        phoneme_error_rate([("A",)], [[]])
    with pytest.raises(TypeError, match="list of references"):
        word_error_rate(["1999-03-03"], ["1999-03-03"])
    with pytest.raises(ValueError, match="no predictions"):
        word_error_rate([], [])
