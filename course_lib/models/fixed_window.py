"""The fixed-window neural language model of Bengio et al. (2003).

Like an n-gram model it predicts the next word from the n − 1 words before it, but it
maps each word to a learned vector (an *embedding*) and computes the distribution with a
small neural network, so histories that were never seen still get sensible predictions:

    e = [E x_{t-n+1}; …; E x_{t-1}]     the n − 1 embeddings, concatenated   (B, (n−1)·d)
    h = tanh(W e + b_1)                 hidden layer                          (B, H)
    ŷ = softmax(U h + b_2)              distribution of the next word         (B, V)

with E of shape (V, d), W (H, (n−1)·d), U (V, H). The number of parameters grows
linearly with the window size (through W), where an n-gram table grows like V^{n−1}.

>>> import torch
>>> model = FixedWindowLM(vocab_size=10, context_size=3, embedding_dim=4, hidden_dim=8)
>>> model.logits_from_contexts(torch.tensor([[1, 2, 3], [4, 5, 6]])).shape
torch.Size([2, 10])
>>> logits, state = model(torch.tensor([[1], [2], [3], [4], [5]]))   # (T, B) = (5, 1)
>>> logits.shape, state.view(-1).tolist()
(torch.Size([5, 1, 10]), [3, 4, 5])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.vocab import Vocabulary


def _check_token_ids(name: str, tokens: torch.Tensor, dims: int) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != dims:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"{name} must be a {dims}-dimensional tensor of token ids, got {shape}")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")


def context_windows(
    stream: torch.Tensor, context_size: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every token of a stream with the ``context_size`` = n − 1 tokens before it.

    Row t of ``contexts`` is x_{t−n+1} … x_{t−1} and ``targets[t]`` is x_t; positions
    before the start of the stream are filled with ``pad_id``, so all N tokens are predicted.

    Args:
        stream: token ids x_0 … x_{N−1}, shape (N,).
        context_size: n − 1, at least 1.
        pad_id: the id that fills the window before the first token (``<pad>`` or ``<s>``).

    Returns:
        contexts of shape (N, n − 1) and targets of shape (N,) (the stream itself).

    >>> context_windows(torch.tensor([7, 8, 9]), 2, pad_id=0)[0].tolist()
    [[0, 0], [0, 7], [7, 8]]
    """
    _check_token_ids("stream", stream, 1)
    if context_size < 1:
        raise ValueError(f"context_size (n − 1) must be at least 1, got {context_size}")
    padded = torch.cat([stream.new_full((context_size,), pad_id), stream])
    contexts = padded.unfold(0, context_size, 1)[: len(stream)]
    return contexts.contiguous(), stream.clone()


class FixedWindowLM(nn.Module):
    """Bengio et al.'s model: concatenated embeddings, a tanh hidden layer, a softmax output.

    Args:
        vocab_size: V.
        context_size: n − 1, the number of previous tokens the model sees.
        embedding_dim: d.
        hidden_dim: H.
        pad_id: the token id that fills the window before the start of a stream, when
            :meth:`forward` gets no state (the ``<pad>`` id 0 of the course vocabularies,
            or the ``<s>`` id).

    The weights of the equations are ``embedding.weight`` (E), ``hidden.weight`` and
    ``hidden.bias`` (W, b_1), ``output.weight`` and ``output.bias`` (U, b_2); see
    :meth:`parameters_by_symbol`.
    """

    def __init__(
        self, vocab_size: int, context_size: int, embedding_dim: int, hidden_dim: int, pad_id: int = 0
    ):
        super().__init__()
        for name, value in [
            ("vocab_size", vocab_size),
            ("context_size", context_size),
            ("embedding_dim", embedding_dim),
            ("hidden_dim", hidden_dim),
        ]:
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id must be a token id in [0, {vocab_size}), got {pad_id}")
        self.vocab_size = vocab_size
        self.context_size = context_size
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.hidden = nn.Linear(context_size * embedding_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim, vocab_size)

    def parameters_by_symbol(self) -> dict[str, nn.Parameter]:
        """The parameters under their names in the equations: E, W, b1, U, b2 (shared, not copies)."""
        return {
            "E": self.embedding.weight,
            "W": self.hidden.weight,
            "b1": self.hidden.bias,
            "U": self.output.weight,
            "b2": self.output.bias,
        }

    def embed(self, contexts: torch.Tensor) -> torch.Tensor:
        """The window's embeddings concatenated, oldest first: e = [E x_{t−n+1}; …; E x_{t−1}].

        Args:
            contexts: token ids x_{t−n+1} … x_{t−1}, shape (B, n − 1).

        Returns:
            e, shape (B, (n − 1)·d).
        """
        _check_token_ids("contexts", contexts, 2)
        if contexts.shape[1] != self.context_size:
            raise ValueError(
                f"contexts must have shape (B, {self.context_size}) for a model of context_size "
                f"{self.context_size}, got {tuple(contexts.shape)}"
            )
        return self.embedding(contexts).flatten(start_dim=1)

    def logits_from_contexts(self, contexts: torch.Tensor) -> torch.Tensor:
        """Scores of the next token, U tanh(W e + b_1) + b_2, for a batch of windows.

        Args:
            contexts: token ids x_{t−n+1} … x_{t−1}, shape (B, n − 1), oldest first.

        Returns:
            logits of shape (B, V); softmax over the last dimension gives p(x_t | window).
        """
        h = torch.tanh(self.hidden(self.embed(contexts)))
        return self.output(h)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The state before a stream starts: a window of ``pad_id``, shape (n − 1, B)."""
        return torch.full((self.context_size, batch_size), self.pad_id, dtype=torch.long, device=device)

    def forward(
        self, inputs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The course language-model interface: predict the token after each input token.

        ``logits[t, b]`` scores x_{t+1} given the window of the n − 1 tokens ending with
        ``inputs[t, b]``. The state is the last n − 1 tokens read, so feeding a stream in
        consecutive chunks, passing each chunk's state to the next, gives exactly the
        logits of feeding it at once. Without a state the window starts filled with ``pad_id``.

        Args:
            inputs: token ids, shape (T, B).
            state: the previous chunk's last n − 1 tokens, shape (n − 1, B), or None.

        Returns:
            logits of shape (T, B, V) and the new state, shape (n − 1, B).
        """
        _check_token_ids("inputs", inputs, 2)
        steps, batch_size = inputs.shape
        if state is None:
            state = self.initial_state(batch_size, inputs.device)
        expected = (self.context_size, batch_size)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"state must have shape (n − 1, B) = {expected} for inputs of shape {tuple(inputs.shape)}, "
                f"got {tuple(state.shape)}"
            )
        tokens = torch.cat([state.to(inputs.dtype), inputs])  # (n − 1 + T, B)
        # windows[t] holds the n − 1 tokens ending with inputs[t]: tokens[t + 1 : t + n].
        windows = tokens.unfold(0, self.context_size, 1)[1:]  # (T, B, n − 1)
        logits = self.logits_from_contexts(windows.reshape(steps * batch_size, self.context_size))
        return logits.view(steps, batch_size, self.vocab_size), tokens[steps:].clone()


@torch.no_grad()
def window_perplexity(
    model: FixedWindowLM, contexts: torch.Tensor, targets: torch.Tensor, batch_size: int = 1024
) -> float:
    """Perplexity exp(−(1/N) Σ_i log p(targets[i] | contexts[i])) over N windows, in batches.

    Args:
        model: a fixed-window model (any module with ``logits_from_contexts``).
        contexts: shape (N, n − 1).
        targets: shape (N,).
        batch_size: windows per forward pass (the result does not depend on it).
    """
    if len(contexts) != len(targets) or len(targets) == 0:
        raise ValueError(
            f"need as many targets as contexts, and at least one: got {len(contexts)} contexts "
            f"and {len(targets)} targets"
        )
    total = 0.0
    for start in range(0, len(targets), batch_size):
        logits = model.logits_from_contexts(contexts[start : start + batch_size])
        total += F.cross_entropy(logits, targets[start : start + batch_size], reduction="sum").item()
    mean_nll = total / len(targets)
    return math.inf if mean_nll > 700 else math.exp(mean_nll)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable numbers in a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fixed_window_parameter_count(
    vocab_size: int, context_size: int, embedding_dim: int, hidden_dim: int
) -> int:
    """Parameters of :class:`FixedWindowLM`: V·d + H·(n−1)·d + H + V·H + V (linear in n − 1)."""
    v, d, h = vocab_size, embedding_dim, hidden_dim
    return v * d + h * context_size * d + h + v * h + v


def ngram_table_size(vocab_size: int, context_size: int) -> int:
    """Free parameters of a full n-gram table: V^{n−1} histories × (V − 1) probabilities each."""
    return vocab_size**context_size * (vocab_size - 1)


def nearest_neighbours(
    embeddings: torch.Tensor, vocab: Vocabulary, word: str, k: int = 5
) -> list[tuple[str, float]]:
    """The ``k`` words whose embeddings have the highest cosine similarity with ``word``'s.

    cos(u, v) = u·v / (‖u‖ ‖v‖). The word itself is left out; ties go to the lower id.

    Args:
        embeddings: one row per vocabulary entry, shape (V, d).
        vocab: the vocabulary the rows belong to.
        word: the query word (must be in the vocabulary).
        k: how many neighbours, at most V − 1.

    Returns:
        (word, cosine similarity) pairs, most similar first.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] != len(vocab):
        raise ValueError(
            f"embeddings must have shape (V, d) with V = {len(vocab)} (the vocabulary size), "
            f"got {tuple(embeddings.shape)}"
        )
    if word not in vocab:
        raise KeyError(f"{word!r} is not in the vocabulary")
    if not 1 <= k < len(vocab):
        raise ValueError(f"k must be between 1 and V − 1 = {len(vocab) - 1}, got {k}")
    unit = F.normalize(embeddings.detach().cpu().double(), dim=1)
    query = vocab.token_to_id[word]
    cosines = (unit @ unit[query]).tolist()
    cosines[query] = -math.inf
    order = sorted(range(len(vocab)), key=lambda i: (-cosines[i], i))[:k]
    return [(vocab.id_to_token[i], cosines[i]) for i in order]
