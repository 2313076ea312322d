"""Faster one-layer LSTM and GRU layers: the input projection of all time steps in one product.

The from-scratch layers of :mod:`course_lib.models.lstm` compute, at every step t,

    a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh          shape (B, 4H) for the LSTM, (B, 3H) for the GRU

with two matrix products. Only the second depends on h_{t−1}; the first depends on the inputs
alone, so for all T steps at once it is one large product before the loop:

    A = X W_ihᵀ + (b_ih + b_hh)                          X (T·B, D) → A (T·B, G·H)

and each step is left with one (B, H) × (H, G·H) product, a_t = A_t + h_{t−1} W_hhᵀ, followed by
the element-wise gate arithmetic. One large product uses the hardware far better than T small
ones, and the loop does half the launches. (For the GRU the two biases stay apart, because the
reset gate multiplies only the state part of the candidate, r_t ⊙ (W_hn h_{t−1} + b_hn).)

The element-wise part of a step (a handful of sigmoids, tanh, products and sums) is several
separate kernels in eager PyTorch. With ``compile_step=True`` it is handed to ``torch.compile``,
which can fuse it into one; where compiling is unavailable or fails, the layer warns once and
runs the same function uncompiled, with the same results.

:class:`FusedLSTM` and :class:`FusedGRU` are time-major (inputs (T, B, D)), have the parameter
names and shapes of one-layer ``torch.nn.LSTM`` / ``torch.nn.GRU`` (``weight_ih_l0`` (G·H, D),
``weight_hh_l0`` (G·H, H), ``bias_ih_l0``, ``bias_hh_l0`` (G·H,), gates in PyTorch's order
i, f, g, o and r, z, n), so ``load_state_dict`` works in both directions with those and with
:class:`~course_lib.models.lstm.LSTM` / :class:`~course_lib.models.lstm.GRU`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from course_lib.models.lstm import LSTMState
from course_lib.models.rnn import add_recurrent_parameters
from course_lib.models.shapes import check_input, check_shape

StepFunction = Callable[..., object]


def lstm_pointwise(gates: torch.Tensor, c_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The element-wise part of an LSTM step, from the pre-activations a_t of all four gates.

        i, f, g, o = a_t cut into four blocks of H columns
        c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g),    h_t = σ(o) ⊙ tanh(c_t)

    Args:
        gates: a_t = A_t + h_{t−1} W_hhᵀ, shape (B, 4H).
        c_prev: c_{t−1}, shape (B, H).

    Returns:
        ``(h_t, c_t)``, shape (B, H) each.
    """
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_pointwise(from_input: torch.Tensor, from_state: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
    """The element-wise part of a GRU step (PyTorch's form).

        r = σ(a_r + s_r),   z = σ(a_z + s_z),   n = tanh(a_n + r ⊙ s_n),
        h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

    Args:
        from_input: A_t = W_ih x_t + b_ih, blocks (a_r, a_z, a_n), shape (B, 3H).
        from_state: W_hh h_{t−1} + b_hh, blocks (s_r, s_z, s_n), shape (B, 3H).
        h_prev: h_{t−1}, shape (B, H).

    Returns:
        h_t, shape (B, H).
    """
    input_r, input_z, input_n = from_input.chunk(3, dim=1)
    state_r, state_z, state_n = from_state.chunk(3, dim=1)
    r = torch.sigmoid(input_r + state_r)
    z = torch.sigmoid(input_z + state_z)
    n = torch.tanh(input_n + r * state_n)
    return n + z * (h_prev - n)


class CompiledOrEager:
    """A function run through ``torch.compile``, falling back to the plain function if compiling fails.

    The first call that fails to compile (no compiler, an unsupported platform, a PyTorch
    without ``torch.compile``) issues one warning, and every later call runs ``function`` as
    it is; ``compiled`` tells which is in use. An error of the function itself is raised
    again by the uncompiled call. The first call compiles for its shapes; the first call with
    other shapes compiles once more, for any shapes (``torch.compile``'s automatic dynamic shapes).

    Args:
        function: the function to compile.
        backend: the ``torch.compile`` backend (``"inductor"`` generates fused kernels;
            ``"eager"`` only traces, which is useful to test the mechanism quickly).
    """

    def __init__(self, function: StepFunction, backend: str = "inductor"):
        self.function = function
        self.backend = backend
        self._compiled = None
        self.compiled = hasattr(torch, "compile")
        if not self.compiled:
            warnings.warn("this PyTorch has no torch.compile: the step runs uncompiled", stacklevel=2)

    def __call__(self, *args):
        if not self.compiled:
            return self.function(*args)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.function, backend=self.backend)
            return self._compiled(*args)
        except Exception as error:  # any failure to compile means: run uncompiled
            self.compiled = False
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
                "the step runs uncompiled",
                stacklevel=2,
            )
            return self.function(*args)


def _step(function: StepFunction, compile_step: bool, backend: str) -> StepFunction:
    return CompiledOrEager(function, backend) if compile_step else function


class FusedRecurrent(nn.Module):
    """What :class:`FusedLSTM` and :class:`FusedGRU` share: torch.nn's parameters and a point-wise step.

    A subclass sets ``gates`` (4 for the LSTM, 3 for the GRU) and ``pointwise_function``,
    the element-wise part of a step after the products.

    Args:
        input_size: D.
        hidden_size: H.
        bias: whether to have the biases.
        compile_step: run the element-wise part of each step through ``torch.compile``.
        compile_backend: the backend for ``torch.compile``.
    """

    gates: int
    pointwise_function: StepFunction

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        compile_step: bool = False,
        compile_backend: str = "inductor",
    ):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        add_recurrent_parameters(self, input_size, hidden_size, gates=self.gates, bias=bias, suffix="_l0")
        self.pointwise = _step(self.pointwise_function, compile_step, compile_backend)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih_l0 is not None}"


class FusedLSTM(FusedRecurrent):
    """A one-layer LSTM, its input projection done for all steps in one matrix product.

        A = X W_ihᵀ + (b_ih + b_hh)            (T·B, 4H), before the loop
        a_t = A_t + h_{t−1} W_hhᵀ             (B, 4H), one product per step
        c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g),   h_t = σ(o) ⊙ tanh(c_t)

    Same call, outputs and parameters as ``torch.nn.LSTM(input_size, hidden_size)``.

    The constructor's arguments are those of :class:`FusedRecurrent`.
    """

    gates = 4
    pointwise_function = staticmethod(lstm_pointwise)

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Run the recurrence over ``x``.

        Args:
            x: x_1 … x_T, shape (T, B, D).
            state: ``(h_0, c_0)``, shape (1, B, H) each; zeros when ``None``.

        Returns:
            ``(output, (h_n, c_n))``: h_1 … h_T, shape (T, B, H), and h_T, c_T, shape (1, B, H) each.
        """
        check_input(x, self.input_size, time_major=True)
        steps, batch = x.shape[0], x.shape[1]
        shape = (1, batch, self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            state = (zeros, zeros)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"an LSTM state must be a pair (h, c), got {type(state).__name__}")
        check_shape("h", state[0], shape, "(1, B, H)")
        check_shape("c", state[1], shape, "(1, B, H)")
        projected = x.reshape(steps * batch, -1) @ self.weight_ih_l0.T
        if self.bias_ih_l0 is not None:
            projected = projected + (self.bias_ih_l0 + self.bias_hh_l0)
        projected = projected.view(steps, batch, -1)
        h, c = state[0][0], state[1][0]
        outputs = []
        for t in range(steps):
            h, c = self.pointwise(torch.addmm(projected[t], h, self.weight_hh_l0.T), c)
            outputs.append(h)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))



class FusedGRU(FusedRecurrent):
    """A one-layer GRU, its input projection done for all steps in one matrix product.

        A = X W_ihᵀ + b_ih                     (T·B, 3H), before the loop
        S_t = h_{t−1} W_hhᵀ + b_hh             (B, 3H), one product per step
        r = σ(a_r + s_r),  z = σ(a_z + s_z),  n = tanh(a_n + r ⊙ s_n),  h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

    Same call, outputs and parameters as ``torch.nn.GRU(input_size, hidden_size)``.

    The constructor's arguments are those of :class:`FusedRecurrent`.
    """

    gates = 3
    pointwise_function = staticmethod(gru_pointwise)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the recurrence over ``x``.

        Args:
            x: x_1 … x_T, shape (T, B, D).
            h0: the initial state, shape (1, B, H); zeros when ``None``.

        Returns:
            ``(output, h_n)``: h_1 … h_T, shape (T, B, H), and h_T, shape (1, B, H).
        """
        check_input(x, self.input_size, time_major=True)
        steps, batch = x.shape[0], x.shape[1]
        shape = (1, batch, self.hidden_size)
        if h0 is None:
            h0 = x.new_zeros(shape)
        check_shape("h0", h0, shape, "(1, B, H)")
        projected = x.reshape(steps * batch, -1) @ self.weight_ih_l0.T
        if self.bias_ih_l0 is not None:
            projected = projected + self.bias_ih_l0
        projected = projected.view(steps, batch, -1)
        h = h0[0]
        outputs = []
        for t in range(steps):
            from_state = h @ self.weight_hh_l0.T
            if self.bias_hh_l0 is not None:
                from_state = from_state + self.bias_hh_l0
            h = self.pointwise(projected[t], from_state, h)
            outputs.append(h)
        output = torch.stack(outputs)
        return output, output[-1:]
