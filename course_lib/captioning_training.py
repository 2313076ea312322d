"""Training and running image captioners: vocabulary, batches, the training loop, greedy captions.

A captioner (:class:`~course_lib.models.captioning.ShowAndTell`,
:class:`~course_lib.models.captioning.ShowAttendTell`) is a conditional language model
p(y_1 … y_n </s> | image), trained by teacher forcing: it reads the caption shifted right,

    captions_in = <s> y_1 … y_n,        targets = y_1 … y_n </s>        (n + 1 positions),

and minimises the cross-entropy of the targets, averaged over the real (unpadded) positions
of the batch (:func:`~course_lib.models.captioning.caption_loss`).

The images are standardised per channel with the statistics of the training images
(:func:`image_statistics`, :func:`normalise_images`), which with the He initialisation of
:class:`~course_lib.models.captioning.CNNEncoder` makes the small CNN learn quickly.

An image has several reference captions, all correct. Each epoch, :func:`train_captioner`
either draws one of them per image at random (``references="random"``, the default: every
epoch shows each image once, with a different phrasing from epoch to epoch) or uses them all
(``"all"``: one example per (image, reference) pair). Either way the model learns a
distribution over the phrasings, and greedy decoding picks its most probable one.

A data set is any sequence of items with an ``image`` tensor (C, H, W) and a list of
``references`` (strings of space-separated words), such as the scenes of
:mod:`course_lib.data.scenes` and the strips of :mod:`course_lib.data.digit_strips`.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from course_lib.bleu import corpus_bleu, exact_match
from course_lib.data.padding import batch_sampler, pad_sequences
from course_lib.models.captioning import caption_loss, greedy_caption
from course_lib.models.tagger import SequenceHistory, SequenceTrainConfig
from course_lib.training import start_training, train_epoch
from course_lib.vocab import BOS, EOS, PAD, Vocabulary

REFERENCE_CHOICES = ("random", "all")
CAPTION_SPECIALS = (PAD, BOS, EOS)
"""The special tokens of a caption vocabulary: no ``<unk>``, every word of the grammar is known."""


class CaptionedItem(Protocol):
    """What a captioning data set holds: an image (C, H, W) and its reference captions."""

    image: torch.Tensor
    references: list[str]


@dataclass
class CaptionBatch:
    """A training batch: images (B, C, H, W), captions_in and targets (T, B), lengths n_b + 1 (B,)."""

    images: torch.Tensor
    captions_in: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor

    def to(self, device: torch.device | str) -> CaptionBatch:
        tensors = (self.images, self.captions_in, self.targets, self.lengths)
        return CaptionBatch(*(t.to(device) for t in tensors))


@dataclass
class CaptionScores:
    """Greedy captions of a data set and their scores against the references.

    Attributes:
        bleu: corpus BLEU in [0, 100] (:func:`course_lib.bleu.corpus_bleu`).
        exact_match: the share of captions equal to one of their references, in [0, 1].
        hypotheses: the generated captions, one string per item.
        attention: per item, the attention weights (len_out, h·w) of each generated word;
            empty tensors for a model without attention.
    """

    bleu: float
    exact_match: float
    hypotheses: list[str]
    attention: list[torch.Tensor]


def image_statistics(dataset: Sequence[CaptionedItem]) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation of every channel over all pixels of all images: two (C,) tensors."""
    images = _stack_images(dataset)
    return images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))


def normalise_images(dataset: Sequence[CaptionedItem], mean: torch.Tensor, std: torch.Tensor) -> list:
    """Copies of the items (dataclasses) with every image standardised per channel, (x − mean) / std.

    Use the statistics of the training images for every split, so that all see the same mapping.
    """
    mean, std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
    return [dataclasses.replace(item, image=(item.image - mean) / std) for item in dataset]


def caption_vocabulary(captions: Iterable[str]) -> Vocabulary:
    """The vocabulary of the words of the captions, after ``<pad>``, ``<s>`` and ``</s>``.

    It has no ``<unk>``: a caption word missing from it raises a ``KeyError`` when encoded.
    """
    return Vocabulary.build([caption.split() for caption in captions], specials=CAPTION_SPECIALS)


def dataset_vocabulary(dataset: Sequence[CaptionedItem]) -> Vocabulary:
    """:func:`caption_vocabulary` of every reference of every item."""
    return caption_vocabulary(ref for item in dataset for ref in item.references)


def encode_caption(caption: str, vocab: Vocabulary) -> list[int]:
    """The ids of the words of a caption (no ``<s>``, no ``</s>``)."""
    return vocab.encode(caption.split())


def decode_caption(ids: Sequence[int], vocab: Vocabulary) -> str:
    """The caption written by word ids (a special token that a model wrote stays in, as a word)."""
    return " ".join(vocab.decode(ids))


def collate_captions(
    images: torch.Tensor, captions: Sequence[Sequence[int]], vocab: Vocabulary
) -> CaptionBatch:
    """A teacher-forcing batch from images (B, C, H, W) and B encoded captions.

    Caption b of n_b words gives ``captions_in[:, b]`` = <s> y_1 … y_n and ``targets[:, b]`` =
    y_1 … y_n </s>, both of length n_b + 1 and padded with ``<pad>`` to T = max_b n_b + 1.
    """
    if images.shape[0] != len(captions):
        raise ValueError(f"{images.shape[0]} images but {len(captions)} captions")
    bos, eos, pad = vocab.lookup(BOS), vocab.lookup(EOS), vocab.lookup(PAD)
    captions_in, lengths = pad_sequences([[bos, *ids] for ids in captions], pad)
    targets, _ = pad_sequences([[*ids, eos] for ids in captions], pad)
    return CaptionBatch(images, captions_in, targets, lengths)


def _stack_images(dataset: Sequence[CaptionedItem]) -> torch.Tensor:
    if not dataset:
        raise ValueError("the data set is empty")
    return torch.stack([item.image for item in dataset])


def _logits(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The logits of a captioner's forward pass (``ShowAttendTell`` also returns its attention)."""
    return output[0] if isinstance(output, tuple) else output


def _epoch_examples(
    encoded: list[list[list[int]]], choice: str, rng: random.Random
) -> tuple[list[int], list[list[int]]]:
    """The (image index, caption ids) examples of one epoch."""
    if choice == "random":
        return list(range(len(encoded))), [rng.choice(refs) for refs in encoded]
    pairs = [(i, ids) for i, refs in enumerate(encoded) for ids in refs]
    return [i for i, _ in pairs], [ids for _, ids in pairs]


def _batch_loss(model: nn.Module, images: torch.Tensor, image_ids: list[int], captions: list[list[int]],
                vocab: Vocabulary, device: torch.device, batch: list[int]) -> torch.Tensor:
    """The masked caption loss of a batch of (image id, caption) examples, by teacher forcing."""
    rows = torch.tensor([image_ids[i] for i in batch], device=device)
    data = collate_captions(images[rows], [captions[i] for i in batch], vocab).to(device)
    return caption_loss(_logits(model(data.images, data.captions_in)), data.targets, data.lengths)


def train_captioner(
    model: nn.Module,
    dataset: Sequence[CaptionedItem],
    config: SequenceTrainConfig | None = None,
    vocab: Vocabulary | None = None,
    device: torch.device | str | None = None,
    references: str = "random",
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> SequenceHistory:
    """Train a captioner with Adam on the masked caption loss, by teacher forcing.

    Args:
        model: ``forward(images, captions_in) -> logits (T, B, V)`` or ``(logits, alphas)``;
            moved to ``device`` and left in training mode.
        dataset: items with ``image`` and ``references``.
        config: epochs, batch size, learning rate, gradient clipping, bucketing (batches of
            captions of similar length), seed; defaults to ``SequenceTrainConfig()``.
        vocab: the caption vocabulary; :func:`dataset_vocabulary` of ``dataset`` when ``None``
            (pass the same one the model's output layer was sized for).
        device: where to train; defaults to ``get_device()``.
        references: ``"random"`` (one reference per image per epoch) or ``"all"``.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (epochs from 1).

    Returns:
        the mean training loss (nats per word, ``</s>`` included) and the time of each epoch.
    """
    config = config or SequenceTrainConfig()
    if references not in REFERENCE_CHOICES:
        raise ValueError(f"references must be one of {REFERENCE_CHOICES}, got {references!r}")
    vocab = vocab or dataset_vocabulary(dataset)
    device, optimizer = start_training(model, config.lr, config.seed, device)
    rng = random.Random(config.seed)
    images = _stack_images(dataset).to(device)
    encoded = [[encode_caption(ref, vocab) for ref in item.references] for item in dataset]
    history = SequenceHistory()
    for epoch in range(1, config.epochs + 1):
        image_ids, captions = _epoch_examples(encoded, references, rng)
        lengths = [len(caption) for caption in captions]
        sampler = batch_sampler(lengths, config.batch_size, config.bucketing, seed=config.seed + epoch)
        loss_of = functools.partial(_batch_loss, model, images, image_ids, captions, vocab, device)
        loss, seconds = train_epoch(model, optimizer, sampler, loss_of, config.clip_norm, device)
        history.train_loss.append(loss)
        history.epoch_seconds.append(seconds)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


@torch.no_grad()
def caption_all(
    model: nn.Module, images: torch.Tensor, vocab: Vocabulary, max_len: int = 20, batch_size: int = 256
) -> tuple[list[str], list[torch.Tensor]]:
    """Greedy captions of images (N, C, H, W), with ``greedy_caption``, in eval mode on the model's device.

    Returns:
        N captions (strings) and, for each, its attention weights (len_out, h·w) on the CPU
        (empty tensors for a model without attention).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    bos, eos = vocab.lookup(BOS), vocab.lookup(EOS)
    captions, maps = [], []
    for start in range(0, len(images), batch_size):
        ids, alphas = greedy_caption(model, images[start : start + batch_size].to(device), bos, eos, max_len)
        captions += [decode_caption(caption, vocab) for caption in ids]
        maps += [alpha.cpu() for alpha in alphas]
    model.train(was_training)
    return captions, maps


def score_captioner(
    model: nn.Module, dataset: Sequence[CaptionedItem], vocab: Vocabulary, max_len: int = 20
) -> CaptionScores:
    """Greedy captions of every item, with corpus BLEU and exact match against its references."""
    hypotheses, maps = caption_all(model, _stack_images(dataset), vocab, max_len)
    references = [item.references for item in dataset]
    bleu, match = corpus_bleu(hypotheses, references), exact_match(hypotheses, references)
    return CaptionScores(bleu, match, hypotheses, maps)


@torch.no_grad()
def caption_nll(
    model: nn.Module, dataset: Sequence[CaptionedItem], vocab: Vocabulary, batch_size: int = 256
) -> float:
    """The mean loss (nats per word, ``</s>`` included) over every reference of every item, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    images = _stack_images(dataset)
    pairs = [(i, encode_caption(ref, vocab)) for i, item in enumerate(dataset) for ref in item.references]
    total, words = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        rows = torch.tensor([i for i, _ in chunk])
        data = collate_captions(images[rows], [ids for _, ids in chunk], vocab).to(device)
        logits = _logits(model(data.images, data.captions_in))
        n = int(data.lengths.sum())
        total += caption_loss(logits, data.targets, data.lengths).item() * n
        words += n
    model.train(was_training)
    return total / words
