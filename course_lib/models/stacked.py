"""Bidirectional and stacked recurrent layers with variable-length batches, written from scratch.

**Bidirectional.** A forward recurrence reads the sequence left to right and a backward one
right to left, each with its own weights, and each position gets both states side by side:

    h→_t = f(h→_{t−1}, x_t)      t = 1 … T
    h←_t = f(h←_{t+1}, x_t)      t = T … 1
    h_t  = [h→_t; h←_t]          shape (T, B, 2H)

f is one step of a vanilla RNN, an LSTM or a GRU (:func:`cell_step`). h_t summarises the
whole sequence as seen from position t, which is what a tagger needs ("the light is" and "the
light box" differ only to the right of "light"). It is also why a bidirectional layer cannot be
a language model: h←_t has read x_{t+1} … x_T, so predicting x_{t+1} from h_t is copying it.

**Stacked.** Layer ℓ reads the outputs of layer ℓ − 1 (layer 0 reads x):

    h^(ℓ)_t = f(h^(ℓ)_{t−1}, dropout(h^(ℓ−1)_t))      ℓ = 1 … L − 1,

with dropout only between layers (not on the input, not after the last layer) and only in
training mode, as ``torch.nn.LSTM(dropout=p)`` does.

**Variable lengths.** A padded batch (T, B, D) comes with the lengths n_b of its sequences.
The forward direction updates sequence b only while t < n_b, so its final state is h→_{n_b};
the backward direction must start at x_{n_b}, not at the padding at x_T, so it runs on
:func:`reverse_padded` inputs (each sequence's real steps reversed, the padding left in place)
and its outputs are reversed back. Outputs at padded positions are zero. This is exactly what
``torch.nn.LSTM`` computes on ``pack_padded_sequence`` input (see :func:`run_packed`).

:class:`StackedRNN`, :class:`StackedLSTM` and :class:`StackedGRU` are drop-in replacements for
``torch.nn.RNN``, ``torch.nn.LSTM`` and ``torch.nn.GRU`` (time-major) with ``num_layers``,
``bidirectional`` and ``dropout``: outputs (T, B, num_directions · H), final states
(num_layers · num_directions, B, H) with row ℓ · num_directions + d for layer ℓ and
direction d (0 forward, 1 backward), and the parameter names ``weight_ih_l{ℓ}``,
``weight_hh_l{ℓ}``, ``bias_ih_l{ℓ}``, ``bias_hh_l{ℓ}`` (and ``…_reverse`` for the backward
direction), so ``load_state_dict`` works in both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.data.padding import length_mask
from course_lib.models.lstm import gru_step, lstm_step
from course_lib.models.rnn import add_recurrent_parameters, rnn_step
from course_lib.models.shapes import check_input, check_shape

CELL_TYPES = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""The number of stacked gate blocks in ``weight_ih`` and ``weight_hh`` of each cell."""

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""h for the RNN and the GRU, (h, c) for the LSTM."""

Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]
"""``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one direction of one layer."""

Direction = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, State]]
"""A left-to-right recurrence: ``(x (T, B, D), lengths (B,) or None) -> (outputs (T, B, H), final state)``."""


def check_cell(cell: str) -> None:
    """Raise ``ValueError`` unless ``cell`` is one of :data:`CELL_TYPES`."""
    if cell not in CELL_TYPES:
        raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")


def check_lengths(lengths: torch.Tensor | Sequence[int] | None, x: torch.Tensor) -> torch.Tensor | None:
    """Return ``lengths`` as a LongTensor (B,) on the device of ``x`` (T, B, …), checking 1 ≤ n_b ≤ T."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=x.device)
    if lengths.dim() != 1 or lengths.shape[0] != x.shape[1]:
        raise ValueError(
            f"need one length per sequence, shape (B,) = ({x.shape[1]},), got {tuple(lengths.shape)}"
        )
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > x.shape[0]:
        raise ValueError(f"lengths must lie between 1 and T = {x.shape[0]}, got {lengths.tolist()}")
    return lengths.long()


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
    """Reverse the real steps of every sequence of a padded batch, leaving the padding in place.

        x'_{t,b} = x_{n_b − 1 − t, b}  for t < n_b,      x'_{t,b} = x_{t,b}  for t ≥ n_b.

    Applying it twice gives ``x`` back. Without lengths it is ``x.flip(0)``.

    Args:
        x: a padded batch, shape (T, B, …).
        lengths: n_b, shape (B,), 1 ≤ n_b ≤ T; ``None`` when no sequence is padded.

    Returns:
        a tensor of the shape of ``x``.
    """
    if x.dim() < 2:
        raise ValueError(f"expected a time-major batch of shape (T, B, ...), got {tuple(x.shape)}")
    lengths = check_lengths(lengths, x)
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)
    source = source.view(*source.shape, *[1] * (x.dim() - 2)).expand_as(x)
    return x.gather(0, source)


def cell_step(
    cell: str, x: torch.Tensor, state: State, weights: Weights, nonlinearity: str = "tanh"
) -> State:
    """One step s_t = f(s_{t−1}, x_t) of a vanilla RNN, an LSTM or a GRU.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        x: x_t, shape (B, D).
        state: s_{t−1}: h_{t−1} (B, H), or ``(h_{t−1}, c_{t−1})`` for the LSTM.
        weights: ``(weight_ih, weight_hh, bias_ih, bias_hh)`` in torch.nn's layout.
        nonlinearity: ``"tanh"`` or ``"relu"``, for the vanilla RNN only.

    Returns:
        s_t, in the form of ``state``.
    """
    if cell == "rnn":
        return rnn_step(x, state, *weights, nonlinearity)
    if cell == "gru":
        return gru_step(x, state, *weights)
    if cell == "lstm":
        return lstm_step(x, *state, *weights)
    raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")


def _hidden(state: State) -> torch.Tensor:
    """h from a state: the state itself, or the first of (h, c)."""
    return state[0] if isinstance(state, tuple) else state


def _where(keep: torch.Tensor, new: State, old: State) -> State:
    """``new`` for the sequences where ``keep`` (B,) is true, ``old`` elsewhere."""
    keep = keep.unsqueeze(1)
    if isinstance(new, tuple):
        return tuple(torch.where(keep, n, o) for n, o in zip(new, old, strict=True))
    return torch.where(keep, new, old)


def run_direction(
    cell: str,
    x: torch.Tensor,
    state: State,
    weights: Weights,
    lengths: torch.Tensor | None = None,
    nonlinearity: str = "tanh",
) -> tuple[torch.Tensor, State]:
    """A left-to-right recurrence h_t = f(h_{t−1}, x_t) over a padded batch.

    Sequence b is updated only at its real steps t < n_b: after them its state stays
    s_{n_b}, and its outputs are zero.

    Args:
        cell, weights, nonlinearity: as in :func:`cell_step`.
        x: x_1 … x_T, shape (T, B, D).
        state: the initial state s_0: h_0 (B, H), or ``(h_0, c_0)`` for the LSTM.
        lengths: n_b, shape (B,), 1 ≤ n_b ≤ T; ``None`` when no sequence is padded.

    Returns:
        ``(outputs, final)``: h_1 … h_T, shape (T, B, H), zero at padded positions, and each
        sequence's state at its last real step, s_{n_b}, in the form of ``state``.
    """
    lengths = check_lengths(lengths, x)
    mask = None if lengths is None else length_mask(lengths, x.shape[0])
    outputs = []
    for t, x_t in enumerate(x):
        new_state = cell_step(cell, x_t, state, weights, nonlinearity)
        state = new_state if mask is None else _where(mask[t], new_state, state)
        outputs.append(_hidden(state))
    output = torch.stack(outputs)
    if mask is not None:
        output = output.masked_fill(~mask.unsqueeze(-1), 0.0)
    return output, state


def bidirectional(
    run_forward: Direction, run_backward: Direction, x: torch.Tensor, lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, tuple[State, State]]:
    """h_t = [h→_t; h←_t]: a left-to-right and a right-to-left recurrence, concatenated per position.

        h→_t = f(h→_{t−1}, x_t),    h←_t = f(h←_{t+1}, x_t).

    The backward direction is the left-to-right recurrence ``run_backward`` applied to the
    real steps of each sequence in reverse (:func:`reverse_padded`), whose outputs are then
    reversed back into place; so it starts at each sequence's last real step, never on padding.

    Args:
        run_forward, run_backward: left-to-right recurrences with their own weights,
            ``(x, lengths) -> (outputs (T, B, H), final state)``.
        x: a padded batch, shape (T, B, D).
        lengths: n_b, shape (B,); ``None`` when no sequence is padded.

    Returns:
        ``(outputs, (final_forward, final_backward))``: [h→_t; h←_t], shape (T, B, 2H), zero at
        padded positions; h→_{n_b} (after the last real step) and h←_1 (after the first step).
    """
    forward_outputs, forward_final = run_forward(x, lengths)
    backward_outputs, backward_final = run_backward(reverse_padded(x, lengths), lengths)
    outputs = torch.cat([forward_outputs, reverse_padded(backward_outputs, lengths)], dim=-1)
    return outputs, (forward_final, backward_final)


class StackedRNN(nn.Module):
    """A multi-layer, optionally bidirectional RNN, LSTM or GRU, a Python loop over time.

    A drop-in replacement for ``torch.nn.RNN`` (``cell="rnn"``), ``torch.nn.LSTM`` and
    ``torch.nn.GRU`` with ``num_layers``, ``bidirectional`` and ``dropout`` (time-major): the
    same call and results, and the same parameters: for layer ℓ and direction suffix ``""``
    (forward) or ``"_reverse"`` (backward), ``weight_ih_l{ℓ}{suffix}`` (G·H, D_ℓ),
    ``weight_hh_l{ℓ}{suffix}`` (G·H, H), ``bias_ih_l{ℓ}{suffix}`` and ``bias_hh_l{ℓ}{suffix}``
    (G·H,), with G = 1, 4, 3 gates and D_0 = D, D_ℓ = num_directions · H above.
    :meth:`forward` also takes the lengths of a padded batch (see the module docstring).

    Args:
        input_size: D.
        hidden_size: H.
        num_layers: L, the number of stacked layers.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        bias: whether to have the biases.
        dropout: the dropout probability on the outputs of every layer but the last, in
            training mode.
        bidirectional: add a backward direction to every layer.
        nonlinearity: ``"tanh"`` or ``"relu"``, for ``cell="rnn"`` only.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        cell: str = "rnn",
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
    ):
        super().__init__()
        check_cell(cell)
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        if cell != "rnn" and nonlinearity != "tanh":
            raise ValueError(f"nonlinearity applies to cell='rnn' only, not to {cell!r}")
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.nonlinearity = nonlinearity
        with torch.random.fork_rng(devices=[]):
            for layer in range(num_layers):
                layer_input = input_size if layer == 0 else self.num_directions * hidden_size
                for direction in range(self.num_directions):
                    suffix = self._suffix(layer, direction)
                    add_recurrent_parameters(self, layer_input, hidden_size, GATES[cell], bias, suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(−1/√H, 1/√H), one after the other in torch.nn's order.

        So the same seed gives the same weights as ``torch.nn.RNN/LSTM/GRU``.
        """
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def layer_weights(self, layer: int, direction: int = 0) -> Weights:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of ``layer``; direction 0 forward, 1 backward."""
        suffix = self._suffix(layer, direction)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(getattr(self, f"{name}{suffix}") for name in names)

    def init_state(self, batch_size: int, like: torch.Tensor) -> State:
        """The zero state, shape (L · num_directions, B, H) (a pair of them for the LSTM)."""
        zeros = like.new_zeros(self.num_layers * self.num_directions, batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    def _check_state(self, state: State, batch_size: int) -> State:
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        meaning = "(num_layers · num_directions, B, H)"
        if self.cell == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(f"an LSTM state must be a pair (h, c), got {type(state).__name__}")
            check_shape("h", state[0], shape, meaning)
            check_shape("c", state[1], shape, meaning)
            return tuple(state)
        if not isinstance(state, torch.Tensor):
            raise ValueError(f"the state of a {self.cell.upper()} is a tensor h, got {type(state).__name__}")
        check_shape("h", state, shape, meaning)
        return state

    def _initial(self, state: State, row: int) -> State:
        """The initial state of one layer and direction: row ℓ · num_directions + d of ``state``."""
        return (state[0][row], state[1][row]) if self.cell == "lstm" else state[row]

    def _direction(self, layer: int, direction: int, initial: State) -> Direction:
        """The left-to-right recurrence of one layer and direction, starting from ``initial``."""
        weights = self.layer_weights(layer, direction)

        def run(x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, State]:
            return run_direction(self.cell, x, initial, weights, lengths, self.nonlinearity)

        return run

    def forward(
        self,
        x: torch.Tensor,
        state: State | None = None,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, State]:
        """Run all layers over a (padded) batch.

        Args:
            x: the inputs, shape (T, B, D).
            state: the initial states, shape (L · num_directions, B, H) (``(h_0, c_0)`` for the
                LSTM), as for torch.nn; zeros when ``None``.
            lengths: n_b, shape (B,), 1 ≤ n_b ≤ T; ``None`` when no sequence is padded.

        Returns:
            ``(output, final)``: the last layer's outputs, shape (T, B, num_directions · H), zero
            at padded positions; and the final states of every layer and direction, shape
            (L · num_directions, B, H) (``(h_n, c_n)`` for the LSTM), taken at each sequence's
            last real step (for the backward direction: after reading x_1).
        """
        check_input(x, self.input_size, time_major=True)
        lengths = check_lengths(lengths, x)
        state = self.init_state(x.shape[1], x) if state is None else self._check_state(state, x.shape[1])
        finals = []
        for layer in range(self.num_layers):
            if layer > 0:
                x = F.dropout(x, self.dropout, self.training)
            rows = [layer * self.num_directions + d for d in range(self.num_directions)]
            directions = [self._direction(layer, d, self._initial(state, row)) for d, row in enumerate(rows)]
            if self.bidirectional:
                x, layer_finals = bidirectional(*directions, x, lengths)
            else:
                x, final = directions[0](x, lengths)
                layer_finals = (final,)
            finals.extend(layer_finals)
        if self.cell == "lstm":
            return x, (torch.stack([h for h, _ in finals]), torch.stack([c for _, c in finals]))
        return x, torch.stack(finals)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, cell={self.cell!r}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )


class StackedLSTM(StackedRNN):
    """:class:`StackedRNN` with ``cell="lstm"``, a drop-in replacement for ``torch.nn.LSTM``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, **options):
        super().__init__(input_size, hidden_size, num_layers, cell="lstm", **options)


class StackedGRU(StackedRNN):
    """:class:`StackedRNN` with ``cell="gru"``, a drop-in replacement for ``torch.nn.GRU``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, **options):
        super().__init__(input_size, hidden_size, num_layers, cell="gru", **options)


def run_packed(
    layer: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | Sequence[int], state: State | None = None
) -> tuple[torch.Tensor, State]:
    """Run a ``torch.nn.RNN/LSTM/GRU`` on a padded batch through ``pack_padded_sequence``.

    Packing hands the layer only the real steps of each sequence (in any order of lengths),
    which is what :class:`StackedRNN` computes with ``lengths``.

    Args:
        layer: a time-major torch.nn recurrent layer.
        x: a padded batch, shape (T, B, D).
        lengths: n_b, shape (B,), 1 ≤ n_b ≤ T.
        state: the initial state as for ``layer``, or ``None`` for zeros.

    Returns:
        ``(output, final)``: outputs of shape (T, B, num_directions · H), zero at padded
        positions, and the layer's final state at each sequence's last real step.
    """
    if getattr(layer, "batch_first", False):
        raise ValueError("run_packed expects a time-major layer (batch_first=False)")
    lengths = check_lengths(lengths, x)
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    packed_output, final = layer(packed, state)
    output, _ = pad_packed_sequence(packed_output, total_length=x.shape[0])
    return output, final


def last_layer_state(h_n: torch.Tensor, num_directions: int) -> torch.Tensor:
    """The last layer's final hidden states, its directions side by side: [h→_{n_b}; h←_1].

    Args:
        h_n: final hidden states, shape (L · num_directions, B, H) (h, not c, for an LSTM).
        num_directions: 1 or 2.

    Returns:
        shape (B, num_directions · H): the summary of each sequence for a many-to-one task.
    """
    if num_directions not in (1, 2):
        raise ValueError(f"num_directions must be 1 or 2, got {num_directions}")
    if h_n.dim() != 3 or h_n.shape[0] % num_directions:
        raise ValueError(f"h_n must have shape (L · num_directions, B, H), got {tuple(h_n.shape)}")
    return torch.cat(list(h_n[-num_directions:]), dim=-1)
