"""An encoder–decoder (sequence-to-sequence) model with attention and input feeding.

**Encoder.** The source x_1 … x_N is embedded and read by a one-layer bidirectional LSTM
with H_e units per direction (H_e = H unless ``encoder_size`` says otherwise):

    h_i = [h→_i; h←_i],  shape (S, B, 2H_e)  (S = the longest N of the batch; zero at padding).

**Decoder.** An LSTM cell with state s_t (and cell c_t), both (B, H), started from the
encoder's summary of the whole source, its final states [h→_N; h←_1]:

    s_0 = tanh(W_s [h→_N; h←_1] + b_s),     c_0 = tanh(W_c [c→_N; c←_1] + b_c).

At step t it reads the previous target token y_{t−1} (``<s>`` at t = 1) and its own previous
output vector o_{t−1} (input feeding; o_0 = 0), attends to the encoder states and predicts:

    (s_t, c_t) = LSTMCell([E y_{t−1}; o_{t−1}], (s_{t−1}, c_{t−1}))
    (a_t, α^t) = Attention(s_t, h_1 … h_N)            α^t over the real source positions
    o_t        = tanh(W_u [a_t; s_t])
    logits_t   = W_out dropout(o_t) + b_out,          p(y_t | y_<t, x) = softmax(logits_t).

Input feeding lets the decoder know what it attended to at the step before. Without attention
(``attention=None``) o_t = tanh(W_u s_t): the source reaches the decoder only through s_0, a
vector of fixed size whatever the length of the source (the bottleneck).

Training uses teacher forcing (:meth:`Seq2Seq.forward`): the inputs are the true target
``<s> y_1 … y_{T−1}``, the targets ``y_1 … y_T`` (ending with ``</s>``). Decoding feeds the
model's own predictions back (:meth:`Seq2Seq.step_function` with
:mod:`course_lib.decoding`). Both run :meth:`Seq2Seq.decoder_step`, the only place where the
decoder's step is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_lib.data.padding import length_mask
from course_lib.decoding import State, StepFunction, greedy_decode
from course_lib.models.attention import SCORE_FUNCTIONS, Attention
from course_lib.models.stacked import last_layer_state
from course_lib.models.tagger import make_encoder, run_encoder


@dataclass
class Memory:
    """What the decoder needs from the encoder, computed once per batch.

    Attributes:
        states: the encoder states h_1 … h_S, shape (S, B, 2H_e), zero at padded positions.
        mask: True at the real source positions, shape (S, B).
        initial: the decoder's initial state (s_0, c_0, o_0), shape (B, H) each.
        keys: the attention keys ``Attention.precompute(states)`` (``None`` without attention).
    """

    states: torch.Tensor
    mask: torch.Tensor
    initial: State
    keys: torch.Tensor | None = None


class Seq2Seq(nn.Module):
    """A bidirectional LSTM encoder and an LSTM decoder with attention and input feeding.

    Args:
        src_vocab_size: V_src.
        tgt_vocab_size: V.
        embedding_size: E, for source and target embeddings.
        hidden_size: H, the size of the decoder state.
        attention: one of ``SCORE_FUNCTIONS`` (scores of s_t against h_i), or ``None`` for the
            model without attention.
        encoder_size: H_e, the size of each encoder direction (``None``: H, or H/2 with dot
            scores, which need h_i = [h→_i; h←_i] of the size of s_t: 2H_e = H).
        attention_size: K or A of the reduced-rank or additive score (``None``: H).
        dropout: dropout on o_t before the output layer.
        implementation: the encoder, ``"cudnn"`` (torch.nn.LSTM on packed sequences) or
            ``"scratch"`` (:class:`~course_lib.models.stacked.StackedRNN`).

    Submodules: ``src_embedding`` (V_src × E), ``encoder``, ``init_hidden`` (W_s, b_s) and
    ``init_cell`` (W_c, b_c) (H × 2H_e), ``tgt_embedding`` (V × E), ``decoder_cell``
    (``nn.LSTMCell`` of input size E + H), ``attention`` (:class:`Attention` with query size
    H and key size 2H_e, or ``None``), ``combine`` (W_u, H × (2H_e + H) with attention,
    H × H without; no bias), ``dropout``, ``output`` (W_out, b_out: V × H).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embedding_size: int = 64,
        hidden_size: int = 128,
        attention: str | None = "additive",
        attention_size: int | None = None,
        dropout: float = 0.0,
        implementation: str = "cudnn",
        encoder_size: int | None = None,
    ):
        super().__init__()
        if attention is not None and attention not in SCORE_FUNCTIONS:
            raise ValueError(f"attention must be None or one of {SCORE_FUNCTIONS}, got {attention!r}")
        if encoder_size is None:
            encoder_size = hidden_size // 2 if attention == "dot" else hidden_size
        if attention == "dot" and 2 * encoder_size != hidden_size:
            raise ValueError(
                f"dot scores need h_i (2 × encoder_size = {2 * encoder_size}) and s_t (hidden_size = "
                f"{hidden_size}) of one size: use an even hidden_size and encoder_size = hidden_size / 2"
            )
        self.hidden_size = hidden_size
        key_size = 2 * encoder_size
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_size)
        self.encoder = make_encoder(embedding_size, encoder_size, cell="lstm", implementation=implementation)
        self.init_hidden = nn.Linear(key_size, hidden_size)
        self.init_cell = nn.Linear(key_size, hidden_size)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_size)
        self.decoder_cell = nn.LSTMCell(embedding_size + hidden_size, hidden_size)
        self.attention = (
            None if attention is None else Attention(attention, hidden_size, key_size, attention_size)
        )
        combined_size = hidden_size if attention is None else key_size + hidden_size
        self.combine = nn.Linear(combined_size, hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
        """Run the encoder on source ids (S, B) with lengths (B,): states, mask, s_0 and attention keys."""
        if src.dim() != 2:
            raise ValueError(f"expected source ids of shape (S, B), got {tuple(src.shape)}")
        src_lengths = torch.as_tensor(src_lengths, device=src.device)
        states, (h_n, c_n) = run_encoder(self.encoder, self.src_embedding(src), src_lengths)
        s_0 = torch.tanh(self.init_hidden(last_layer_state(h_n, 2)))
        c_0 = torch.tanh(self.init_cell(last_layer_state(c_n, 2)))
        initial = (s_0, c_0, torch.zeros_like(s_0))
        keys = None if self.attention is None else self.attention.precompute(states)
        return Memory(states, length_mask(src_lengths, src.shape[0]), initial, keys)

    def decoder_step(
        self, y_prev: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """One decoder step.

            (s_t, c_t) = LSTMCell([E y_{t−1}; o_{t−1}], (s_{t−1}, c_{t−1})),
            (a_t, α^t) = Attention(s_t, h, mask),   o_t = tanh(W_u [a_t; s_t])   (tanh(W_u s_t) without),
            logits_t = W_out dropout(o_t) + b_out.

        Args:
            y_prev: the previous tokens y_{t−1}, shape (N,).
            state: (s_{t−1}, c_{t−1}, o_{t−1}), shape (N, H) each.
            memory: from :meth:`encode`, with batch size N, or 1 (N beams of one source).

        Returns:
            ``(logits_t (N, V), (s_t, c_t, o_t), α^t (S, N) or None without attention)``.
        """
        s, c, o = state
        s, c = self.decoder_cell(torch.cat([self.tgt_embedding(y_prev), o], dim=-1), (s, c))
        if self.attention is None:
            alpha = None
            o = torch.tanh(self.combine(s))
        else:
            a, alpha = self.attention(s, memory.states, memory.mask, keys=memory.keys)
            o = torch.tanh(self.combine(torch.cat([a, s], dim=-1)))
        return self.output(self.dropout(o)), (s, c, o), alpha

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (T, B, V) of y_1 … y_T from the inputs ``<s> y_1 … y_{T−1}`` (T, B).

        Args:
            src: source ids, shape (S, B), padded.
            src_lengths: the source lengths, shape (B,).
            tgt_in: ``<s>`` followed by the target without its last token, shape (T, B).
        """
        if tgt_in.dim() != 2 or tgt_in.shape[1] != src.shape[1]:
            raise ValueError(
                f"expected target inputs (T, B) with B = {src.shape[1]}, got {tuple(tgt_in.shape)}"
            )
        memory = self.encode(src, src_lengths)
        state = memory.initial
        logits = []
        for y_prev in tgt_in:
            step_logits, state, _ = self.decoder_step(y_prev, state, memory)
            logits.append(step_logits)
        return torch.stack(logits)

    def step_function(
        self, src: torch.Tensor, src_lengths: torch.Tensor, attention_log: list | None = None
    ) -> tuple[StepFunction, State]:
        """A step function for :mod:`course_lib.decoding` and its initial state, for these sources.

        The step returns log-probabilities (N, V) and runs in the model's current mode (call
        ``model.eval()`` first to switch dropout off). When ``attention_log`` is a list, every
        step appends its α^t (S, N) to it (nothing without attention).
        """
        memory = self.encode(src, src_lengths)

        def step(y_prev: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
            logits, state, alpha = self.decoder_step(y_prev, state, memory)
            if attention_log is not None and alpha is not None:
                attention_log.append(alpha)
            return logits.log_softmax(-1), state

        return step, memory.initial

    @torch.no_grad()
    def greedy_translate(
        self, src: torch.Tensor, src_lengths: torch.Tensor, bos_id: int, eos_id: int, max_len: int
    ) -> tuple[list[list[int]], list[torch.Tensor]]:
        """Greedy outputs of a batch of sources (in eval mode) and their attention matrices.

        Returns:
            the output ids of each source (without ``<s>`` and ``</s>``), and for each its
            attention matrix, shape (len_out, len_src): row t is α^t over the real source
            positions at the step that produced output token t (an empty tensor without attention).
        """
        was_training = self.training
        self.eval()
        attention_log: list[torch.Tensor] = []
        try:
            step, state = self.step_function(src, src_lengths, attention_log)
            outputs = greedy_decode(step, state, bos_id, eos_id, max_len)
        finally:
            self.train(was_training)
        lengths = torch.as_tensor(src_lengths).tolist()
        matrices = []
        for b, output in enumerate(outputs):
            if self.attention is None:
                matrices.append(torch.empty(0, 0))
            else:
                rows = [alpha[: lengths[b], b] for alpha in attention_log[: len(output)]]
                matrices.append(torch.stack(rows) if rows else torch.zeros(0, lengths[b]))
        return outputs, matrices
