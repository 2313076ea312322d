"""The Penn Treebank language-modelling benchmark, in Mikolov's preprocessed split.

The three files (``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``) hold one sentence a
line, lower-cased, numbers replaced by ``N`` and the words outside the 10,000 most frequent
already replaced by ``<unk>``. With an end-of-sentence token after every line the splits have
929,589 / 73,760 / 82,430 tokens and the vocabulary has exactly 10,000 types (``<unk>`` and
``</s>`` included), the setting of the perplexity tables of Mikolov (2011) and Zaremba et al.
(2014). The files are fetched through :mod:`course_lib.data.download` (cache, mirror, or the
public URL, always checked against their sha256).

The treebank text is distributed by the LDC under its licence; this split is the one every
language-modelling paper since 2010 reports on.

    train = load_ptb("train")                   # list of sentences, each a list of words
    vocab = ptb_vocabulary()                    # 10,000 ids: <unk>, </s>, then by frequency
    streams = ptb_streams(vocab)                # {"train": (929589,), "valid": ..., "test": ...}
"""

from __future__ import annotations

import functools
import os

import torch

from course_lib.data.batching import encode_stream
from course_lib.data.download import PTB_TEST, PTB_TRAIN, PTB_VALID, fetch
from course_lib.vocab import EOS, UNK, Vocabulary

SPLITS = {"train": PTB_TRAIN, "valid": PTB_VALID, "test": PTB_TEST}
PTB_SPECIALS = (UNK, EOS)
"""The vocabulary's special tokens: PTB's own ``<unk>``, and the end of sentence."""


def load_ptb(
    split: str, cache_dir: str | os.PathLike[str] | None = None, mirror: str | os.PathLike[str] | None = None
) -> list[list[str]]:
    """The sentences of one split (``"train"``, ``"valid"`` or ``"test"``), each a list of words."""
    if split not in SPLITS:
        raise ValueError(f"unknown Penn Treebank split {split!r}; use one of {sorted(SPLITS)}")
    return _read_sentences(str(fetch(SPLITS[split], cache_dir, mirror)))


@functools.lru_cache(maxsize=3)
def _read_sentences(path: str) -> list[list[str]]:
    with open(path, encoding="utf-8") as lines:
        return [line.split() for line in lines if line.strip()]


def ptb_vocabulary(train: list[list[str]] | None = None) -> Vocabulary:
    """The 10,000-word vocabulary of the training split: ``<unk>``, ``</s>``, then by frequency."""
    return Vocabulary.build(train if train is not None else load_ptb("train"), specials=PTB_SPECIALS)


def ptb_streams(vocab: Vocabulary | None = None) -> dict[str, torch.Tensor]:
    """Each split as one stream of ids with ``</s>`` after every sentence, shape (N,), int64."""
    vocab = vocab or ptb_vocabulary()
    return {split: encode_stream(load_ptb(split), vocab) for split in SPLITS}
