"""The training loop shared by the neural chapters.

Every language model of the course has the same interface,

    logits, state = model(inputs, state)      inputs (T, B) ids -> logits (T, B, V),

where ``state`` is whatever the model carries from one chunk of text to the next (the
hidden state of an RNN, the last words of a fixed-window model, ``None`` for none).
:func:`train_language_model` trains such a model on a token stream with truncated
backpropagation through time: the stream is cut into ``B`` columns read ``L`` steps at a
time, and the state is carried between chunks but detached, so gradients flow back at most
``L`` steps. Each epoch reports the validation perplexity; the best weights are kept.

    history = train_language_model(model, train_ids, val_ids, TrainConfig(epochs=3))
    print(history.val_perplexity)
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib.data.batching import batchify, bptt_batches, count_bptt_batches
from course_lib.device import get_device, seed_everything

Batch = TypeVar("Batch")  # whatever a training loop's sampler yields: indices, tensors, ...
State = Any
"""A model's recurrent state: a tensor, a tuple of tensors (LSTM), or ``None``."""


@dataclass
class TrainConfig:
    """Hyperparameters of :func:`train_language_model`.

    Attributes:
        epochs: passes over the training stream (fewer if early stopping triggers).
        batch_size: B, the number of parallel columns of the stream.
        seq_len: L, the number of time steps per chunk (the truncation length of BPTT).
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"``.
        weight_decay: L2 penalty passed to the optimizer.
        clip_norm: rescale the gradient when its global norm exceeds this; ``None`` = off.
        patience: stop after this many epochs without a better validation loss; ``None`` = off.
        max_batches_per_epoch: cut epochs short (for quick runs and grading).
        carry_state: carry the detached state across chunks (``False``: start each chunk from
            ``None``).
        mixed_precision: autocast to bfloat16 on CUDA GPUs (ignored on the CPU).
        progress: show a progress bar.
        seed: seeds Python, NumPy and torch before training.
    """

    epochs: int = 5
    batch_size: int = 32
    seq_len: int = 35
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    patience: int | None = 2
    max_batches_per_epoch: int | None = None
    carry_state: bool = True
    mixed_precision: bool = True
    progress: bool = True
    seed: int = 0


@dataclass
class History:
    """Per-epoch mean losses in nats per token, and which epoch's weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def train_perplexity(self) -> list[float]:
        return [math.exp(loss) for loss in self.train_loss]

    @property
    def val_perplexity(self) -> list[float]:
        return [math.exp(loss) for loss in self.val_loss]


def start_training(
    model: nn.Module, lr: float, seed: int, device: torch.device | str | None = None
) -> tuple[torch.device, torch.optim.Optimizer]:
    """Seed every generator, move ``model`` to ``device`` in training mode, and give it an Adam optimizer.

    Returns the device (``get_device()`` when ``device`` is None) and the optimizer.
    """
    device = torch.device(device) if device is not None else get_device()
    seed_everything(seed)
    model.to(device).train()
    return device, torch.optim.Adam(model.parameters(), lr=lr)


def optimizer_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip_norm: float | None
) -> None:
    """Zero the gradients, back-propagate ``loss``, clip the gradient's global norm to ``clip_norm``
    (unless None) and take the optimizer's step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    loss_of: Callable[[Batch], torch.Tensor],
    clip_norm: float | None,
    device: torch.device,
) -> tuple[float, float]:
    """One epoch of training by teacher forcing: an optimizer step on ``loss_of(batch)`` per batch.

    Each step zeroes the gradients, back-propagates the loss, clips the gradient's global norm
    to ``clip_norm`` (unless None) and steps. The sequence models of Chapters 6–8 (taggers,
    classifiers, seq2seq, captioners) train with it; they differ only in ``loss_of``.

    Returns:
        the mean of the batches' losses and the epoch's seconds (after the GPU's queued work).
    """
    start, total, count = time.perf_counter(), 0.0, 0
    for batch in batches:
        loss = loss_of(batch)
        optimizer_step(model, optimizer, loss, clip_norm)
        total, count = total + loss.item(), count + 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return total / count, time.perf_counter() - start


def detach_state(state: State) -> State:
    """Cut the graph behind a state (tensor, nested tuple/list of tensors, or ``None``)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(part) for part in state)
    raise TypeError(f"cannot detach a state of type {type(state).__name__}; use tensors or tuples of tensors")


def _autocast(device: torch.device, enabled: bool) -> torch.autocast:
    use = enabled and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use)


def _chunk_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, state: State, autocast):
    with autocast:
        logits, state = model(inputs, state)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
    return loss, state


def language_model_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    state: State,
    clip_norm: float | None,
    autocast: torch.autocast | None = None,
) -> tuple[float, State]:
    """One step of truncated BPTT on a chunk: the loss of ``inputs`` (L, B) against ``targets`` (L, B).

    :func:`optimizer_step` on the mean cross-entropy; ``state`` should already be detached.

    Returns:
        the chunk's mean loss in nats per token, and the model's state after the chunk.
    """
    loss, state = _chunk_loss(model, inputs, targets, state, autocast or _autocast(inputs.device, False))
    optimizer_step(model, optimizer, loss, clip_norm)
    return loss.item(), state


@torch.no_grad()
def evaluate_language_model(
    model: nn.Module,
    stream: torch.Tensor,
    batch_size: int = 16,
    seq_len: int = 64,
    device: torch.device | None = None,
    mixed_precision: bool = True,
) -> float:
    """Mean negative log-likelihood (nats per predicted token) of ``stream`` ``(N,)``.

    The state is carried through the whole stream, as in training.
    """
    device = device or next(model.parameters()).device
    data = batchify(stream.to(device), batch_size)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    autocast = _autocast(device, mixed_precision)
    for inputs, targets in bptt_batches(data, seq_len):
        loss, state = _chunk_loss(model, inputs, targets, state, autocast)
        total += loss.item() * targets.numel()
        count += targets.numel()
    model.train(was_training)
    return total / count


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use 'adam' or 'sgd'")


def train_language_model(
    model: nn.Module,
    train_stream: torch.Tensor,
    val_stream: torch.Tensor,
    config: TrainConfig | None = None,
    device: torch.device | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    on_epoch_end: Callable[[int, History, nn.Module], None] | None = None,
) -> History:
    """Train ``model`` on ``train_stream`` ``(N,)`` and keep the weights of its best validation epoch.

    Args:
        model: a course language model, ``model(inputs (T, B), state) -> (logits (T, B, V), state)``.
        train_stream, val_stream: token ids, shape ``(N,)`` (see ``data.batching.encode_stream``).
        config: hyperparameters; defaults to ``TrainConfig()``.
        device: where to train; defaults to ``get_device()``.
        checkpoint_path: if given, the best model is also saved there (see :func:`save_checkpoint`).
        on_epoch_end: called as ``on_epoch_end(epoch, history, model)`` after each epoch, for
            example to print samples as training progresses.
    """
    config = config or TrainConfig()
    device = device or get_device()
    seed_everything(config.seed)
    model.to(device)
    optimizer = _make_optimizer(model, config)
    data = batchify(train_stream.to(device), config.batch_size)
    autocast = _autocast(device, config.mixed_precision)
    n_batches = count_bptt_batches(data, config.seq_len)
    if config.max_batches_per_epoch is not None:
        n_batches = min(n_batches, config.max_batches_per_epoch)

    history = History()
    best_loss, best_weights, epochs_without_gain = math.inf, None, 0
    for epoch in range(config.epochs):
        start = time.perf_counter()
        model.train()
        total, count, state = 0.0, 0, None
        chunks = islice(bptt_batches(data, config.seq_len), n_batches)
        bar = tqdm(chunks, total=n_batches, desc=f"epoch {epoch + 1}", disable=not config.progress)
        for inputs, targets in bar:
            state = detach_state(state) if config.carry_state else None
            loss, state = language_model_step(
                model, optimizer, inputs, targets, state, config.clip_norm, autocast
            )
            total += loss * targets.numel()
            count += targets.numel()
            bar.set_postfix(loss=f"{total / count:.3f}")
        history.train_loss.append(total / count)
        history.val_loss.append(
            evaluate_language_model(model, val_stream, device=device, mixed_precision=config.mixed_precision)
        )
        history.epoch_seconds.append(time.perf_counter() - start)
        if history.val_loss[-1] < best_loss:
            best_loss, history.best_epoch, epochs_without_gain = history.val_loss[-1], epoch, 0
            best_weights = copy.deepcopy(model.state_dict())
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, optimizer, epoch=epoch, config=asdict(config))
        else:
            epochs_without_gain += 1
        if on_epoch_end is not None:
            on_epoch_end(epoch, history, model)
        if config.patience is not None and epochs_without_gain >= config.patience:
            history.stopped_early = True
            break
    model.load_state_dict(best_weights)
    return history


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **metadata: Any
) -> None:
    """Save state dicts (model, optimizer) and plain metadata; the file appears only when complete."""
    path = Path(path)
    payload = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "metadata": metadata,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Only tensors and plain data are read (``weights_only=True``): a checkpoint cannot run code.
    Returns the metadata.
    """
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint: {error}") from error
    if not isinstance(payload, dict) or "model" not in payload:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint")
    model.load_state_dict(payload["model"])
    if optimizer is not None and payload.get("optimizer") is not None:
        optimizer.load_state_dict(payload["optimizer"])
    return payload.get("metadata", {})
