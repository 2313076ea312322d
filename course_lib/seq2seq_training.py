"""Data, training and decoding for sequence-to-sequence models (:class:`~course_lib.models.seq2seq.Seq2Seq`).

An example is a pair (x, y): a source sequence x_1 … x_S and a target sequence y_1 … y_T of
tokens (characters of a date, letters of a word, phonemes). The model is a conditional
language model of the target,

    P(y | x) = Π_{t=1}^{T+1} P(y_t | y_<t, x),   y_{T+1} = </s>,

trained by **teacher forcing**: the decoder reads the true previous token y_{t−1} (starting
from y_0 = <s>) and the loss is the cross-entropy of y_t, averaged over the real target
positions of a padded batch (:func:`course_lib.metrics.masked_cross_entropy`). At test time
the decoder reads its own predictions instead (:func:`translate_all`, greedy or beam search
from :mod:`course_lib.decoding`).

Vocabularies (:func:`build_vocabularies`) are :class:`~course_lib.vocab.Vocabulary` objects
with the specials ``<pad>`` = 0, ``<unk>`` = 1, ``<s>`` = 2, ``</s>`` = 3, then the symbols
by frequency. Batches are time-major: sources (S, B), targets (T, B), with their lengths (B,).

Contents: vocabularies and encoding (:func:`build_vocabularies`, :func:`encode_pairs`),
batches (:func:`collate_pairs`), the loss and training (:func:`seq2seq_loss`,
:func:`train_seq2seq`, :func:`evaluate_seq2seq_loss`), decoding and scoring
(:func:`translate_all`, :func:`translate_with_attention`, :func:`sequence_log_probs`),
and accuracy by source length (:func:`accuracy_by_length`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from course_lib.data.padding import batch_sampler, length_mask, pad_sequences
from course_lib.decoding import beam_search, greedy_decode
from course_lib.metrics import masked_cross_entropy
from course_lib.models.tagger import SequenceHistory, SequenceTrainConfig
from course_lib.training import start_training, train_epoch
from course_lib.vocab import BOS, EOS, PAD, SPECIAL_TOKENS, Vocabulary

PAD_ID, BOS_ID, EOS_ID = (SPECIAL_TOKENS.index(token) for token in (PAD, BOS, EOS))

Pair = tuple[Sequence[str], Sequence[str]]
"""A source and a target sequence of tokens (a string is a sequence of characters)."""

EncodedPair = tuple[list[int], list[int]]
"""Source ids x_1 … x_S and target ids y_1 … y_T followed by the id of ``</s>``."""


def build_vocabularies(pairs: Sequence[Pair]) -> tuple[Vocabulary, Vocabulary]:
    """The source and the target vocabulary of some (training) pairs, each with the four specials."""
    if not pairs:
        raise ValueError("cannot build vocabularies from zero pairs")
    source = Vocabulary.build([list(src) for src, _ in pairs])
    target = Vocabulary.build([list(tgt) for _, tgt in pairs])
    return source, target


def _check_specials(vocab: Vocabulary) -> None:
    if vocab.specials[:4] != SPECIAL_TOKENS:
        raise ValueError(
            f"the vocabulary must start with the specials {SPECIAL_TOKENS}, got {vocab.specials}"
        )


def encode_pairs(
    pairs: Sequence[Pair], source_vocab: Vocabulary, target_vocab: Vocabulary
) -> list[EncodedPair]:
    """Token ids of every pair; each target gets ``</s>`` appended (unknown symbols → ``<unk>``)."""
    _check_specials(source_vocab)
    _check_specials(target_vocab)
    encoded = []
    for src, tgt in pairs:
        if len(src) == 0:
            raise ValueError("every source needs at least one token")
        encoded.append((source_vocab.encode(src), target_vocab.encode(tgt) + [EOS_ID]))
    return encoded


@dataclass
class Seq2SeqBatch:
    """A padded, time-major batch of B pairs.

    Attributes:
        src: source ids x, shape (S, B), padded with ``<pad>``.
        src_lengths: S_b, shape (B,).
        tgt_in: decoder inputs ``<s>`` y_1 … y_T, shape (T+1, B) for the longest target.
        tgt_out: what is predicted, y_1 … y_T ``</s>``, shape (T+1, B): ``tgt_in`` shifted by one.
        tgt_lengths: T_b + 1 (the ``</s>`` counts), shape (B,).
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_lengths: torch.Tensor

    def to(self, device: torch.device | str) -> Seq2SeqBatch:
        """The same batch on ``device``."""
        return Seq2SeqBatch(*(getattr(self, name).to(device) for name in self.__dataclass_fields__))


def collate_pairs(examples: Sequence[EncodedPair]) -> Seq2SeqBatch:
    """Pad B encoded pairs into one :class:`Seq2SeqBatch` (``tgt_in`` = ``<s>`` + target without ``</s>``)."""
    src, src_lengths = pad_sequences([src for src, _ in examples], PAD_ID)
    tgt_out, tgt_lengths = pad_sequences([tgt for _, tgt in examples], PAD_ID)
    tgt_in, _ = pad_sequences([[BOS_ID, *tgt[:-1]] for _, tgt in examples], PAD_ID)
    return Seq2SeqBatch(src, src_lengths, tgt_in, tgt_out, tgt_lengths)


def seq2seq_loss(model: nn.Module, batch: Seq2SeqBatch) -> torch.Tensor:
    """Teacher-forced cross-entropy −(1/N) Σ_{b,t} log P(y_t | y_<t, x), N = real target positions."""
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    return masked_cross_entropy(logits, batch.tgt_out, batch.tgt_lengths)


@dataclass
class Seq2SeqHistory(SequenceHistory):
    """Per-epoch mean training loss and wall time, and the validation loss when validation data is given."""

    val_loss: list[float] = field(default_factory=list)


def _source_lengths(examples: Sequence[EncodedPair]) -> list[int]:
    return [len(src) for src, _ in examples]


@torch.no_grad()
def evaluate_seq2seq_loss(
    model: nn.Module,
    examples: Sequence[EncodedPair],
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> float:
    """Mean teacher-forced cross-entropy per target token (nats), over every real position of ``examples``."""
    if not examples:
        raise ValueError("no examples to evaluate")
    was_training = model.training
    model.eval()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    total, count = 0.0, 0
    for indices in batch_sampler(_source_lengths(examples), batch_size, bucketing=True, shuffle=False):
        batch = collate_pairs([examples[i] for i in indices]).to(device)
        tokens = int(batch.tgt_lengths.sum())
        total += seq2seq_loss(model, batch).item() * tokens
        count += tokens
    model.train(was_training)
    return total / count


@torch.no_grad()
def sequence_log_probs(
    model: nn.Module, examples: Sequence[EncodedPair], batch_size: int = 256
) -> list[float]:
    """log P(y | x) = Σ_t log P(y_t | y_<t, x) of every encoded pair, ``</s>`` included (eval mode).

    Scores given outputs, for example those of greedy and beam search, under the model.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = [0.0] * len(examples)
    for start in range(0, len(examples), batch_size):
        batch = collate_pairs(examples[start : start + batch_size]).to(device)
        log_probs = model(batch.src, batch.src_lengths, batch.tgt_in).log_softmax(-1)
        token_log_probs = log_probs.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
        mask = length_mask(batch.tgt_lengths, batch.tgt_out.shape[0])
        for b, total in enumerate((token_log_probs * mask).sum(0).tolist()):
            scores[start + b] = total
    model.train(was_training)
    return scores


def train_seq2seq(
    model: nn.Module,
    train_pairs: Sequence[EncodedPair],
    config: SequenceTrainConfig | None = None,
    device: torch.device | str | None = None,
    val_pairs: Sequence[EncodedPair] | None = None,
) -> Seq2SeqHistory:
    """Train a sequence-to-sequence model with teacher forcing, Adam and gradient clipping.

    Each epoch draws batches of sources of similar lengths (``config.bucketing``, the sampler
    of :mod:`course_lib.data.padding`) or random batches, and takes one Adam step per batch on
    :func:`seq2seq_loss`, the gradient clipped to norm ``config.clip_norm``. Nothing is
    printed.

    Args:
        model: called as ``model(src (S, B), src_lengths (B,), tgt_in (T, B)) -> logits (T, B, V)``;
            moved to ``device`` and left in training mode.
        train_pairs: encoded pairs (:func:`encode_pairs`).
        config: epochs, batch size, learning rate, clipping, bucketing, seed.
        device: where to train; defaults to ``get_device()``.
        val_pairs: if given, :func:`evaluate_seq2seq_loss` on them after every epoch.

    Returns:
        the per-epoch losses (nats per target token) and epoch times (training only).
    """
    config = config or SequenceTrainConfig()
    if not train_pairs:
        raise ValueError("no training pairs")
    device, optimizer = start_training(model, config.lr, config.seed, device)
    sampler = batch_sampler(_source_lengths(train_pairs), config.batch_size, config.bucketing, config.seed)

    def loss_of(indices: list[int]) -> torch.Tensor:
        return seq2seq_loss(model, collate_pairs([train_pairs[i] for i in indices]).to(device))

    history = Seq2SeqHistory()
    for _ in range(config.epochs):
        loss, seconds = train_epoch(model, optimizer, sampler, loss_of, config.clip_norm, device)
        history.epoch_seconds.append(seconds)
        history.train_loss.append(loss)
        if val_pairs:
            history.val_loss.append(evaluate_seq2seq_loss(model, val_pairs, device=device))
    return history


def _encode_sources(sources: Sequence[Sequence[str]], source_vocab: Vocabulary) -> list[list[int]]:
    _check_specials(source_vocab)
    encoded = [source_vocab.encode(src) for src in sources]
    if any(len(ids) == 0 for ids in encoded):
        raise ValueError("every source needs at least one token")
    return encoded


def _output(ids: Sequence[int], target_vocab: Vocabulary, as_string: bool) -> str | tuple[str, ...]:
    tokens = target_vocab.decode(ids)
    return "".join(tokens) if as_string else tuple(tokens)


@torch.no_grad()
def translate_all(
    model: nn.Module,
    sources: Sequence[Sequence[str]],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    beam_width: int = 1,
    batch_size: int = 256,
    max_len: int | None = None,
    length_penalty: float = 0.0,
    as_string: bool = False,
) -> list[str | tuple[str, ...]]:
    """The model's output for every source: greedy decoding in batches, or beam search one source at a time.

    Args:
        model: a :class:`~course_lib.models.seq2seq.Seq2Seq`; run in eval mode on its own device.
        sources: token sequences (strings are sequences of characters).
        source_vocab, target_vocab: the vocabularies of :func:`build_vocabularies`.
        beam_width: 1 for greedy decoding (:func:`course_lib.decoding.greedy_decode`), more
            for :func:`course_lib.decoding.beam_search` (the best finished hypothesis).
        batch_size: sources decoded together by greedy decoding (sorted by length to save padding).
        max_len: the most output tokens; ``None`` means 2 · (longest source) + 10.
        length_penalty: beam search's score log P / |y|^penalty.
        as_string: join the output tokens into a string (dates) instead of a tuple (phonemes).

    Returns:
        one output per source, in the order of ``sources``, without ``<s>`` and ``</s>``.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    if not sources:
        return []
    encoded = _encode_sources(sources, source_vocab)
    max_len = max_len if max_len is not None else 2 * max(map(len, encoded)) + 10
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs: list[list[int]] = [[] for _ in encoded]
    if beam_width == 1:
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src, lengths = pad_sequences([encoded[i] for i in chunk], PAD_ID)
            step, state = model.step_function(src.to(device), lengths.to(device))
            for i, ids in zip(chunk, greedy_decode(step, state, BOS_ID, EOS_ID, max_len), strict=True):
                outputs[i] = ids
    else:
        for i, ids in enumerate(encoded):
            src, lengths = pad_sequences([ids], PAD_ID)
            step, state = model.step_function(src.to(device), lengths.to(device))
            best = beam_search(step, state, BOS_ID, EOS_ID, beam_width, max_len, length_penalty)[0]
            outputs[i] = best.tokens
    model.train(was_training)
    return [_output(ids, target_vocab, as_string) for ids in outputs]


@torch.no_grad()
def translate_with_attention(
    model: nn.Module,
    source: Sequence[str],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    max_len: int = 50,
) -> tuple[tuple[str, ...], torch.Tensor]:
    """The greedy output for one source and its attention weights α, shape (len(output), S).

    Row t holds α^t over the S source tokens at the step that predicted output token t
    (:meth:`~course_lib.models.seq2seq.Seq2Seq.greedy_translate`); the model needs attention.
    """
    src, lengths = pad_sequences(_encode_sources([source], source_vocab), PAD_ID)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs, alphas = model.greedy_translate(src.to(device), lengths.to(device), BOS_ID, EOS_ID, max_len)
    model.train(was_training)
    return tuple(target_vocab.decode(outputs[0])), alphas[0].cpu()


def accuracy_by_length(
    lengths: Sequence[int], correct: Sequence[bool | float], edges: Sequence[int]
) -> tuple[list[float], list[int]]:
    """Mean accuracy within length bins: bin k holds the items with edges[k] ≤ length < edges[k+1].

    Args:
        lengths: the source length of every item.
        correct: whether the item's output was right, or a score in [0, 1] such as the share
            of its symbols that are right; averaged within each bin.
        edges: increasing bin edges; items outside [edges[0], edges[-1]) are left out.

    Returns:
        ``(accuracy, count)`` per bin; the accuracy of an empty bin is ``nan``.
    """
    if len(lengths) != len(correct):
        raise ValueError(f"got {len(lengths)} lengths for {len(correct)} results")
    if len(edges) < 2 or any(a >= b for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"edges must be at least two increasing numbers, got {list(edges)}")
    hits, counts = [0.0] * (len(edges) - 1), [0] * (len(edges) - 1)
    for length, score in zip(lengths, correct, strict=True):
        for k in range(len(edges) - 1):
            if edges[k] <= length < edges[k + 1]:
                hits[k] += float(score)
                counts[k] += 1
                break
    accuracy = [h / c if c else math.nan for h, c in zip(hits, counts, strict=True)]
    return accuracy, counts
