"""A vanilla recurrent network and a recurrent language model in PyTorch, written from scratch.

The course writes the recurrence for one column vector as

    h_t = tanh(W_h h_{t-1} + W_e e_t + b_1),        ŷ_t = softmax(U h_t + b_2).

The modules here keep the parameter names and shapes of ``torch.nn.RNN`` (one layer), so
weights can be copied between the two with ``load_state_dict``:

==================  ===========  =================
course              shape        parameter
==================  ===========  =================
W_e                 (H, D)       ``weight_ih_l0``
W_h                 (H, H)       ``weight_hh_l0``
b_1                 (H,)         ``bias_ih_l0 + bias_hh_l0`` (torch keeps two biases)
==================  ===========  =================

A batch holds B row vectors, so in code every product is transposed:
``h_t = tanh(e_t W_eᵀ + h_{t-1} W_hᵀ + b_ih + b_hh)``. Sequences are time-major: an input
sequence has shape (T, B, D) and the hidden states (T, B, H). With ``nonlinearity="relu"``
the tanh becomes max(0, ·) (the IRNN of Le et al., 2015).

The three shapes of recurrent tasks all use the same layer:

* many-to-many (language modelling, tagging): a prediction from every h_t, ``(T, B, H)``;
* many-to-one (classifying a sequence): a prediction from the last state, see :func:`last_hidden`;
* one-to-many (generation): feed one token, predict the next, feed that back
  (``course_lib.generation``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course_lib.metrics import cross_entropy
from course_lib.models.shapes import check_input, check_shape

NONLINEARITIES = ("tanh", "relu")
CELLS = ("scratch", "cudnn")


def _activation(nonlinearity: str):
    if nonlinearity == "tanh":
        return torch.tanh
    if nonlinearity == "relu":
        return torch.relu
    raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")


def rnn_step(
    x: torch.Tensor,
    h_prev: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    nonlinearity: str = "tanh",
) -> torch.Tensor:
    """One step of the recurrence, h_t = tanh(W_h h_{t-1} + W_e e_t + b_1).

    Args:
        x: the inputs e_t of this step, shape (B, D).
        h_prev: the previous hidden state h_{t-1}, shape (B, H).
        weight_ih: W_e, shape (H, D).
        weight_hh: W_h, shape (H, H).
        bias_ih, bias_hh: the two halves of b_1, shape (H,) each, or ``None`` for no bias.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        h_t, shape (B, H).
    """
    pre_activation = x @ weight_ih.T + h_prev @ weight_hh.T
    if bias_ih is not None:
        pre_activation = pre_activation + bias_ih
    if bias_hh is not None:
        pre_activation = pre_activation + bias_hh
    return _activation(nonlinearity)(pre_activation)


def rnn_sequence(
    x: torch.Tensor,
    h0: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    nonlinearity: str = "tanh",
) -> torch.Tensor:
    """Apply :func:`rnn_step` for t = 1 … T, carrying the hidden state from step to step.

    Args:
        x: the input sequence e_1 … e_T, shape (T, B, D).
        h0: the initial hidden state, shape (B, H).
        weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity: as in :func:`rnn_step`.

    Returns:
        the hidden states h_1 … h_T, shape (T, B, H); the last one is the final state.
    """
    states = []
    h = h0
    for x_t in x:
        h = rnn_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)
        states.append(h)
    return torch.stack(states)


def add_recurrent_parameters(
    module: nn.Module, input_size: int, hidden_size: int, gates: int = 1, bias: bool = True, suffix: str = ""
) -> None:
    """Register torch.nn's recurrent parameters on ``module`` and initialise them as torch does.

    ``weight_ih{suffix}`` (G·H, D), ``weight_hh{suffix}`` (G·H, H), ``bias_ih{suffix}`` and
    ``bias_hh{suffix}`` (G·H,) (``None`` without bias), with G = 1 (RNN), 3 (GRU) or 4 (LSTM)
    stacked gates; every entry ~ U(−1/√H, 1/√H).
    """
    rows = gates * hidden_size
    module.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(rows, input_size)))
    module.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(rows, hidden_size)))
    for name in ("bias_ih", "bias_hh"):
        module.register_parameter(f"{name}{suffix}", nn.Parameter(torch.empty(rows)) if bias else None)
    bound = 1.0 / math.sqrt(hidden_size)
    for parameter in module.parameters():
        nn.init.uniform_(parameter, -bound, bound)


class RNNCell(nn.Module):
    """One step of a vanilla RNN: h_t = tanh(W_h h_{t-1} + W_e e_t + b_1).

    The parameters are named and shaped like those of ``torch.nn.RNNCell``: ``weight_ih``
    (H, D) = W_e, ``weight_hh`` (H, H) = W_h, ``bias_ih`` and ``bias_hh`` (H,) with
    b_1 = bias_ih + bias_hh.

    Args:
        input_size: D, the size of e_t.
        hidden_size: H, the size of h_t.
        bias: whether to have the biases.
        nonlinearity: ``"tanh"`` or ``"relu"``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__()
        _activation(nonlinearity)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        add_recurrent_parameters(self, input_size, hidden_size, bias=bias)

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        """h_t (B, H) from e_t (B, D) and h_{t-1} (B, H); a missing h_{t-1} is zeros."""
        check_input(x, self.input_size, time_major=False)
        shape = (x.shape[0], self.hidden_size)
        if h_prev is None:
            h_prev = x.new_zeros(shape)
        check_shape("h_prev", h_prev, shape, "(B, H)")
        return rnn_step(
            x, h_prev, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity
        )

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class RNN(nn.Module):
    """A one-layer vanilla RNN over a whole sequence, a Python loop over time.

    h_t = tanh(W_h h_{t-1} + W_e e_t + b_1) for t = 1 … T. It is a drop-in replacement for
    ``torch.nn.RNN(input_size, hidden_size, nonlinearity=...)`` (time-major, one layer):
    same call, same outputs, and the same parameter names and shapes ``weight_ih_l0`` (H, D),
    ``weight_hh_l0`` (H, H), ``bias_ih_l0`` and ``bias_hh_l0`` (H,), so
    ``load_state_dict`` works in both directions.

    Args:
        input_size: D.
        hidden_size: H.
        bias: whether to have the biases.
        nonlinearity: ``"tanh"`` or ``"relu"``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__()
        _activation(nonlinearity)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        add_recurrent_parameters(self, input_size, hidden_size, bias=bias, suffix="_l0")

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the recurrence over ``x``.

        Args:
            x: the inputs e_1 … e_T, shape (T, B, D).
            h0: the initial state, shape (1, B, H) as for ``torch.nn.RNN``; zeros when ``None``.

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
        output = rnn_sequence(x, h0[0], *weights, self.nonlinearity)
        return output, output[-1:]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


def last_hidden(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The last real hidden state of each sequence of a padded batch (for many-to-one tasks).

    Sequence b has ``lengths[b]`` real steps, then padding; its last state is
    ``output[lengths[b] - 1, b]``. (Without padding this is simply ``output[-1]``.)

    Args:
        output: hidden states, shape (T, B, H).
        lengths: the number of real steps of each sequence, 1 ≤ length ≤ T, shape (B,).

    Returns:
        shape (B, H).
    """
    lengths = torch.as_tensor(lengths, device=output.device)
    if lengths.shape != output.shape[1:2]:
        raise ValueError(f"need one length per sequence ({output.shape[1]}), got {tuple(lengths.shape)}")
    if lengths.min() < 1 or lengths.max() > output.shape[0]:
        raise ValueError(f"lengths must lie between 1 and T = {output.shape[0]}, got {lengths.tolist()}")
    return output[lengths - 1, torch.arange(output.shape[1], device=output.device)]


class RNNLM(nn.Module):
    """A recurrent language model: embedding → one-layer RNN → output layer.

        e_t = E x_t,   h_t = tanh(W_h h_{t-1} + W_e e_t + b_1),   ŷ_t = softmax(U h_t + b_2).

    The model returns the logits U h_t + b_2; the softmax is in the loss
    (:func:`teacher_forcing_loss`) or in sampling (``course_lib.generation``).

    Args:
        vocab_size: V.
        embedding_dim: D, the size of the word vectors e_t.
        hidden_size: H.
        cell: ``"scratch"`` for this module's :class:`RNN` (a Python loop over time) or
            ``"cudnn"`` for ``torch.nn.RNN`` (cuDNN's fused kernel on a GPU). Both have the same
            parameter names, so a state dict saved from one loads into the other.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Submodules: ``embedding`` (E, V × D), ``rnn``, ``output`` (U and b_2, a V × H linear layer).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        cell: str = "scratch",
        nonlinearity: str = "tanh",
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        if cell == "scratch":
            self.rnn = RNN(embedding_dim, hidden_size, nonlinearity=nonlinearity)
        else:
            self.rnn = nn.RNN(embedding_dim, hidden_size, nonlinearity=nonlinearity)
        self.output = nn.Linear(hidden_size, vocab_size)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The initial state h_0 = 0, shape (1, B, H), on the model's device unless told."""
        if device is None:
            device = self.output.weight.device
        return torch.zeros(1, batch_size, self.hidden_size, device=device, dtype=self.output.weight.dtype)

    def forward(
        self, inputs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of the next token at every position.

        Args:
            inputs: token ids x_1 … x_T, shape (T, B).
            state: h_0, shape (1, B, H): the state returned by the previous chunk of the same
                sequences, or ``None`` to start from zeros.

        Returns:
            ``(logits, state)``: U h_t + b_2 for every t, shape (T, B, V), and h_T, shape (1, B, H),
            to pass on with the next chunk.
        """
        if inputs.dim() != 2:
            raise ValueError(f"RNNLM expects token ids of shape (T, B), got {tuple(inputs.shape)}")
        if state is None:
            state = self.init_state(inputs.shape[1], inputs.device)
        hidden, state = self.rnn(self.embedding(inputs), state)
        return self.output(hidden), state


def teacher_forcing_loss(
    model: nn.Module, sequence: torch.Tensor, ignore_index: int | None = None
) -> torch.Tensor:
    """The language-modelling loss with teacher forcing, in nats per predicted token.

    The model reads the true tokens x_1 … x_T (not its own predictions) and at every step
    predicts the next one, so the inputs are ``sequence[:-1]`` and the targets
    ``sequence[1:]``:

        J = −(1/(T·B)) Σ_t Σ_b ln ŷ_t[x_{t+1}],   ŷ_t = softmax(logits_t).

    Args:
        model: a course language model, ``model(inputs (T, B)) -> (logits (T, B, V), state)``;
            it starts from its zero state.
        sequence: token ids, shape (T + 1, B).
        ignore_index: a target id (usually ``<pad>``) left out of the average.

    Returns:
        the mean cross-entropy, a scalar tensor.
    """
    if sequence.dim() != 2 or sequence.shape[0] < 2:
        raise ValueError(f"need token ids of shape (T + 1, B) with T ≥ 1, got {tuple(sequence.shape)}")
    logits, _ = model(sequence[:-1])
    return cross_entropy(logits, sequence[1:], ignore_index=ignore_index)
