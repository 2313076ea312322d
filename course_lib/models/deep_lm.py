"""A deep recurrent language model: stacked layers, dropout between them, tied input and output words.

The models the course trains to convergence on real corpora (``course_lib.pretrained``) are
the lectures' recurrent LM with the three additions of Zaremba et al. (2014) and Press & Wolf
(2017):

    e_t = E x_t                                        embedding, (T, B, D)
    h_t^(1) = layer_1(drop(e_t), state^(1)_{t−1})     first recurrent layer, (T, B, H)
    h_t^(l) = layer_l(drop(h_t^(l−1)), state^(l)_{t−1})   l = 2 … L
    ŷ_t = softmax(U drop(h_t^(L)) + b)                 output, (T, B, V)

where ``drop`` is dropout (active in training only; Zaremba et al. put it on the connections
between layers and never on the recurrent ones) and, with tied weights, U = E: the same
matrix maps a word to its vector on the way in and scores it on the way out, which halves the
parameters of a word model and lowers its perplexity (it needs D = H).

Each layer is one of the course's layers, whose equivalence to ``torch.nn`` is tested in their
own modules: ``"rnn"`` the from-scratch :class:`~course_lib.models.rnn.RNN`,
h_t = tanh(W_hh h_{t−1} + W_ih x_t + b), which is faster on a CPU than ``torch.nn.RNN``;
``"lstm"`` and ``"gru"`` ``torch.nn.LSTM`` / ``torch.nn.GRU`` of one layer (cuDNN on a GPU),
with the same parameters as :class:`~course_lib.models.lstm.LSTM` / :class:`~course_lib.models.lstm.GRU`.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.models.rnn import RNN

DEEP_CELLS = ("rnn", "lstm", "gru")
LayerState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _layer(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    if cell == "rnn":
        return RNN(input_size, hidden_size)
    return (nn.LSTM if cell == "lstm" else nn.GRU)(input_size, hidden_size)


class DeepRecurrentLM(nn.Module):
    """L recurrent layers between an embedding and an output layer, with dropout and optional tying.

    Args:
        vocab_size: V.
        embedding_dim: D.
        hidden_size: H, the size of every layer's state.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        num_layers: L ≥ 1.
        dropout: the probability of zeroing an activation between layers (0 = none).
        tie_weights: use the embedding matrix E as the output matrix U (needs D = H).
        init_range: every parameter starts uniform in [−init_range, init_range]
            (Zaremba et al. use 0.1); ``None`` keeps PyTorch's initialisation.

    Submodules: ``embedding`` (V × D), ``layers`` (a list of L one-layer modules), ``output``
    (a V × H linear layer whose weight is ``embedding.weight`` when tied). The state is a tuple
    of L layer states: ``(h, c)``, shape (1, B, H) each, for an LSTM layer; h, (1, B, H), else.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        cell: str = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        init_range: float | None = None,
    ):
        super().__init__()
        if cell not in DEEP_CELLS:
            raise ValueError(f"cell must be one of {DEEP_CELLS}, got {cell!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if tie_weights and embedding_dim != hidden_size:
            raise ValueError(
                f"tied weights need embedding_dim == hidden_size, got {embedding_dim} and {hidden_size}"
            )
        self.cell = cell
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.layers = nn.ModuleList(
            _layer(cell, embedding_dim if layer == 0 else hidden_size, hidden_size)
            for layer in range(num_layers)
        )
        self.drop = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, vocab_size)
        if init_range is not None:
            for parameter in self.parameters():
                nn.init.uniform_(parameter, -init_range, init_range)
        if tie_weights:
            self.output.weight = self.embedding.weight

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> tuple[LayerState, ...]:
        """The zero state of every layer, on the model's device unless told."""
        device = device if device is not None else self.output.weight.device
        dtype = self.output.weight.dtype

        def zeros() -> torch.Tensor:
            return torch.zeros(1, batch_size, self.hidden_size, device=device, dtype=dtype)

        return tuple((zeros(), zeros()) if self.cell == "lstm" else zeros() for _ in self.layers)

    def forward(
        self, inputs: torch.Tensor, state: tuple[LayerState, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[LayerState, ...]]:
        """Logits of the next token at every position.

        Args:
            inputs: token ids x_1 … x_T, shape (T, B).
            state: the state returned by the previous chunk (see :meth:`init_state`), or ``None``.

        Returns:
            ``(logits, state)``: shape (T, B, V), and the final state of every layer.
        """
        if inputs.dim() != 2:
            raise ValueError(f"DeepRecurrentLM expects token ids of shape (T, B), got {tuple(inputs.shape)}")
        if state is None:
            state = self.init_state(inputs.shape[1], inputs.device)
        if len(state) != len(self.layers):
            raise ValueError(
                f"the state must hold one entry per layer ({len(self.layers)}), got {len(state)}"
            )
        hidden, new_state = self.embedding(inputs), []
        for layer, layer_state in zip(self.layers, state, strict=True):
            hidden, layer_state = layer(self.drop(hidden), layer_state)
            new_state.append(layer_state)
        return self.output(self.drop(hidden)), tuple(new_state)
