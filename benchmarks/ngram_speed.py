"""Speed of course_lib.ngram: an interpolated Kneser–Ney trigram against NLTK.

As a script, it prints the build time, throughput, peak memory and held-out perplexity of the
model on 1.7 million tokens of the standard library's source, then times course_lib and NLTK's
``KneserNeyInterpolated`` side by side on a 50,000-token subset (building, and scoring the same
held-out trigrams; best of three runs, except NLTK's slow scoring), on one CPU thread:

    .venv/bin/python benchmarks/ngram_speed.py

In the suite (``python -m benchmarks --only ngram_speed``), :func:`run` measures the same
comparison at the size of the profile, the two libraries taking turns
(:func:`benchmarks.common.interleaved_medians`), and reports NLTK's time over course_lib's for
building, for scoring and for both.
"""

import os
import resource
import sys
import time
import tracemalloc
from typing import TYPE_CHECKING

if __name__ == "__main__":
    # One thread: set before NumPy (imported by nltk and course_lib) starts its thread pools. In
    # the suite the process is shared with torch, and its thread settings are left alone.
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"

from nltk.lm import KneserNeyInterpolated  # noqa: E402
from nltk.lm.preprocessing import padded_everygram_pipeline  # noqa: E402

from course_lib.data.stdlib import python_source_text  # noqa: E402
from course_lib.ngram import KneserNey  # noqa: E402
from course_lib.tokenizers import word_tokenize  # noqa: E402

if TYPE_CHECKING:
    from benchmarks.common import Context, Outcome

NAME = "ngram_speed"
TITLE = "n-gram estimation: course_lib against NLTK"
ORDER = 3
DISCOUNT = 0.75
TRAIN_TOKENS = 1_700_000
HELD_OUT_TOKENS = 50_000
NLTK_TOKENS = 50_000
NLTK_SCORED_NGRAMS = 1_000
REPEATS = 3


def load_sentences(min_tokens: int) -> list[list[str]]:
    """The standard library's Python source, one word-tokenized line per sentence.

    Lines are taken in order (blank lines skipped) until at least ``min_tokens`` tokens
    are collected.
    """
    sentences, n_tokens = [], 0
    for line in python_source_text().splitlines():
        tokens = word_tokenize(line)
        if tokens:
            sentences.append(tokens)
            n_tokens += len(tokens)
            if n_tokens >= min_tokens:
                break
    return sentences


def split_by_tokens(sentences: list[list[str]], n_tokens: int) -> tuple[list[list[str]], list[list[str]]]:
    """The shortest prefix of ``sentences`` with at least ``n_tokens`` tokens, and the rest."""
    total = 0
    for i, sentence in enumerate(sentences):
        total += len(sentence)
        if total >= n_tokens:
            return sentences[: i + 1], sentences[i + 1 :]
    return sentences, []


def n_tokens(sentences: list[list[str]]) -> int:
    return sum(map(len, sentences))


def timed(function, *args, repeats: int = 1):
    """(result, best wall-clock time in seconds over ``repeats`` calls)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


def fit_kneser_ney(sentences: list[list[str]]) -> KneserNey:
    return KneserNey(order=ORDER, discount=DISCOUNT).fit(sentences)


def fit_nltk(sentences: list[list[str]]) -> KneserNeyInterpolated:
    model = KneserNeyInterpolated(ORDER, discount=DISCOUNT)
    model.fit(*padded_everygram_pipeline(ORDER, sentences))
    return model


def held_out_trigrams(sentences: list[list[str]]) -> list[tuple[tuple[str, ...], str]]:
    """Every (context, word) pair of order ``ORDER`` of the padded sentences, for one-by-one scoring."""
    return [
        (tuple(padded[t - ORDER + 1 : t]), padded[t])
        for sentence in sentences
        for padded in [["<s>"] * (ORDER - 1) + sentence + ["</s>"]]
        for t in range(ORDER - 1, len(padded))
    ]


def run(context: "Context") -> "Outcome":
    """The suite's comparison at the size of the profile: NLTK's time over course_lib's (side by side)."""
    # Imported here: run as a script, this file's folder (not the repository) is on the path.
    from benchmarks.common import Outcome, interleaved_medians, rounded

    settings = {
        "order": ORDER,
        "discount": DISCOUNT,
        "train_tokens": context.pick(20_000, 300_000, TRAIN_TOKENS),
        "nltk_tokens": context.pick(5_000, NLTK_TOKENS, NLTK_TOKENS),
        "scored_tokens": context.pick(200, NLTK_SCORED_NGRAMS, NLTK_SCORED_NGRAMS),
        "rounds": context.pick(1, REPEATS, REPEATS),
    }
    sentences = load_sentences(settings["train_tokens"] + HELD_OUT_TOKENS)
    train, held_out = split_by_tokens(sentences, settings["train_tokens"])
    model = fit_kneser_ney(train)
    subset, _ = split_by_tokens(train, settings["nltk_tokens"])
    scored, _ = split_by_tokens(held_out, settings["scored_tokens"])
    ours, theirs = fit_kneser_ney(subset), fit_nltk(subset)
    trigrams = held_out_trigrams(scored)
    seconds = interleaved_medians(
        {
            "build, course_lib": lambda: fit_kneser_ney(subset),
            "build, nltk": lambda: fit_nltk(subset),
            "score, course_lib (vectorised)": lambda: ours.token_logprobs(scored),
            "score, course_lib (one by one)": lambda: [
                ours.prob(word, history) for history, word in trigrams
            ],
            "score, nltk": lambda: [theirs.score(word, history) for history, word in trigrams],
        },
        settings["rounds"],
        context.device,
        warmup=0,
    )
    ours_total = seconds["build, course_lib"] + seconds["score, course_lib (vectorised)"]
    nltk_total = seconds["build, nltk"] + seconds["score, nltk"]
    figures = {
        "train_tokens": n_tokens(train),
        "held_out_perplexity": rounded(model.perplexity(held_out), 4),
        "ngrams": model.num_ngrams(),
        "compared_on_tokens": n_tokens(subset),
        "scored_trigrams": len(trigrams),
        "nltk_over_course_lib": {
            "build": rounded(seconds["build, nltk"] / seconds["build, course_lib"]),
            "score (vectorised)": rounded(seconds["score, nltk"] / seconds["score, course_lib (vectorised)"]),
            "score (one by one)": rounded(seconds["score, nltk"] / seconds["score, course_lib (one by one)"]),
            "build + score": rounded(nltk_total / ours_total),
        },
    }
    notes = ["CPU only, in the suite's process (threads not limited); NLTK estimates lazily, at scoring time"]
    return Outcome(settings=settings, figures=figures, notes=notes)


def main() -> None:
    sentences = load_sentences(TRAIN_TOKENS + HELD_OUT_TOKENS)
    train, rest = split_by_tokens(sentences, TRAIN_TOKENS)
    held_out, _ = split_by_tokens(rest, HELD_OUT_TOKENS)
    print(f"Python {sys.version.split()[0]}, numpy threads forced to 1")
    print(
        f"corpus: standard-library source, one line per sentence: {len(train):,} training sentences, "
        f"{len(held_out):,} held-out sentences"
    )

    model, build_s = timed(fit_kneser_ney, train)
    tracemalloc.start()
    fit_kneser_ney(train)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tokens = n_tokens(train)
    print(
        f"kneser-ney trigram: {tokens:,} tokens in {build_s:.2f} s ({tokens / build_s:,.0f} tokens/s), "
        f"peak memory {peak_bytes / 2**20:,.0f} MB (traced during fit; "
        f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MB)"
    )
    sizes = model.num_ngrams()
    print(
        f"model: V = {model.vocab_size:,} predictable tokens; "
        + ", ".join(f"{count:,} {k}-grams" for k, count in sizes.items())
    )
    perplexity, score_s = timed(model.perplexity, held_out)
    predictions = n_tokens(held_out) + len(held_out)
    print(
        f"held-out: {predictions:,} predicted tokens scored in {score_s:.3f} s "
        f"({predictions / score_s:,.0f} tokens/s), perplexity {perplexity:.2f}"
    )

    subset, _ = split_by_tokens(train, NLTK_TOKENS)
    scored, _ = split_by_tokens(held_out, NLTK_SCORED_NGRAMS)
    ours, ours_build_s = timed(fit_kneser_ney, subset, repeats=REPEATS)
    nltk_model, nltk_build_s = timed(fit_nltk, subset, repeats=REPEATS)
    _, ours_score_s = timed(ours.token_logprobs, scored, repeats=REPEATS)
    trigrams = held_out_trigrams(scored)
    _, nltk_score_s = timed(lambda: [nltk_model.score(word, context) for context, word in trigrams])
    _, ours_loop_s = timed(lambda: [ours.prob(word, context) for context, word in trigrams])
    print(
        f"\nside by side on the first {n_tokens(subset):,} training tokens "
        f"(trigram, discount {DISCOUNT}), scoring {len(trigrams)} held-out trigrams:"
    )
    print(f"{'':28}{'build':>12}{'score':>14}")
    print(f"{'course_lib (vectorised)':28}{ours_build_s:>10.3f} s{ours_score_s * 1e3:>11.2f} ms")
    print(f"{'course_lib (prob, one by one)':28}{'':>12}{ours_loop_s * 1e3:>11.2f} ms")
    print(f"{'nltk.lm':28}{nltk_build_s:>10.3f} s{nltk_score_s * 1e3:>11.2f} ms")
    print(
        f"{'speed ratio nltk / ours':28}{nltk_build_s / ours_build_s:>11.0f}x"
        f"{nltk_score_s / ours_score_s:>13.0f}x (one by one: {nltk_score_s / ours_loop_s:,.0f}x)"
    )
    ours_total, nltk_total = ours_build_s + ours_score_s, nltk_build_s + nltk_score_s
    print(
        f"build + score (nltk.lm estimates lazily, at scoring time): ours {ours_total:.3f} s, "
        f"nltk {nltk_total:.2f} s, ratio {nltk_total / ours_total:,.0f}x"
    )


if __name__ == "__main__":
    main()
