"""Gated recurrent layers (LSTM and GRU) and a gated recurrent language model, written from scratch.

The course writes the LSTM for one column vector x_t, stacking the previous state and the
input into one vector [h_{t−1}; x_t]:

    f_t = σ(W_f [h_{t−1}; x_t] + b_f)          forget gate
    i_t = σ(W_i [h_{t−1}; x_t] + b_i)          input gate
    o_t = σ(W_o [h_{t−1}; x_t] + b_o)          output gate
    c̃_t = tanh(W_c [h_{t−1}; x_t] + b_c)       candidate cell
    c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t
    h_t = o_t ⊙ tanh(c_t)

Other texts give each gate two matrices, f_t = σ(W_f x_t + U_f h_{t−1} + b_f). This is the same
model: a matrix acting on a stacked vector is the two blocks side by side, each acting on its
part, [U_f | W_f] [h_{t−1}; x_t] = U_f h_{t−1} + W_f x_t. PyTorch stores the blocks of all four
gates in two matrices, ``weight_ih`` (4H, D) for the inputs and ``weight_hh`` (4H, H) for the
state, with the gate rows in the order i, f, g, o (g is the candidate c̃):

========  ===================  ===================  ==============================
gate      rows of weight_ih    rows of weight_hh    bias
========  ===================  ===================  ==============================
i_t       ``[0:H]``            ``[0:H]``            ``bias_ih[0:H] + bias_hh[0:H]``
f_t       ``[H:2H]``           ``[H:2H]``           same rows
c̃_t (g)   ``[2H:3H]``          ``[2H:3H]``          same rows
o_t       ``[3H:4H]``          ``[3H:4H]``          same rows
========  ===================  ===================  ==============================

so W = [W_ih | W_hh], of shape (4H, D + H), multiplies [x_t; h_{t−1}] (the lecture's
[h_{t−1}; x_t] takes the blocks in the other order, [W_hh | W_ih]). In code one fused matrix
product computes the pre-activations of all four gates at once, and they are then cut into
four blocks of H columns.

The GRU is written in the course as

    r_t = σ(W_r [h_{t−1}; x_t] + b_r)               reset gate
    z_t = σ(W_z [h_{t−1}; x_t] + b_z)               update gate
    h̃_t = tanh(W_h [r_t ⊙ h_{t−1}; x_t] + b_h)      candidate state
    h_t = (1 − z_t) ⊙ h̃_t + z_t ⊙ h_{t−1}

PyTorch (and cuDNN) use a variant that applies the reset gate *after* the product with the
state, so that all three products with h_{t−1} can again be fused into one:

    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

with n_t = h̃_t, gate rows in the order r, z, n, and again ``weight_ih`` (3H, D),
``weight_hh`` (3H, H). The two candidates differ in general (W_hn (r_t ⊙ h_{t−1}) is not
r_t ⊙ (W_hn h_{t−1})), so the modules here implement PyTorch's form, which is what makes their
weights interchangeable with ``torch.nn.GRU``. In both, z_t ≈ 1 keeps the old state.

As in ``course_lib.models.rnn``, a batch holds B row vectors, so in code every product is
transposed (``x_t W_ihᵀ``), and sequences are time-major: inputs (T, B, D), states (T, B, H).
All parameter names and shapes are those of ``torch.nn.LSTMCell``, ``torch.nn.LSTM``,
``torch.nn.GRUCell`` and ``torch.nn.GRU`` (one layer), so ``load_state_dict`` works in both
directions.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.models.rnn import add_recurrent_parameters
from course_lib.models.shapes import check_input, check_shape

LSTMState = tuple[torch.Tensor, torch.Tensor]
"""The state (h, c) of an LSTM: the hidden state and the cell state."""

CELL_TYPES = ("lstm", "gru")
IMPLEMENTATIONS = ("scratch", "cudnn")


def _unpack_lstm_state(state: LSTMState, shape: tuple[int, ...], meaning: str) -> LSTMState:
    """Check that ``state`` is a pair (h, c) of tensors of the given shape, and return it."""
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise ValueError(f"an LSTM state must be a pair (h, c), got {type(state).__name__}")
    h, c = state
    check_shape("h", h, shape, meaning)
    check_shape("c", c, shape, meaning)
    return h, c


def lstm_step(
    x: torch.Tensor,
    h_prev: torch.Tensor,
    c_prev: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
) -> LSTMState:
    """One LSTM step: c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t, h_t = o_t ⊙ tanh(c_t).

    One matrix product per input computes the pre-activations of all four gates, (B, 4H),
    which are then cut into i, f, g = c̃, o (PyTorch's order).

    Args:
        x: the inputs x_t, shape (B, D).
        h_prev: h_{t−1}, shape (B, H).
        c_prev: c_{t−1}, shape (B, H).
        weight_ih: the input blocks of W_i, W_f, W_c, W_o stacked, shape (4H, D).
        weight_hh: the state blocks of W_i, W_f, W_c, W_o stacked, shape (4H, H).
        bias_ih, bias_hh: the two halves of b_i, b_f, b_c, b_o, shape (4H,) each, or ``None``.

    Returns:
        ``(h_t, c_t)``, shape (B, H) each.
    """
    gates = x @ weight_ih.T + h_prev @ weight_hh.T
    if bias_ih is not None:
        gates = gates + bias_ih
    if bias_hh is not None:
        gates = gates + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gru_step(
    x: torch.Tensor,
    h_prev: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
) -> torch.Tensor:
    """One GRU step in PyTorch's form: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}.

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))

    One matrix product per input computes all three blocks, which are cut into r, z, n.

    Args:
        x: the inputs x_t, shape (B, D).
        h_prev: h_{t−1}, shape (B, H).
        weight_ih: W_ir, W_iz, W_in stacked, shape (3H, D).
        weight_hh: W_hr, W_hz, W_hn stacked, shape (3H, H).
        bias_ih: b_ir, b_iz, b_in stacked, shape (3H,), or ``None``.
        bias_hh: b_hr, b_hz, b_hn stacked, shape (3H,), or ``None``.

    Returns:
        h_t, shape (B, H).
    """
    from_input = x @ weight_ih.T
    from_state = h_prev @ weight_hh.T
    if bias_ih is not None:
        from_input = from_input + bias_ih
    if bias_hh is not None:
        from_state = from_state + bias_hh
    input_r, input_z, input_n = from_input.chunk(3, dim=1)
    state_r, state_z, state_n = from_state.chunk(3, dim=1)
    r = torch.sigmoid(input_r + state_r)
    z = torch.sigmoid(input_z + state_z)
    n = torch.tanh(input_n + r * state_n)
    return (1 - z) * n + z * h_prev


class LSTMCell(nn.Module):
    """One LSTM step, a drop-in replacement for ``torch.nn.LSTMCell`` (batched inputs).

        f_t = σ(W_f [h_{t−1}; x_t] + b_f),   i_t = σ(W_i [h_{t−1}; x_t] + b_i),
        o_t = σ(W_o [h_{t−1}; x_t] + b_o),   c̃_t = tanh(W_c [h_{t−1}; x_t] + b_c),
        c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t,     h_t = o_t ⊙ tanh(c_t).

    The four gates are computed by one fused matrix product. Parameters, as in
    ``torch.nn.LSTMCell``: ``weight_ih`` (4H, D) and ``weight_hh`` (4H, H), the input and state
    blocks of W_i, W_f, W_c, W_o stacked in the order i, f, g = c̃, o; ``bias_ih`` and
    ``bias_hh`` (4H,), with b = bias_ih + bias_hh. Writing W [x_t; h_{t−1}] with
    W = [W_ih | W_hh] or W_ih x_t + W_hh h_{t−1} (the "separate W and U" notation) is the same model.

    Args:
        input_size: D, the size of x_t.
        hidden_size: H, the size of h_t and c_t.
        bias: whether to have the biases.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        add_recurrent_parameters(self, input_size, hidden_size, gates=4, bias=bias)

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> LSTMState:
        """(h_t, c_t), shape (B, H) each, from x_t (B, D) and (h_{t−1}, c_{t−1}) (B, H) each.

        A missing state is zeros.
        """
        check_input(x, self.input_size, time_major=False)
        shape = (x.shape[0], self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            state = (zeros, zeros)
        h_prev, c_prev = _unpack_lstm_state(state, shape, "(B, H)")
        return lstm_step(x, h_prev, c_prev, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class LSTM(nn.Module):
    """A one-layer LSTM over a whole sequence, a Python loop over time.

    It applies the equations of :class:`LSTMCell` for t = 1 … T and is a drop-in replacement
    for ``torch.nn.LSTM(input_size, hidden_size)`` (time-major, one layer): same call, same
    outputs, and the same parameters ``weight_ih_l0`` (4H, D), ``weight_hh_l0`` (4H, H),
    ``bias_ih_l0`` and ``bias_hh_l0`` (4H,), so ``load_state_dict`` works in both directions.

    Args:
        input_size: D.
        hidden_size: H.
        bias: whether to have the biases.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        add_recurrent_parameters(self, input_size, hidden_size, gates=4, bias=bias, suffix="_l0")

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Run the recurrence over ``x``.

        Args:
            x: the inputs x_1 … x_T, shape (T, B, D).
            state: ``(h_0, c_0)``, shape (1, B, H) each, as for ``torch.nn.LSTM``; zeros when
                ``None``.

        Returns:
            ``(output, (h_n, c_n))``: every hidden state h_1 … h_T, shape (T, B, H), and the
            final states h_T and c_T, shape (1, B, H) each.
        """
        check_input(x, self.input_size, time_major=True)
        shape = (1, x.shape[1], self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            state = (zeros, zeros)
        h0, c0 = _unpack_lstm_state(state, shape, "(1, B, H)")
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        h, c = h0[0], c0[0]
        states = []
        for x_t in x:
            h, c = lstm_step(x_t, h, c, *weights)
            states.append(h)
        return torch.stack(states), (h.unsqueeze(0), c.unsqueeze(0))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih_l0 is not None}"


class GRUCell(nn.Module):
    """One GRU step, a drop-in replacement for ``torch.nn.GRUCell`` (batched inputs).

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr),
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz),
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn)),
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}.

    This is PyTorch's form of the course's GRU, with the reset gate applied after the product
    with h_{t−1} (see the module docstring). Parameters, as in ``torch.nn.GRUCell``:
    ``weight_ih`` (3H, D), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh`` (3H,), each the
    blocks of r, z, n stacked in that order.

    Args:
        input_size: D, the size of x_t.
        hidden_size: H, the size of h_t.
        bias: whether to have the biases.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        add_recurrent_parameters(self, input_size, hidden_size, gates=3, bias=bias)

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        """h_t (B, H) from x_t (B, D) and h_{t−1} (B, H); a missing h_{t−1} is zeros."""
        check_input(x, self.input_size, time_major=False)
        shape = (x.shape[0], self.hidden_size)
        if h_prev is None:
            h_prev = x.new_zeros(shape)
        check_shape("h_prev", h_prev, shape, "(B, H)")
        return gru_step(x, h_prev, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class GRU(nn.Module):
    """A one-layer GRU over a whole sequence, a Python loop over time.

    It applies the equations of :class:`GRUCell` for t = 1 … T and is a drop-in replacement
    for ``torch.nn.GRU(input_size, hidden_size)`` (time-major, one layer): same call, same
    outputs, and the same parameters ``weight_ih_l0`` (3H, D), ``weight_hh_l0`` (3H, H),
    ``bias_ih_l0`` and ``bias_hh_l0`` (3H,), so ``load_state_dict`` works in both directions.

    Args:
        input_size: D.
        hidden_size: H.
        bias: whether to have the biases.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        add_recurrent_parameters(self, input_size, hidden_size, gates=3, bias=bias, suffix="_l0")

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the recurrence over ``x``.

        Args:
            x: the inputs x_1 … x_T, shape (T, B, D).
            h0: the initial state, shape (1, B, H) as for ``torch.nn.GRU``; zeros when ``None``.

        Returns:
            ``(output, h_n)``: every hidden state h_1 … h_T, shape (T, B, H), and the final
            state h_T, shape (1, B, H).
        """
        check_input(x, self.input_size, time_major=True)
        shape = (1, x.shape[1], self.hidden_size)
        if h0 is None:
            h0 = x.new_zeros(shape)
        check_shape("h0", h0, shape, "(1, B, H)")
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        h = h0[0]
        states = []
        for x_t in x:
            h = gru_step(x_t, h, *weights)
            states.append(h)
        output = torch.stack(states)
        return output, output[-1:]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih_l0 is not None}"


class RecurrentLM(nn.Module):
    """A gated recurrent language model: embedding → one-layer LSTM or GRU → output layer.

        e_t = E x_t,   h_t = LSTM or GRU step(e_t, state_{t−1}),   ŷ_t = softmax(U h_t + b_2).

    The model returns the logits U h_t + b_2; the softmax is in the loss or in sampling.

    Args:
        vocab_size: V.
        embedding_dim: D, the size of the word vectors e_t.
        hidden_size: H.
        cell: ``"lstm"`` or ``"gru"``.
        implementation: ``"scratch"`` for this module's :class:`LSTM` / :class:`GRU` (a Python
            loop over time) or ``"cudnn"`` for ``torch.nn.LSTM`` / ``torch.nn.GRU`` (cuDNN's fused
            kernel on a GPU). Both have the same state-dict keys, so weights saved from one load
            into the other.

    Submodules: ``embedding`` (E, V × D), ``rnn``, ``output`` (U and b_2, a V × H linear layer).
    The state is ``(h, c)``, shape (1, B, H) each, for the LSTM and h, shape (1, B, H), for the GRU.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        cell: str = "lstm",
        implementation: str = "scratch",
    ):
        super().__init__()
        if cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        self.cell = cell
        self.implementation = implementation
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        layers = {
            ("lstm", "scratch"): LSTM,
            ("lstm", "cudnn"): nn.LSTM,
            ("gru", "scratch"): GRU,
            ("gru", "cudnn"): nn.GRU,
        }
        self.rnn = layers[cell, implementation](embedding_dim, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> LSTMState | torch.Tensor:
        """The zero initial state, on the model's device unless told.

        ``(h_0, c_0)``, shape (1, B, H) each, for the LSTM; h_0, shape (1, B, H), for the GRU.
        """
        if device is None:
            device = self.output.weight.device
        zeros = torch.zeros(1, batch_size, self.hidden_size, device=device, dtype=self.output.weight.dtype)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    def forward(
        self, inputs: torch.Tensor, state: LSTMState | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, LSTMState | torch.Tensor]:
        """Logits of the next token at every position.

        Args:
            inputs: token ids x_1 … x_T, shape (T, B).
            state: the state returned by the previous chunk of the same sequences (see
                :meth:`init_state` for its form), or ``None`` to start from zeros.

        Returns:
            ``(logits, state)``: U h_t + b_2 for every t, shape (T, B, V), and the final state,
            to pass on with the next chunk.
        """
        if inputs.dim() != 2:
            raise ValueError(f"RecurrentLM expects token ids of shape (T, B), got {tuple(inputs.shape)}")
        if state is None:
            state = self.init_state(inputs.shape[1], inputs.device)
        hidden, state = self.rnn(self.embedding(inputs), state)
        return self.output(hidden), state
