"""BLEU and exact match: scoring generated captions (or translations) against references.

**BLEU** (Papineni et al., 2002) compares the n-grams of each hypothesis with those of its
references. For n = 1 … 4 the *clipped precision* p_n counts, over the whole corpus, the
hypothesis n-grams found in a reference, each n-gram at most as many times as it occurs in
the reference where it occurs most often:

    p_n = Σ_sentences Σ_g min(count_hyp(g), max_r count_r(g)) / Σ_sentences (number of hypothesis n-grams).

Precision alone rewards short outputs, so a **brevity penalty** compares the total length c
of the hypotheses with the total length r of the references, taking for each sentence the
reference whose length is closest to the hypothesis (the shorter one on a tie):

    BP = 1 if c > r, else exp(1 − r / c),        BLEU = 100 · BP · (p_1 p_2 p_3 p_4)^(1/4).

It is a *corpus* score: the counts are summed over all sentences before the precisions are
formed, which is not the mean of sentence scores. Several references per hypothesis make it
fairer, since a correct output phrased like any of them gets credit.

The numbers come from ``sacrebleu`` (the standard implementation, so that scores can be
compared across papers), with its default settings: the ``13a`` tokenizer (the one of the WMT
evaluations, which splits off punctuation; on lower-case captions made of words and spaces
it splits at the spaces and nothing else), case-sensitive matching, and the ``exp``
smoothing, which only matters when some p_n is zero. Sentence-level BLEU uses
sacrebleu's effective order (precisions only up to the hypothesis length).

**Exact match** is the share of hypotheses equal to one of their references, after
lower-casing and collapsing white space.
"""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu

TOKENIZER = "13a"
"""The sacrebleu tokenizer used by :func:`corpus_bleu` and :func:`sentence_bleu`."""


def _check(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if isinstance(hypotheses, str) or any(isinstance(refs, str) for refs in references):
        raise TypeError("give a list of hypotheses and, for each, a list of reference strings")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} lists of references")
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every hypothesis needs at least one reference")


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Transpose per-hypothesis references into sacrebleu's reference streams.

    ``references[i]`` lists the references of hypothesis i; sacrebleu wants stream k to hold
    the k-th reference of every hypothesis. Hypotheses with fewer references than the most
    get ``None`` in the streams they lack, which sacrebleu skips.
    """
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def corpus_bleu_score(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> sacrebleu.BLEUScore:
    """sacrebleu's full result for corpus BLEU: ``.score``, ``.precisions``, ``.bp``, ``.counts``,
    ``.totals``, ``.sys_len`` and ``.ref_len``."""
    _check(hypotheses, references)
    return sacrebleu.corpus_bleu(list(hypotheses), reference_streams(references), tokenize=TOKENIZER)


def corpus_bleu(hypotheses: list[str], references: list[list[str]]) -> float:
    """Corpus BLEU in [0, 100] of the hypotheses, each against its own list of references."""
    return corpus_bleu_score(hypotheses, references).score


def sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    """BLEU in [0, 100] of one hypothesis against its references (sacrebleu, effective order)."""
    _check([hypothesis], [references])
    return sacrebleu.sentence_bleu(hypothesis, list(references), tokenize=TOKENIZER).score


def normalise(text: str) -> str:
    """Lower case, single spaces, no space at either end."""
    return " ".join(text.lower().split())


def exact_match(hypotheses: list[str], references: list[list[str]]) -> float:
    """The share (in [0, 1]) of hypotheses equal to at least one of their references, after
    :func:`normalise`."""
    _check(hypotheses, references)
    hits = sum(
        normalise(hypothesis) in {normalise(r) for r in refs}
        for hypothesis, refs in zip(hypotheses, references, strict=True)
    )
    return hits / len(hypotheses)
