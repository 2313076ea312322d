"""N-gram language models: counting, smoothing, evaluation and sampling.

An n-gram model of order n keeps only the last n − 1 words of the history:

    P(w_1 … w_m) = Π_t P(w_t | w_1 … w_{t−1}) ≈ Π_t P(w_t | w_{t−n+1} … w_{t−1}).

Below, h is such a history (n − 1 words or fewer), h w the n-gram it forms with the next
word w, and h' the history h without its first (oldest) word. Four estimators share one
set of counts:

* ``MLE``: relative frequencies c(h w) / c(h •);
* ``AddK``: add-k smoothing, with ``Laplace`` for add-one (k = 1);
* ``StupidBackoff``: Brants et al. (2007), a score rather than a normalised distribution;
* ``KneserNey``: interpolated Kneser–Ney with one discount d (Chen & Goodman, 1999).

>>> from course_lib.ngram import KneserNey
>>> lm = KneserNey(order=2).fit([["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"]])
>>> round(lm.prob("cat", ["the"]), 4), lm.count(["the", "cat"]), lm.num_ngrams()
(0.268, 1, {1: 7, 2: 10})
>>> round(lm.perplexity([["the", "cat", "ran"]]), 3)
3.213

Sentence boundaries
-------------------
A model of order n reads each sentence w_1 … w_m as

    <s> … <s> w_1 … w_m </s>        (n − 1 copies of <s>, one </s>)

and predicts w_1, …, w_m and </s>: m + 1 predictions per sentence. ``<s>`` is only ever
context, so every model gives it probability 0; predicting ``</s>`` is how the model learns
where sentences end. Sentences passed in must not contain ``<s>``, ``</s>`` or ``<pad>``.

What is counted
---------------
For every predicted position t and every k = 1 … n, the k-gram x_{t−k+1} … x_t ending at
t is counted once; c(·) is that count. So c(w) counts w as a predicted token (c(<s>) = 0),
c(<s> <s> w) is the number of sentences starting with w, and

    c(h •) = Σ_w c(h w)            how often h was followed by a predicted token,
    N_{1+}(h •) = |{w : c(h w) > 0}|   how many different words followed h.

Vocabulary and unknown words
----------------------------
* Without ``vocab``, ``fit`` builds one with ``Vocabulary.build(sentences, min_freq)``.
* A word not in the vocabulary is replaced by ``<unk>``, in training and in scoring. With
  ``min_freq > 1`` the rare training words become ``<unk>``, which then has real counts;
  with ``min_freq = 1`` it has none and only smoothing gives it probability.
* ``<unk>`` is scored like any other word: perplexity includes the predictions of
  ``<unk>``, so models are only comparable when they share a vocabulary.
* The *predictable* tokens are all vocabulary entries except ``<s>`` and ``<pad>``: the
  ordinary words, ``<unk>`` and ``</s>`` (and any other special token of the vocabulary).
  Their number is the V of add-k and of Kneser–Ney's uniform distribution:

      V = len(vocab) − |{<s>, <pad>} ∩ vocab|.

Evaluation
----------
Over the T predicted tokens x_t of a text (every word and every ``</s>``, histories
padded with ``<s>`` as above),

    cross_entropy = −(1/T) Σ_t ln P(x_t | h_t)   (nats per token),   perplexity = exp(cross_entropy).

One zero probability (MLE meeting an unseen n-gram, stupid backoff an unseen word) makes
both ``math.inf``; no error is raised.

Storage
-------
Tokens are their vocabulary ids 0 … B − 1 (B = len(vocab)). A k-gram is one integer key,

    key(w_1 … w_k) = w_1·B^{k−1} + w_2·B^{k−2} + … + w_k,

so keys sort like the id tuples, the k-grams sharing a history h are adjacent, and
key(h) = key(h w) // B, key(w_2 … w_k) = key(w_1 … w_k) mod B^{k−1}. Counting is
``np.unique`` over the keys of the whole corpus; looking up is ``np.searchsorted``. Keys
are int64 when B^n < 2^63; beyond that (5-grams over 10,000 words, say) they are Python
integers in object arrays: same results, roughly 5 to 10 times slower.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from course_lib.vocab import BOS, EOS, PAD, Vocabulary

_INT64_MAX = np.iinfo(np.int64).max
_FILE_FORMAT = "course_lib.ngram"
_FILE_VERSION = 1

_Model = TypeVar("_Model", bound="NGramModel")


# ---------------------------------------------------------------------- the definitions, one n-gram at a time
# These small functions state what the models compute, in plain Python; the models below compute
# the same numbers with vectorised NumPy. Chapter 1 and its assignment use them as references.


def padded_ngrams(sentence: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of one sentence read as ``<s>``·(n − 1), w_1 … w_m, ``</s>``: m + 1 of them.

    >>> padded_ngrams(["the", "cat"], 2)
    [('<s>', 'the'), ('the', 'cat'), ('cat', '</s>')]
    """
    if n < 1:
        raise ValueError(f"the order n must be at least 1, got n={n}")
    padded = [BOS] * (n - 1) + list(sentence) + [EOS]
    return [tuple(padded[i : i + n]) for i in range(len(padded) - n + 1)]


def count_ngrams(sentences: Sequence[Sequence[str]], n: int) -> Counter[tuple[str, ...]]:
    """c(h w) for every padded n-gram of ``sentences`` (see :func:`padded_ngrams`)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for sentence in _as_sentence_list(sentences, "count_ngrams"):
        counts.update(padded_ngrams(sentence, n))
    return counts


def context_totals(ngram_counts: Counter[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    """c(h •) = Σ_w c(h w) for every history h of the given n-gram counts."""
    totals: Counter[tuple[str, ...]] = Counter()
    for ngram, count in ngram_counts.items():
        totals[ngram[:-1]] += count
    return totals


def _check_sampling_arguments(temperature: float, top_k: int | None) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (or None), got {top_k}")


def sampling_distribution(
    probs: np.ndarray, temperature: float = 1.0, top_k: int | None = None
) -> np.ndarray:
    """Reshape a next-word distribution for sampling; the result sums to 1.

    Top-k keeps the k most probable entries of ``probs`` (ties: the lower index) and zeroes
    the others; then the temperature T > 0 gives q_i ∝ p_i^{1/T} = exp(ln p_i / T), so T < 1
    sharpens the distribution, T → 0 approaches the argmax and T > 1 flattens it.

    Args:
        probs: probabilities (or non-negative scores), shape (V,).
        temperature: T > 0.
        top_k: how many entries to keep, k ≥ 1; ``None`` keeps all.
    """
    _check_sampling_arguments(temperature, top_k)
    probs = np.asarray(probs, dtype=float)
    if top_k is not None and top_k < len(probs):
        kept = np.argsort(-probs, kind="stable")[:top_k]
        truncated = np.zeros_like(probs)
        truncated[kept] = probs[kept]
        probs = truncated
    with np.errstate(divide="ignore"):
        logits = np.log(probs) / temperature
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def _ngram_keys(ids: np.ndarray, base: int, dtype: type | np.dtype) -> np.ndarray:
    """Keys of the n-grams in the rows of ``ids`` (shape (N, k)) → shape (N,).

    Horner's rule: key = ((w_1·B + w_2)·B + …)·B + w_k. With no columns (the empty history)
    every key is 0.
    """
    columns = ids.astype(dtype)
    keys = np.zeros(ids.shape[0], dtype=dtype)
    for j in range(ids.shape[1]):
        keys = keys * base + columns[:, j]
    return keys


def _ngram_ids(keys: np.ndarray, base: int, k: int) -> np.ndarray:
    """Inverse of :func:`_ngram_keys`: the (N, k) int64 ids of N keys of k-grams."""
    ids = np.empty((len(keys), k), dtype=np.int64)
    for j in range(k - 1, -1, -1):
        ids[:, j] = (keys % base).astype(np.int64)
        keys = keys // base
    return ids


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values[i]`` where ``sorted_keys[i] == query``, 0 for query keys that are absent."""
    position = np.minimum(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)
    found = sorted_keys[position] == query
    return np.where(found, values[position], 0)


class _Level:
    """The k-grams h w of one order k with the counts an estimator uses at that order.

    Stored (M distinct k-grams, C distinct histories h of k − 1 words):

    ``keys``            (M,)  key(h w), sorted
    ``counts``          (M,)  the count of h w (a plain or a continuation count)
    ``context_keys``    (C,)  key(h), sorted
    ``context_totals``  (C,)  Σ_w counts(h w)
    ``context_types``   (C,)  |{w : counts(h w) > 0}|
    """

    def __init__(self, keys: np.ndarray, counts: np.ndarray, base: int):
        self.keys = keys
        self.counts = counts
        contexts = keys // base
        starts = np.flatnonzero(np.concatenate(([True], contexts[1:] != contexts[:-1])))
        self.context_keys = contexts[starts]
        self.context_totals = np.add.reduceat(counts, starts)
        self.context_types = np.diff(np.append(starts, len(keys)))

    def count(self, keys: np.ndarray) -> np.ndarray:
        """counts(h w) for each key, 0 for unseen k-grams."""
        return _lookup(self.keys, self.counts, keys)

    def context(self, context_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ_w counts(h w), |{w : counts(h w) > 0}|) for each history key; zeros if unseen."""
        totals = _lookup(self.context_keys, self.context_totals, context_keys)
        types = _lookup(self.context_keys, self.context_types, context_keys)
        return totals, types


def _as_sentence_list(sentences: Sequence[Sequence[str]], purpose: str) -> list[Sequence[str]]:
    """Check that ``sentences`` is a non-empty list of token lists and return it as a list."""
    hint = "tokenize first, e.g. [word_tokenize(s) for s in sentences]"
    if isinstance(sentences, str):
        raise TypeError(f"{purpose} expects a list of sentences (lists of tokens), got a string; {hint}")
    sentences = list(sentences)
    if not sentences:
        raise ValueError(f"{purpose} got no sentences: the corpus is empty")
    for sentence in sentences:
        if isinstance(sentence, str):
            raise TypeError(
                f"{purpose} expects each sentence to be a list of tokens, got the string "
                f"{sentence[:40]!r}; {hint}"
            )
    return sentences


def _as_context(context: Sequence[str]) -> list[str]:
    if isinstance(context, str):
        raise TypeError(f"a context is a list of tokens such as ['the', 'cat'], not a string ({context!r})")
    return list(context)


class NGramModel:
    """Base class of the n-gram language models; use a subclass (``KneserNey``, ``MLE``, …).

    Args:
        order: n, the length of the longest n-gram; each word is conditioned on the n − 1
            words before it.

    After :meth:`fit` the model stores, for every order k = 1 … n, the distinct k-grams
    ending at a predicted token with their counts c(·), and per history h the total
    c(h •) and the number of distinct followers N_{1+}(h •) (see the module docstring).
    Subclasses define how those counts become probabilities.
    """

    def __init__(self, order: int = 3):
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
            raise TypeError(f"order must be an integer, got {order!r}")
        if order < 1:
            raise ValueError(f"order must be at least 1 (1 = unigram model), got order={order}")
        self.order = int(order)
        self._vocab: Vocabulary | None = None

    def __repr__(self) -> str:
        params = "".join(f", {name}={value!r}" for name, value in self._params().items())
        return f"{type(self).__name__}(order={self.order}{params})"

    def _params(self) -> dict[str, Any]:
        """Hyperparameters besides ``order``, as passed to ``__init__`` (saved with the model)."""
        return {}

    # ------------------------------------------------------------------ training

    def fit(
        self: _Model,
        sentences: Sequence[Sequence[str]],
        vocab: Vocabulary | None = None,
        min_freq: int = 1,
    ) -> _Model:
        """Count the n-grams of ``sentences`` and estimate the model; returns ``self``.

        Args:
            sentences: tokenized sentences, e.g. ``[["the", "cat", "sat"], ...]``.
            vocab: the vocabulary to use (it must contain ``<s>`` and ``</s>``); words not
                in it are counted as ``<unk>``. When ``None``, one is built from
                ``sentences`` with ``Vocabulary.build(sentences, min_freq=min_freq)``.
            min_freq: training words seen fewer times become ``<unk>`` (only when the
                vocabulary is built here).
        """
        sentences = _as_sentence_list(sentences, "fit")
        if not any(len(sentence) for sentence in sentences):
            raise ValueError(f"fit got {len(sentences)} sentences but no tokens: every sentence is empty")
        if vocab is None:
            vocab = Vocabulary.build(sentences, min_freq=min_freq)
        elif min_freq != 1:
            raise ValueError("min_freq only applies when fit builds the vocabulary; pass vocab or min_freq")
        try:
            self._set_vocab(vocab)
            stream, targets = self._padded_stream(sentences)
            counts = {}
            for k in range(1, self.order + 1):
                keys = _ngram_keys(self._windows(stream, targets, k), self._base, self._key_dtype)
                counts[k] = np.unique(keys, return_counts=True)
            self._install_counts(counts)
        except BaseException:
            self._vocab = None  # a failed fit leaves the model untrained, not half-trained
            raise
        return self

    def _set_vocab(self, vocab: Vocabulary) -> None:
        for token in (BOS, EOS):
            if token not in vocab:
                raise ValueError(f"the vocabulary must contain the boundary token {token!r}")
        base = len(vocab)
        self._vocab = vocab
        self._base = base
        self._key_dtype = np.int64 if base**self.order <= _INT64_MAX else object
        self._predictable = np.ones(base, dtype=bool)
        for token in (BOS, PAD):
            if token in vocab:
                self._predictable[vocab.token_to_id[token]] = False
        self._predictable_ids = np.flatnonzero(self._predictable)

    def _install_counts(self, counts: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Store the counts c(·) of each order (sorted keys, counts) and let the subclass estimate."""
        self._levels = {
            k: _Level(keys, values.astype(np.int64), self._base) for k, (keys, values) in counts.items()
        }
        self._estimate()

    def _estimate(self) -> None:
        """Precompute what the estimator needs from ``self._levels`` (nothing by default)."""

    def _encode(self, sentences: list[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """All tokens of all sentences as one id array, and the sentence lengths."""
        vocab = self._vocab
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        tokens = chain.from_iterable(sentences)
        if vocab.unk_id is None:
            ids_iter = map(vocab.lookup, tokens)
        else:
            ids_iter = map(vocab.token_to_id.get, tokens, repeat(vocab.unk_id))
        ids = np.fromiter(ids_iter, dtype=np.int64, count=int(lengths.sum()))
        markers = [vocab.token_to_id[t] for t in (BOS, EOS, PAD) if t in vocab]
        if np.isin(ids, markers).any():
            raise ValueError(
                f"sentences must not contain {BOS!r}, {EOS!r} or {PAD!r}: the model adds the "
                "sentence boundaries itself"
            )
        return ids, lengths

    def _padded_stream(self, sentences: list[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Lay out ``<s>``^{n−1} w_1 … w_m ``</s>`` for every sentence, back to back.

        Returns the id stream (shape (L,), L = Σ (m + n)) and ``targets``, the positions in
        it of the predicted tokens, every w_i and ``</s>`` (shape (T,), T = Σ (m + 1)).
        """
        ids, lengths = self._encode(sentences)
        sizes = lengths + self.order
        ends = np.cumsum(sizes)
        starts = ends - sizes
        stream = np.full(int(ends[-1]), self._vocab.token_to_id[BOS], dtype=np.int64)
        is_target = np.ones(len(stream), dtype=bool)
        for j in range(self.order - 1):
            is_target[starts + j] = False
        is_word = is_target.copy()
        is_word[ends - 1] = False
        stream[is_word] = ids
        stream[ends - 1] = self._vocab.token_to_id[EOS]
        return stream, np.flatnonzero(is_target)

    @staticmethod
    def _windows(stream: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
        """The k-grams ending at the ``targets`` positions of ``stream``, shape (T, k)."""
        return stream[targets[:, None] + np.arange(1 - k, 1)]

    # ------------------------------------------------------------------ inspection

    def _check_fitted(self) -> None:
        if self._vocab is None:
            raise RuntimeError(f"this {type(self).__name__} model is not trained: call .fit(sentences) first")

    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary the model was trained with."""
        self._check_fitted()
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """V, the number of predictable tokens: the vocabulary without ``<s>`` and ``<pad>``."""
        self._check_fitted()
        return len(self._predictable_ids)

    def count(self, ngram: Sequence[str]) -> int:
        """c(w_1 … w_k): how often the k-gram ended at a predicted token in training (1 ≤ k ≤ n).

        Words outside the vocabulary are looked up as ``<unk>``.
        """
        self._check_fitted()
        ngram = _as_context(ngram)
        if not 1 <= len(ngram) <= self.order:
            raise ValueError(f"count takes an n-gram of 1 to {self.order} tokens, got {len(ngram)}")
        ids = np.array([self._vocab.encode(ngram)])
        return int(self._levels[len(ngram)].count(_ngram_keys(ids, self._base, self._key_dtype))[0])

    def num_ngrams(self) -> dict[int, int]:
        """Number of distinct k-grams stored for each order k = 1 … n (the model's size)."""
        self._check_fitted()
        return {k: len(level.keys) for k, level in self._levels.items()}

    # ------------------------------------------------------------------ scoring

    def _prob_ids(self, ngrams: np.ndarray) -> np.ndarray:
        """P(w | h) for the rows h w of ``ngrams`` (shape (N, k), k ≤ n) → shape (N,)."""
        raise NotImplementedError(
            "NGramModel is the base class; use one of MLE, AddK, Laplace, StupidBackoff, KneserNey"
        )

    def _score(self, ngrams: np.ndarray) -> np.ndarray:
        """:meth:`_prob_ids`, with probability 0 for the tokens that are never predicted."""
        probs = self._prob_ids(ngrams)
        return np.where(self._predictable[ngrams[:, -1]], probs, 0.0)

    def _context_ids(self, context: Sequence[str]) -> list[int]:
        """Ids of the last n − 1 tokens of ``context``."""
        context = _as_context(context)
        return self._vocab.encode(context[max(len(context) - (self.order - 1), 0) :])

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | context).

        ``context`` holds the preceding tokens; only the last n − 1 are used. A shorter
        context is scored with the lower-order estimate of its length, so to score the first
        word of a sentence pass the ``<s>`` padding, e.g. ``prob("the", ["<s>", "<s>"])``.
        Unknown words (in ``word`` or ``context``) are looked up as ``<unk>``.
        """
        self._check_fitted()
        if not isinstance(word, str):
            raise TypeError(f"word must be a string token, got {word!r}")
        ids = np.array([[*self._context_ids(context), self._vocab.lookup(word)]])
        return float(self._score(ids)[0])

    def logprob(self, word: str, context: Sequence[str] = ()) -> float:
        """ln P(word | context) in nats; ``-math.inf`` when the probability is 0."""
        probability = self.prob(word, context)
        return math.log(probability) if probability > 0 else -math.inf

    def _next_probs(self, context_ids: Sequence[int]) -> np.ndarray:
        """P(w | h) for every predictable w (in id order), shape (V,)."""
        words = self._predictable_ids
        ngrams = np.empty((len(words), len(context_ids) + 1), dtype=np.int64)
        ngrams[:, :-1] = context_ids
        ngrams[:, -1] = words
        probs = self._score(ngrams)
        if not probs.sum() > 0:
            raise ValueError(
                f"{type(self).__name__} gives probability 0 to every word after this context: "
                "an MLE model has no estimate for a history it never saw in training"
            )
        return probs

    def next_word_distribution(self, context: Sequence[str] = ()) -> tuple[list[str], np.ndarray]:
        """The distribution of the next word: (predictable tokens, their probabilities).

        Returns a list of V tokens (vocabulary order) and an array of shape (V,) of
        P(w | context), with ``context`` read as in :meth:`prob`. Raises ``ValueError`` when
        no word has a positive probability (an MLE model after a history it never saw).
        """
        self._check_fitted()
        probs = self._next_probs(self._context_ids(context))
        return self._vocab.decode(self._predictable_ids), probs

    def token_logprobs(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """ln P(x_t | h_t) of every predicted token of ``sentences`` (all words and each ``</s>``).

        Vectorised: returns an array of shape (T,), T = Σ (len(sentence) + 1), in text order;
        ``-inf`` where a probability is 0.
        """
        self._check_fitted()
        sentences = _as_sentence_list(sentences, "scoring")
        stream, targets = self._padded_stream(sentences)
        probs = self._score(self._windows(stream, targets, self.order))
        with np.errstate(divide="ignore"):
            return np.log(probs)

    def cross_entropy(self, sentences: Sequence[Sequence[str]]) -> float:
        """−(1/T) Σ_t ln P(x_t | h_t): nats per predicted token; ``math.inf`` if any P is 0."""
        return float(-np.mean(self.token_logprobs(sentences)))

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        """exp(cross-entropy) over ``sentences``; ``math.inf`` if any token has probability 0."""
        cross_entropy = self.cross_entropy(sentences)
        return math.inf if cross_entropy == math.inf else math.exp(cross_entropy)

    # ------------------------------------------------------------------ sampling

    def generate(
        self,
        max_tokens: int = 50,
        context: Sequence[str] = (),
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> list[str]:
        """Sample a sentence word by word, until ``</s>`` or ``max_tokens`` words.

        Args:
            max_tokens: the most words to sample.
            context: words the sentence starts with (the history is padded with ``<s>``).
            temperature: T > 0; words are drawn with probability ∝ exp(ln P(w | h) / T),
                so T < 1 sharpens the distribution and T → 0 picks the most probable word.
            top_k: if given, only the k most probable words can be drawn (top_k=1 is greedy).
            seed: an integer or a ``np.random.Generator``, for reproducible samples.

        Returns:
            The sampled words after ``context``, without the final ``</s>``.
        """
        self._check_fitted()
        _check_sampling_arguments(temperature, top_k)
        rng = np.random.default_rng(seed)
        history = [self._vocab.token_to_id[BOS]] * (self.order - 1) + self._vocab.encode(_as_context(context))
        eos = self._vocab.token_to_id[EOS]
        words: list[str] = []
        for _ in range(max_tokens):
            probs = self._next_probs(history[len(history) - (self.order - 1) :])
            weights = sampling_distribution(probs, temperature, top_k)
            word_id = int(self._predictable_ids[rng.choice(len(weights), p=weights)])
            if word_id == eos:
                break
            history.append(word_id)
            words.append(self._vocab.id_to_token[word_id])
        return words

    # ------------------------------------------------------------------ saving

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to ``path`` as an ``.npz`` archive (no pickle).

        The archive holds ``metadata`` (UTF-8 JSON: class, order, hyperparameters,
        vocabulary) and, for each order k, ``ngrams_k`` (M_k, k) token ids with ``counts_k``
        (M_k,). Everything else is recomputed from the counts by :meth:`load`, so the loaded
        model gives exactly the same numbers.
        """
        self._check_fitted()
        vocab = self._vocab
        metadata = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "class": type(self).__name__,
            "order": self.order,
            "params": self._params(),
            "vocab": {"specials": list(vocab.specials), "tokens": vocab.id_to_token[len(vocab.specials) :]},
        }
        text = json.dumps(metadata, ensure_ascii=False)
        arrays = {"metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
        for k, level in self._levels.items():
            arrays[f"ngrams_{k}"] = _ngram_ids(level.keys, self._base, k)
            arrays[f"counts_{k}"] = level.counts
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as file:
                np.savez(file, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NGramModel:
        """Read a model written by :meth:`save`; returns an instance of the saved class."""
        not_a_model = f"{path} is not an n-gram model file written by NGramModel.save"
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(not_a_model) from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(not_a_model)
        with archive:
            try:
                metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
                if metadata.get("format") != _FILE_FORMAT:
                    raise ValueError(not_a_model)
                model_cls = _MODEL_CLASSES[metadata["class"]]
                order = metadata["order"]
                counts = {k: (archive[f"ngrams_{k}"], archive[f"counts_{k}"]) for k in range(1, order + 1)}
                vocab = Vocabulary(metadata["vocab"]["tokens"], metadata["vocab"]["specials"])
            except (KeyError, ValueError, TypeError, AttributeError) as error:
                raise ValueError(not_a_model) from error
        if not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {model_cls.__name__} model, not a {cls.__name__}")
        model = model_cls(order=order, **metadata["params"])
        model._set_vocab(vocab)
        model._install_counts(
            {k: (_ngram_keys(ids, model._base, model._key_dtype), c) for k, (ids, c) in counts.items()}
        )
        return model

    # ------------------------------------------------------------------ helpers for estimators

    def _split(self, ngrams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key(h), key(h w)) of the rows h w of ``ngrams``."""
        context_keys = _ngram_keys(ngrams[:, :-1], self._base, self._key_dtype)
        return context_keys, context_keys * self._base + ngrams[:, -1].astype(self._key_dtype)


class MLE(NGramModel):
    """Maximum-likelihood estimate: relative frequencies.

        P_ML(w | h) = c(h w) / c(h •)

    Unseen n-grams get probability 0, so the perplexity of a text containing one is infinite.
    A history never seen in training has no estimate (0/0); ``prob`` returns 0 for it.
    """

    def _prob_ids(self, ngrams: np.ndarray) -> np.ndarray:
        level = self._levels[ngrams.shape[1]]
        context_keys, keys = self._split(ngrams)
        totals, _ = level.context(context_keys)
        return level.count(keys) / np.maximum(totals, 1)


class AddK(NGramModel):
    """Add-k (Lidstone) smoothing: pretend every predictable word was seen k more times.

        P_k(w | h) = (c(h w) + k) / (c(h •) + k·V)

    with V the number of predictable tokens (see the module docstring). k = 1 is Laplace's
    add-one; a history never seen gives the uniform distribution 1/V.

    Args:
        order: n.
        k: the pseudo-count, k > 0.
    """

    def __init__(self, order: int = 3, k: float = 1.0):
        super().__init__(order)
        if not 0 < k < math.inf:
            raise ValueError(f"k must be a positive number, got k={k!r}")
        self.k = float(k)

    def _params(self) -> dict[str, Any]:
        return {"k": self.k}

    def _prob_ids(self, ngrams: np.ndarray) -> np.ndarray:
        level = self._levels[ngrams.shape[1]]
        context_keys, keys = self._split(ngrams)
        totals, _ = level.context(context_keys)
        return (level.count(keys) + self.k) / (totals + self.k * self.vocab_size)


class Laplace(AddK):
    """Add-one smoothing: :class:`AddK` with k = 1, P(w | h) = (c(h w) + 1) / (c(h •) + V)."""

    def __init__(self, order: int = 3):
        super().__init__(order, k=1.0)

    def _params(self) -> dict[str, Any]:
        return {}


class StupidBackoff(NGramModel):
    """Stupid backoff (Brants et al., 2007): use the longest history that saw the word.

        S(w | h) = c(h w) / c(h •)      if c(h w) > 0
                 = α · S(w | h')        otherwise
        S(w)     = c(w) / N             N = number of predicted training tokens

    S is a *score*, not a probability: Σ_w S(w | h) is usually above 1. ``prob`` and
    ``token_logprobs`` return S itself (so "perplexity" is only a rough figure of merit),
    while ``next_word_distribution`` and ``generate`` divide the scores by their sum.

    Args:
        order: n.
        alpha: the backoff factor α, 0 < α ≤ 1 (0.4 in the paper).
    """

    def __init__(self, order: int = 3, alpha: float = 0.4):
        super().__init__(order)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must lie in (0, 1], got alpha={alpha!r}")
        self.alpha = float(alpha)

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _prob_ids(self, ngrams: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(ngrams))
        done = np.zeros(len(ngrams), dtype=bool)
        factor = 1.0
        for k in range(ngrams.shape[1], 0, -1):
            level = self._levels[k]
            context_keys, keys = self._split(ngrams[:, -k:])
            counts = level.count(keys)
            totals, _ = level.context(context_keys)
            hit = ~done & (counts > 0)
            scores[hit] = factor * counts[hit] / totals[hit]
            done |= hit
            factor *= self.alpha
        return scores

    def _next_probs(self, context_ids: Sequence[int]) -> np.ndarray:
        scores = super()._next_probs(context_ids)
        return scores / scores.sum()


class KneserNey(NGramModel):
    """Interpolated Kneser–Ney smoothing with a single discount d (Chen & Goodman, 1999).

    Every order subtracts d from each positive count and gives the mass it freed to the
    next lower order. The highest order n uses the counts c:

        P_KN(w | h) = max(c(h w) − d, 0) / c(h •) + d · N_{1+}(h •) / c(h •) · P_KN(w | h')

    Lower orders k < n use continuation counts, the number of different words v seen
    before h w, N_{1+}(• h w) = |{v : c(v h w) > 0}|: a lower order is only consulted for
    histories the higher order knows little about, and there a word that followed many
    different words is a better guess than one frequent in a single phrase:

        P_KN(w | h) = max(N_{1+}(• h w) − d, 0) / N_{1+}(• h •)
                      + d · N_{1+}(h •) / N_{1+}(• h •) · P_KN(w | h')

    with N_{1+}(• h •) = Σ_w N_{1+}(• h w) and N_{1+}(h •) = |{w : N_{1+}(• h w) > 0}|.
    The lowest order interpolates the continuation unigram with the uniform distribution
    over the V predictable tokens:

        P_KN(w) = max(N_{1+}(• w) − d, 0) / N_{1+}(• •) + d · |{w : N_{1+}(• w) > 0}| / N_{1+}(• •) · 1/V

    (for n = 1, the highest order is the lowest: c(w), c(•) and |{w : c(w) > 0}| take the
    places of the continuation counts).
    A history never seen (its total at that order is 0) passes its whole mass down:
    P_KN(w | h) = P_KN(w | h').
    Each level is a distribution over the V predictable tokens, so every P_KN(· | h) sums
    to 1 and no word (not even an unseen ``<unk>``) gets probability 0.

    Besides the counts, the model stores the continuation counts N_{1+}(• h w) of every
    order below n (with their history totals and types) and P_KN(w) as a dense array.

    Args:
        order: n.
        discount: d, 0 < d < 1 (0.75 is the usual choice).
    """

    def __init__(self, order: int = 3, discount: float = 0.75):
        super().__init__(order)
        if not 0 < discount < 1:
            raise ValueError(f"discount must lie strictly between 0 and 1, got discount={discount!r}")
        self.discount = float(discount)

    def _params(self) -> dict[str, Any]:
        return {"discount": self.discount}

    def _estimate(self) -> None:
        """Continuation counts for orders k < n, and the lowest order as a dense array.

        ``self._kn_levels[k]`` holds, for k < n, N_{1+}(• h w) for every k-gram h w: the number
        of distinct (k+1)-grams v h w, i.e. of repeats of key(v h w) mod B^k; for k = n the
        plain counts. ``self._unigram`` (shape (B,)) is P_KN(w) for every token id.
        """
        n, base, d = self.order, self._base, self.discount
        self._kn_levels = {n: self._levels[n]}
        for k in range(1, n):
            suffixes = self._levels[k + 1].keys % base**k
            keys, continuation_counts = np.unique(suffixes, return_counts=True)
            self._kn_levels[k] = _Level(keys, continuation_counts, base)
        lowest = self._kn_levels[1]
        total, types = lowest.context_totals[0], lowest.context_types[0]
        unigram = np.zeros(base)
        unigram[lowest.keys.astype(np.int64)] = np.maximum(lowest.counts - d, 0) / total
        unigram += d * types / total / self.vocab_size
        self._unigram = np.where(self._predictable, unigram, 0.0)

    def _prob_ids(self, ngrams: np.ndarray) -> np.ndarray:
        d = self.discount
        probs = self._unigram[ngrams[:, -1]]
        # Up the orders: P(w | h) = [max(count(h w) − d, 0) + d·types(h)·P(w | h')] / total(h),
        # or P(w | h') where total(h) = 0.
        for k in range(2, ngrams.shape[1] + 1):
            level = self._kn_levels[k]
            context_keys, keys = self._split(ngrams[:, -k:])
            totals, types = level.context(context_keys)
            interpolated = (np.maximum(level.count(keys) - d, 0) + d * types * probs) / np.maximum(totals, 1)
            probs = np.where(totals > 0, interpolated, probs)
        return probs


_MODEL_CLASSES: dict[str, type[NGramModel]] = {
    cls.__name__: cls for cls in (MLE, AddK, Laplace, StupidBackoff, KneserNey)
}
