"""A bidirectional sequence tagger and a sequence classifier, with their training and evaluation.

**Tagging** (many-to-many): one label per token, here a part-of-speech tag. The tagger is

    e_t = E x_t,    h_t = [h→_t; h←_t] = BiLSTM(e_1 … e_T)_t,    ŷ_t = softmax(W h_t + b),

trained with the cross-entropy averaged over the real (unpadded) positions
(:func:`course_lib.metrics.masked_cross_entropy`). A word such as ``light`` is a noun in
``the light is on`` and an adjective in ``the light box``: only the right context tells, and
only the backward direction has read it.

**Classification** (many-to-one): one label per sequence, here grammatical or not. The
classifier summarises a sentence of n words by the two states that have read all of it, the
forward state after the last word and the backward state after the first:

    s = [h→_n; h←_1],    ŷ = softmax(W s + b).

Both models take a padded batch of token ids (T, B) with the lengths (B,) and use either the
course's :class:`~course_lib.models.stacked.StackedRNN` (``implementation="scratch"``) or
``torch.nn.LSTM/GRU/RNN`` on packed sequences (``"cudnn"``); the two have the same parameter
names. :func:`train_sequence_model` trains either model on batches from a
:class:`~course_lib.data.padding.BucketBatchSampler` (or plain random batches).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.grammar import TAGSET, TaggedSentence
from course_lib.data.padding import BucketBatchSampler, batch_sampler, length_mask, pad_sequences
from course_lib.metrics import masked_cross_entropy
from course_lib.models.stacked import StackedRNN, check_cell, last_layer_state, run_packed
from course_lib.training import start_training, train_epoch
from course_lib.vocab import Vocabulary

IMPLEMENTATIONS = ("scratch", "cudnn")
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

TaggedExample = tuple[list[int], list[int]]
"""Token ids and one tag id per token."""

LabelledExample = tuple[list[int], int]
"""Token ids and one class id for the whole sequence."""


def make_encoder(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
    cell: str = "lstm",
    implementation: str = "scratch",
) -> nn.Module:
    """A (bidirectional, stacked) recurrent layer: :class:`StackedRNN` or its torch.nn twin.

    ``dropout`` acts between recurrent layers, so a one-layer encoder has none.
    """
    check_cell(cell)
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    between_layers = dropout if num_layers > 1 else 0.0
    options = {"num_layers": num_layers, "bidirectional": bidirectional, "dropout": between_layers}
    if implementation == "scratch":
        return StackedRNN(input_size, hidden_size, cell=cell, **options)
    return TORCH_LAYERS[cell](input_size, hidden_size, **options)


def run_encoder(encoder: nn.Module, x: torch.Tensor, lengths: torch.Tensor):
    """Run a layer from :func:`make_encoder` on a padded batch x (T, B, D) with lengths (B,).

    Returns ``(outputs (T, B, num_directions · H), final state)`` as from :class:`StackedRNN`.
    """
    if isinstance(encoder, StackedRNN):
        return encoder(x, lengths=lengths)
    return run_packed(encoder, x, lengths)


def _check_tokens(tokens: torch.Tensor, lengths: torch.Tensor) -> None:
    if tokens.dim() != 2:
        raise ValueError(f"expected token ids of shape (T, B), got {tuple(tokens.shape)}")
    lengths = torch.as_tensor(lengths)
    if lengths.shape != tokens.shape[1:]:
        raise ValueError(f"need one length per sequence ({tokens.shape[1]}), got {tuple(lengths.shape)}")


class SequenceTagger(nn.Module):
    """Embeddings → (bidirectional, stacked) recurrent layer → a linear layer at every position.

        ŷ_t = softmax(W dropout(h_t) + b),   h_t = [h→_t; h←_t]   (or h→_t if unidirectional).

    Args:
        vocab_size: V.
        num_tags: K.
        embedding_dim: D.
        hidden_size: H, per direction.
        num_layers: stacked recurrent layers.
        bidirectional: read the sentence in both directions.
        dropout: dropout between recurrent layers and before the output layer.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        implementation: ``"scratch"`` (:class:`StackedRNN`) or ``"cudnn"`` (torch.nn with packing).

    Submodules: ``embedding`` (V × D), ``encoder``, ``dropout``, ``output`` (K × num_directions·H).
    """

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        embedding_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        cell: str = "lstm",
        implementation: str = "scratch",
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.encoder = make_encoder(
            embedding_dim, hidden_size, num_layers, bidirectional, dropout, cell, implementation
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear((2 if bidirectional else 1) * hidden_size, num_tags)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Tag logits W h_t + b, shape (T, B, K), from token ids (T, B) and lengths (B,).

        Logits at padded positions are those of a zero state (the output layer's bias); the
        loss and the accuracy ignore them.
        """
        _check_tokens(tokens, lengths)
        hidden, _ = run_encoder(self.encoder, self.embedding(tokens), lengths)
        return self.output(self.dropout(hidden))


class SequenceClassifier(nn.Module):
    """Embeddings → (bidirectional, stacked) recurrent layer → final states → a linear layer.

        s = [h→_n; h←_1] (the last layer's final states),   ŷ = softmax(W dropout(s) + b).

    Args:
        vocab_size: V.
        num_classes: C.
        embedding_dim, hidden_size, num_layers, bidirectional, dropout, cell, implementation:
            as for :class:`SequenceTagger`.

    Submodules: ``embedding``, ``encoder``, ``dropout``, ``output`` (C × num_directions·H).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        cell: str = "lstm",
        implementation: str = "scratch",
    ):
        super().__init__()
        self.num_directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.encoder = make_encoder(
            embedding_dim, hidden_size, num_layers, bidirectional, dropout, cell, implementation
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.num_directions * hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class logits W s + b, shape (B, C), from token ids (T, B) and lengths (B,)."""
        _check_tokens(tokens, lengths)
        _, final = run_encoder(self.encoder, self.embedding(tokens), lengths)
        h_n = final[0] if isinstance(final, tuple) else final
        return self.output(self.dropout(last_layer_state(h_n, self.num_directions)))


def encode_tagged(
    sentences: Sequence[TaggedSentence], vocab: Vocabulary, tagset: Sequence[str] = TAGSET
) -> list[TaggedExample]:
    """Token ids (``vocab``) and tag ids (positions in ``tagset``) of tagged sentences."""
    tag_ids = {tag: i for i, tag in enumerate(tagset)}
    return [(vocab.encode(s.tokens), [tag_ids[tag] for tag in s.tags]) for s in sentences]


def encode_labelled(
    examples: Sequence[tuple[Sequence[str], int]], vocab: Vocabulary
) -> list[LabelledExample]:
    """Token ids (``vocab``) and the label of each ``(tokens, label)`` pair."""
    return [(vocab.encode(tokens), label) for tokens, label in examples]


def collate(
    examples: Sequence[TaggedExample | LabelledExample], pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One padded batch: token ids (T, B), lengths (B,) and targets, (T, B) tags or (B,) labels.

    Padded target positions hold 0; the loss masks them out.
    """
    tokens, lengths = pad_sequences([ids for ids, _ in examples], pad_id)
    targets = [target for _, target in examples]
    if isinstance(targets[0], int):
        return tokens, lengths, torch.tensor(targets, dtype=torch.long)
    padded_targets, target_lengths = pad_sequences(targets, 0)
    if not torch.equal(lengths, target_lengths):
        raise ValueError("every example needs exactly one tag per token")
    return tokens, lengths, padded_targets


def _loss(
    model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Masked per-token cross-entropy for tags (T, B), plain cross-entropy for labels (B,)."""
    logits = model(tokens, lengths)
    if targets.dim() == 2:
        return masked_cross_entropy(logits, targets, lengths)
    return F.cross_entropy(logits, targets)


@dataclass
class SequenceTrainConfig:
    """Hyperparameters of :func:`train_sequence_model`.

    Attributes:
        epochs: passes over the training data.
        batch_size: B.
        lr: Adam's learning rate.
        clip_norm: rescale the gradient when its global norm exceeds this; ``None`` = off.
        bucketing: batches of similar lengths (:class:`BucketBatchSampler`) instead of random ones.
        seed: seeds Python, NumPy, torch and the batch sampler.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 3e-3
    clip_norm: float | None = 1.0
    bucketing: bool = True
    seed: int = 0


@dataclass
class SequenceHistory:
    """Mean training loss (nats per token or per sequence) and wall time of every epoch."""

    train_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


def train_sequence_model(
    model: nn.Module,
    examples: Sequence[TaggedExample | LabelledExample],
    config: SequenceTrainConfig | None = None,
    pad_id: int = 0,
    device: torch.device | str | None = None,
) -> SequenceHistory:
    """Train a :class:`SequenceTagger` (tag lists) or :class:`SequenceClassifier` (labels) with Adam.

    Args:
        model: the model; it is moved to ``device`` and left in training mode.
        examples: ``(token ids, tag ids)`` or ``(token ids, label)`` pairs.
        config: hyperparameters; defaults to ``SequenceTrainConfig()``.
        pad_id: the token id used for padding.
        device: where to train; defaults to ``get_device()``.

    Returns:
        the per-epoch mean losses and epoch times.
    """
    config = config or SequenceTrainConfig()
    if not examples:
        raise ValueError("no training examples")
    device, optimizer = start_training(model, config.lr, config.seed, device)
    sentence_lengths = [len(ids) for ids, _ in examples]
    sampler = batch_sampler(sentence_lengths, config.batch_size, config.bucketing, config.seed)

    def loss_of(batch: list[int]) -> torch.Tensor:
        tokens, lengths, targets = (t.to(device) for t in collate([examples[i] for i in batch], pad_id))
        return _loss(model, tokens, lengths, targets)

    history = SequenceHistory()
    for _ in range(config.epochs):
        loss, seconds = train_epoch(model, optimizer, sampler, loss_of, config.clip_norm, device)
        history.train_loss.append(loss)
        history.epoch_seconds.append(seconds)
    return history


def _batches(examples: Sequence, batch_size: int) -> list[list[int]]:
    """Evaluation batches of similar lengths, in a fixed order."""
    sampler = BucketBatchSampler([len(ids) for ids, _ in examples], batch_size, shuffle=False)
    return list(sampler)


@torch.no_grad()
def tagging_accuracy(
    model: SequenceTagger,
    examples: Sequence[TaggedExample],
    only_tokens: Collection[int] | None = None,
    batch_size: int = 256,
    pad_id: int = 0,
) -> float:
    """The share of real positions whose most probable tag is the true one.

    Args:
        model: a tagger; evaluated in eval mode, on its own device.
        examples: ``(token ids, tag ids)`` pairs.
        only_tokens: count only the positions holding one of these token ids (for example the
            ambiguous words); ``None`` counts every position.
        batch_size: examples per forward pass.
        pad_id: the token id used for padding.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    only = None if only_tokens is None else torch.tensor(sorted(only_tokens), device=device)
    correct, total = 0, 0
    for batch in _batches(examples, batch_size):
        tokens, lengths, tags = (t.to(device) for t in collate([examples[i] for i in batch], pad_id))
        counted = length_mask(lengths, tokens.shape[0])
        if only is not None:
            counted &= torch.isin(tokens, only)
        hits = model(tokens, lengths).argmax(-1) == tags
        correct += int((hits & counted).sum())
        total += int(counted.sum())
    model.train(was_training)
    if total == 0:
        raise ValueError("no position to score: the examples hold none of the chosen tokens")
    return correct / total


@torch.no_grad()
def classification_accuracy(
    model: SequenceClassifier, examples: Sequence[LabelledExample], batch_size: int = 256, pad_id: int = 0
) -> float:
    """The share of sequences whose most probable class is the true one (eval mode, model's device)."""
    if not examples:
        raise ValueError("no examples to score")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for batch in _batches(examples, batch_size):
        tokens, lengths, labels = (t.to(device) for t in collate([examples[i] for i in batch], pad_id))
        correct += int((model(tokens, lengths).argmax(-1) == labels).sum())
    model.train(was_training)
    return correct / len(examples)

