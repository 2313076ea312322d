"""Word2vec (Mikolov et al., 2013): language models that predict in both directions.

A fixed-window language model learns embeddings as a by-product of predicting the next
word. Word2vec keeps only what is needed for the embeddings, and looks on both sides of
a word, c positions each way:

* CBOW (continuous bag of words) predicts the center word x_t from the average of its
  2c neighbours' embeddings, v̄ = (1/2c) Σ_{0<|j|≤c} E x_{t+j}, with scores U v̄;
* skip-gram predicts each neighbour x_{t+j} from the center word alone, with scores U E x_t.

E (V, d) holds the input embeddings, U (V, d) the output embeddings. Here the
prediction is a full softmax over the vocabulary, which is affordable for the course's
small vocabularies (the original uses negative sampling to avoid it).
"""

from __future__ import annotations

import torch
from torch import nn


def _check_stream(stream: torch.Tensor, window: int) -> None:
    if not isinstance(stream, torch.Tensor) or stream.dim() != 1:
        raise ValueError("stream must be a one-dimensional tensor of token ids, shape (N,)")
    if window < 1:
        raise ValueError(f"window (c, the neighbours on each side) must be at least 1, got {window}")


def cbow_examples(stream: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CBOW training data: every position with ``window`` = c neighbours on both sides.

    Args:
        stream: token ids x_0 … x_{N−1}, shape (N,).
        window: c.

    Returns:
        contexts of shape (N − 2c, 2c), row i = x_{t−c} … x_{t−1}, x_{t+1} … x_{t+c} for
        t = c + i, and the centers x_t, shape (N − 2c,).

    >>> contexts, centers = cbow_examples(torch.tensor([5, 6, 7, 8]), window=1)
    >>> contexts.tolist(), centers.tolist()
    ([[5, 7], [6, 8]], [6, 7])
    """
    _check_stream(stream, window)
    if len(stream) < 2 * window + 1:
        raise ValueError(
            f"a stream of {len(stream)} tokens has no position with {window} neighbours on each side"
        )
    spans = stream.unfold(0, 2 * window + 1, 1)  # (N − 2c, 2c + 1)
    contexts = torch.cat([spans[:, :window], spans[:, window + 1 :]], dim=1)
    return contexts.contiguous(), spans[:, window].clone()


def skipgram_pairs(stream: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Skip-gram training data: a (center, neighbour) pair for every 0 < |j| ≤ c inside the stream.

    Pairs are listed by center position, and for each center by offset j = −c … −1, 1 … c.

    Returns:
        centers and neighbours, both of shape (M,).

    >>> centers, neighbours = skipgram_pairs(torch.tensor([5, 6, 7]), window=1)
    >>> list(zip(centers.tolist(), neighbours.tolist()))
    [(5, 6), (6, 5), (6, 7), (7, 6)]
    """
    _check_stream(stream, window)
    device = stream.device
    offsets = torch.cat([torch.arange(-window, 0, device=device), torch.arange(1, window + 1, device=device)])
    positions = torch.arange(len(stream), device=device).unsqueeze(1)  # (N, 1)
    neighbour_positions = positions + offsets  # (N, 2c)
    inside = (neighbour_positions >= 0) & (neighbour_positions < len(stream))
    centers = stream.unsqueeze(1).expand(-1, len(offsets))[inside]
    neighbours = stream[neighbour_positions[inside]]
    return centers, neighbours


class CBOW(nn.Module):
    """Scores of the center word from the mean of the context embeddings: U v̄, shape (B, V)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.output = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the center words, given contexts of shape (B, 2c)."""
        if contexts.dim() != 2:
            raise ValueError(f"contexts must have shape (B, 2c), got {tuple(contexts.shape)}")
        return self.output(self.embedding(contexts).mean(dim=1))


class SkipGram(nn.Module):
    """Scores of a neighbour from the center word's embedding: U E x_t, shape (B, V)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.output = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, centers: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the neighbours, given the center words, shape (B,)."""
        if centers.dim() != 1:
            raise ValueError(f"centers must have shape (B,), got {tuple(centers.shape)}")
        return self.output(self.embedding(centers))
