"""Recurrent sequence models for the long-range benchmarks, and a training loop for them.

Four kinds of recurrent layer are compared on the adding problem and the copy-memory task
(``course_lib.data.long_range``):

========  ============================================================================
kind      layer
========  ============================================================================
``rnn``   vanilla RNN, h_t = tanh(W_h h_{t−1} + W_e x_t + b_1), torch's initialization
``irnn``  the same with relu, W_h = I, b_1 = 0 and small Gaussian input weights
          (Le, Jaitly & Hinton, 2015)
``lstm``  LSTM, state (h_t, c_t), c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t, h_t = o_t ⊙ tanh(c_t)
``gru``   GRU, h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
========  ============================================================================

Each comes in two implementations with the same parameter names: ``"scratch"``, the course's
layers (``course_lib.models.rnn.RNN``, ``course_lib.models.lstm.LSTM`` and ``GRU``, a Python
loop over time), and ``"cudnn"``, ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (compiled loops; cuDNN
on a GPU). The compiled ones are faster on the CPU too, so training uses them.

:class:`SequenceModel` puts a linear readout on top of the layer: from the last state for
many-to-one tasks (the adding problem), from every state for many-to-many tasks (the copy
task). :func:`train_long_range` trains it on fresh random batches with Adam and gradient
clipping and returns a :class:`LongRangeCurve`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.long_range import (
    ADDING_BASELINE_MSE,
    ADDING_SOLVED_MSE,
    COPY_INPUT_TOKENS,
    COPY_OUTPUT_CLASSES,
    COPY_SOLVED_ACCURACY,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from course_lib.device import get_device, seed_everything
from course_lib.models.lstm import GRU, LSTM
from course_lib.models.rnn import RNN

KINDS = ("rnn", "irnn", "lstm", "gru")
IMPLEMENTATIONS = ("scratch", "cudnn")
READOUTS = ("last", "all")
TASKS = ("adding", "copy")

IRNN_INPUT_STD = 1e-3
"""Standard deviation of the IRNN's input weights (Le et al., 2015)."""


def make_recurrent_layer(
    kind: str,
    input_size: int,
    hidden_size: int,
    implementation: str = "cudnn",
    irnn_input_std: float = IRNN_INPUT_STD,
) -> nn.Module:
    """A one-layer recurrent layer of the given kind, time-major, with torch.nn's interface.

    ``layer(x (T, B, D), state) -> (output (T, B, H), state)``; the state is h (1, B, H), or
    (h, c) for the LSTM. Parameters: ``weight_ih_l0`` (G·H, D), ``weight_hh_l0`` (G·H, H),
    ``bias_ih_l0`` and ``bias_hh_l0`` (G·H,), with G = 1 (rnn, irnn), 4 (lstm) or 3 (gru),
    initialised by torch's rule (every entry ~ U(−1/√H, 1/√H)) except for the IRNN:
    W_hh = I, both biases 0 and W_ih ~ N(0, ``irnn_input_std``²).

    Args:
        kind: ``"rnn"``, ``"irnn"``, ``"lstm"`` or ``"gru"``.
        input_size: D.
        hidden_size: H.
        implementation: ``"scratch"`` (the course's layers) or ``"cudnn"`` (torch.nn's).
        irnn_input_std: the standard deviation of the IRNN's input weights.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    for name, value in [("input_size", input_size), ("hidden_size", hidden_size)]:
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    scratch = implementation == "scratch"
    if kind in ("rnn", "irnn"):
        nonlinearity = "relu" if kind == "irnn" else "tanh"
        layer_class = RNN if scratch else nn.RNN
        layer = layer_class(input_size, hidden_size, nonlinearity=nonlinearity)
    elif kind == "lstm":
        layer = LSTM(input_size, hidden_size) if scratch else nn.LSTM(input_size, hidden_size)
    else:
        layer = GRU(input_size, hidden_size) if scratch else nn.GRU(input_size, hidden_size)
    if kind == "irnn":
        if irnn_input_std < 0:
            raise ValueError(f"irnn_input_std must be non-negative, got {irnn_input_std}")
        with torch.no_grad():
            layer.weight_hh_l0.copy_(torch.eye(hidden_size))
            layer.weight_ih_l0.normal_(0.0, irnn_input_std)
            layer.bias_ih_l0.zero_()
            layer.bias_hh_l0.zero_()
    return layer


class SequenceModel(nn.Module):
    """A recurrent layer with a linear readout: ŷ = V h_T + b (``"last"``) or ŷ_t = V h_t + b (``"all"``).

    Args:
        kind: the recurrent layer, see :func:`make_recurrent_layer`.
        input_size: D, the size of x_t; for token inputs, the number of distinct ids (the
            ids are one-hot encoded, as in the papers that introduced the benchmarks).
        hidden_size: H.
        output_size: the number of outputs per prediction (1 for the adding problem, the
            number of classes for the copy task).
        readout: ``"last"`` (many-to-one) or ``"all"`` (many-to-many).
        implementation: ``"scratch"`` or ``"cudnn"``.

    Submodules: ``rnn`` (the recurrent layer) and ``output`` (V and b, an O × H linear layer).
    """

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        readout: str = "last",
        implementation: str = "cudnn",
    ):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if output_size < 1:
            raise ValueError(f"output_size must be at least 1, got {output_size}")
        self.kind = kind
        self.input_size = input_size
        self.readout = readout
        self.rnn = make_recurrent_layer(kind, input_size, hidden_size, implementation)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Predictions from the zero initial state.

        Args:
            inputs: real-valued inputs of shape (T, B, D), or token ids of shape (T, B).

        Returns:
            shape (B, O) for ``readout="last"``, (T, B, O) for ``readout="all"``.
        """
        if not inputs.dtype.is_floating_point:
            if inputs.dim() != 2:
                raise ValueError(f"token ids must have shape (T, B), got {tuple(inputs.shape)}")
            if inputs.numel() and not 0 <= int(inputs.min()) <= int(inputs.max()) < self.input_size:
                raise ValueError(f"token ids must lie in [0, {self.input_size}) (input_size)")
            inputs = F.one_hot(inputs, self.input_size).to(self.output.weight.dtype)
        states, _ = self.rnn(inputs)
        return self.output(states[-1] if self.readout == "last" else states)


@dataclass
class LongRangeCurve:
    """What :func:`train_long_range` measured.

    Attributes:
        task: ``"adding"`` or ``"copy"``.
        seq_len: T (the delay, for the copy task).
        steps: the update counts at which the curve was logged.
        train_loss: the mean training loss over the updates since the previous log (MSE for
            the adding problem, cross-entropy in nats per step for the copy task); the batches
            are fresh samples, so this estimates the loss on new sequences.
        test_loss: the loss on the held-out test batch at the end.
        metric: the test MSE (adding) or the fraction of recalled symbols that are right (copy).
        baseline: the loss of the strategy without memory (1/6, or K ln 8 / (T + 2K)).
        solved: whether ``metric`` passes the task's threshold (MSE < 0.01, accuracy ≥ 0.99).
        solved_at: with ``stop_when_solved``, the logged step at which the test batch first
            passed the threshold (``None`` if it never did, or without ``stop_when_solved``).
        seconds: wall-clock training time.
    """

    task: str
    seq_len: int
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: float = math.nan
    metric: float = math.nan
    baseline: float = math.nan
    solved: bool = False
    solved_at: int | None = None
    seconds: float = 0.0


def _batch(task: str, seq_len: int, batch_size: int, generator: torch.Generator, num_symbols: int):
    if task == "adding":
        return adding_problem(seq_len, batch_size, generator)
    return copy_memory(seq_len, batch_size, generator, num_symbols)


def _loss_and_metric(task: str, predictions: torch.Tensor, targets: torch.Tensor, num_symbols: int):
    """The training loss, and the task's metric (MSE, or the accuracy on the recalled symbols)."""
    if task == "adding":
        loss = F.mse_loss(predictions.squeeze(-1), targets)
        return loss, loss.item()
    loss = F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1))
    recalled = predictions[-num_symbols:].argmax(-1) == targets[-num_symbols:]
    return loss, recalled.float().mean().item()


def _is_solved(task: str, metric: float) -> bool:
    return metric < ADDING_SOLVED_MSE if task == "adding" else metric >= COPY_SOLVED_ACCURACY


def train_long_range(
    model: SequenceModel,
    task: str,
    seq_len: int,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    clip_norm: float | None = 1.0,
    seed: int = 0,
    device: torch.device | str | None = None,
    log_every: int = 50,
    num_symbols: int = 10,
    test_size: int = 1000,
    stop_when_solved: bool = False,
) -> LongRangeCurve:
    """Train ``model`` on a long-range task with Adam and global-norm gradient clipping.

    Every update draws a fresh batch from a generator seeded with ``seed``; the test batch of
    ``test_size`` sequences comes from a separate fixed seed, the same for every run, so runs
    with different models or seeds are scored on the same sequences. Nothing is printed.

    Args:
        model: a :class:`SequenceModel` with ``readout="last"`` and one output (adding) or
            ``readout="all"`` and 9 outputs, over 10 input ids (copy).
        task: ``"adding"`` or ``"copy"``.
        seq_len: T, the length of the sequence (adding) or the delay (copy).
        steps: the number of updates.
        batch_size: sequences per update.
        lr: Adam's learning rate.
        clip_norm: the largest global gradient norm (``None``: no clipping).
        seed: seeds the training batches (the model's initial weights are the caller's).
        device: where to train; defaults to ``get_device()``.
        log_every: record the mean training loss every this many updates.
        num_symbols: K, for the copy task.
        test_size: the number of test sequences.
        stop_when_solved: evaluate the test batch at every log and stop once it is solved.

    Returns:
        a :class:`LongRangeCurve`.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    for name, value in [
        ("steps", steps),
        ("batch_size", batch_size),
        ("log_every", log_every),
        ("test_size", test_size),
    ]:
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    expected = ("last", 1) if task == "adding" else ("all", COPY_OUTPUT_CLASSES)
    if (model.readout, model.output.out_features) != expected:
        raise ValueError(
            f"the {task} task needs a SequenceModel with readout={expected[0]!r} and "
            f"output_size={expected[1]}, "
            f"got readout={model.readout!r} and output_size={model.output.out_features}"
        )
    if task == "copy" and model.input_size != COPY_INPUT_TOKENS:
        raise ValueError(
            f"the copy task has {COPY_INPUT_TOKENS} input ids: use input_size={COPY_INPUT_TOKENS}"
        )
    if task == "adding" and model.input_size != 2:
        raise ValueError("the adding problem has two input channels: use input_size=2")
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    test_inputs, test_targets = _batch(
        task, seq_len, test_size, torch.Generator().manual_seed(2**31 - 1), num_symbols
    )
    test_inputs, test_targets = test_inputs.to(device), test_targets.to(device)

    def evaluate() -> tuple[float, float]:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            loss, metric = _loss_and_metric(task, model(test_inputs), test_targets, num_symbols)
        model.train(was_training)
        return loss.item(), metric

    baseline = ADDING_BASELINE_MSE if task == "adding" else copy_memory_baseline(seq_len, num_symbols)
    curve = LongRangeCurve(task=task, seq_len=seq_len, baseline=baseline)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start, total = time.perf_counter(), 0.0
    model.train()
    for step in range(1, steps + 1):
        inputs, targets = _batch(task, seq_len, batch_size, generator, num_symbols)
        loss, _ = _loss_and_metric(task, model(inputs.to(device)), targets.to(device), num_symbols)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        total += loss.item()
        if step % log_every == 0 or step == steps:
            curve.steps.append(step)
            curve.train_loss.append(total / (step - (curve.steps[-2] if len(curve.steps) > 1 else 0)))
            total = 0.0
            if stop_when_solved and _is_solved(task, evaluate()[1]):
                curve.solved_at = step
                break
    curve.seconds = time.perf_counter() - start
    curve.test_loss, curve.metric = evaluate()
    curve.solved = _is_solved(task, curve.metric)
    return curve
