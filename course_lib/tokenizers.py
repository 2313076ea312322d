"""Turning raw text into tokens.

Two granularities are used in the course: words (n-gram and word-level neural
language models) and characters (character-level RNNs).
"""

from __future__ import annotations

import re

_WORD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z_\d]*(?:'[A-Za-z]+)?|\d+(?:\.\d+)?|[^\sA-Za-z_\d]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")


def word_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into words, numbers and single punctuation marks.

    Identifiers such as ``read_text`` or ``utf8`` stay one word.

    >>> word_tokenize("Return the list's length, or -1.")
    ['return', 'the', "list's", 'length', ',', 'or', '-', '1', '.']
    """
    if lowercase:
        text = text.lower()
    return _WORD_PATTERN.findall(text)


def char_tokenize(text: str) -> list[str]:
    """Split ``text`` into its characters (whitespace included)."""
    return list(text)


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences at '.', '!' or '?' followed by a capital.

    Whitespace inside a sentence (line breaks of a docstring) is collapsed to one space.
    Blank lines also end a sentence.
    """
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        sentences.extend(s for s in _SENTENCE_END.split(paragraph) if s)
    return sentences
