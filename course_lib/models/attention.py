"""Attention: a decoder state looks at all encoder states and takes a weighted average of them.

A sequence-to-sequence model without attention must squeeze the whole source into the
encoder's final state, the only thing the decoder sees (the bottleneck). With attention the
decoder reads the encoder states h_1 … h_N again at every step t. Its state s_t scores each
of them, the scores become a distribution over the source positions, and the context is the
average of the encoder states under that distribution:

    e^t_i = score(s_t, h_i)            i = 1 … N       scores
    α^t   = softmax(e^t)                               attention distribution (alignment)
    a_t   = Σ_i α^t_i h_i                              context vector

The decoder then predicts from [a_t; s_t]. The four score functions of the course are

    dot            e_i = s^T h_i                        needs D = H, no parameters
    bilinear       e_i = s^T W h_i                      W (D, H)
    reduced rank   e_i = (U s)^T (V h_i)                U (K, D), V (K, H), K ≪ D, H
    additive       e_i = v^T tanh(W1 h_i + W2 s)        W1 (A, H), W2 (A, D), v (A,)

The reduced-rank score is the bilinear one with W = U^T V of rank at most K; the additive
score is a one-hidden-layer network with A hidden units.

Shapes in code: a batch of B decoder states s (B, D), encoder states time-major (S, B, H)
(S = N, padded), scores and distributions (S, B), contexts (B, H). Padded source positions
are excluded by a mask (S, B) that is True at real positions (:func:`masked_softmax`).

The functions here are the textbook formulas, one call per decoder step. A decoder calls
attention at every step t with the same encoder states, so the part of the score that depends
only on h_i (W h_i, V h_i, W1 h_i) can be computed once per batch: :meth:`Attention.precompute`
returns it, and :meth:`Attention.forward` takes it as ``keys``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SCORE_FUNCTIONS = ("dot", "bilinear", "reduced_rank", "additive")


def _check_states(s: torch.Tensor, enc: torch.Tensor) -> None:
    """Raise ``ValueError`` unless s is (B, D) and enc is (S, B, H) with the same B, or B = 1 in enc."""
    if s.dim() != 2:
        raise ValueError(f"the decoder state s must have shape (B, D), got {tuple(s.shape)}")
    if enc.dim() != 3:
        raise ValueError(f"the encoder states must have shape (S, B, H), got {tuple(enc.shape)}")
    if enc.shape[1] not in (1, s.shape[0]):
        raise ValueError(
            f"the encoder states have batch size {enc.shape[1]} and s has {s.shape[0]}: "
            "they must be equal, or 1 for the encoder states (one source shared by every row of s)"
        )


def _check_matrix(name: str, matrix: torch.Tensor, shape: tuple[int, int], meaning: str) -> None:
    if tuple(matrix.shape) != shape:
        raise ValueError(f"{name} must have shape {meaning} = {shape}, got {tuple(matrix.shape)}")


def dot_scores(s: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
    """Dot-product scores e_i = s^T h_i.

    Args:
        s: decoder states, shape (B, H).
        enc: encoder states h_1 … h_S, shape (S, B, H) (or (S, 1, H), shared by all B rows).

    Returns:
        e, shape (S, B).
    """
    _check_states(s, enc)
    if s.shape[1] != enc.shape[2]:
        raise ValueError(
            f"dot scores need states of the same size, got s of size {s.shape[1]} "
            f"and h of size {enc.shape[2]}"
        )
    return (enc * s).sum(-1)


def bilinear_scores(s: torch.Tensor, enc: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Bilinear scores e_i = s^T W h_i.

    Args:
        s: decoder states, shape (B, D).
        enc: encoder states, shape (S, B, H) (or (S, 1, H)).
        W: shape (D, H).

    Returns:
        e, shape (S, B).
    """
    _check_states(s, enc)
    _check_matrix("W", W, (s.shape[1], enc.shape[2]), "(D, H)")
    return dot_scores(s, enc @ W.T)


def reduced_rank_scores(s: torch.Tensor, enc: torch.Tensor, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Reduced-rank scores e_i = (U s)^T (V h_i), the bilinear score with W = U^T V.

    Args:
        s: decoder states, shape (B, D).
        enc: encoder states, shape (S, B, H) (or (S, 1, H)).
        U: shape (K, D).
        V: shape (K, H).

    Returns:
        e, shape (S, B).
    """
    _check_states(s, enc)
    rank = U.shape[0] if U.dim() == 2 else -1
    _check_matrix("U", U, (rank, s.shape[1]), "(K, D)")
    _check_matrix("V", V, (rank, enc.shape[2]), "(K, H)")
    return dot_scores(s @ U.T, enc @ V.T)


def additive_scores(
    s: torch.Tensor, enc: torch.Tensor, W1: torch.Tensor, W2: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """Additive scores e_i = v^T tanh(W1 h_i + W2 s).

    Args:
        s: decoder states, shape (B, D).
        enc: encoder states, shape (S, B, H) (or (S, 1, H)).
        W1: shape (A, H).
        W2: shape (A, D).
        v: shape (A,).

    Returns:
        e, shape (S, B).
    """
    _check_states(s, enc)
    size = W1.shape[0] if W1.dim() == 2 else -1
    _check_matrix("W1", W1, (size, enc.shape[2]), "(A, H)")
    _check_matrix("W2", W2, (size, s.shape[1]), "(A, D)")
    if tuple(v.shape) != (size,):
        raise ValueError(f"v must have shape (A,) = ({size},), got {tuple(v.shape)}")
    return torch.tanh(enc @ W1.T + s @ W2.T) @ v


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The attention distribution α_i = exp(e_i) / Σ_{j real} exp(e_j) over the real positions.

    Each column b is a softmax over the positions i with mask[i, b] True; masked positions get
    exactly 0 (their scores are never looked at), so α is the softmax over the unpadded slice.

    Args:
        scores: e, shape (S, B).
        mask: True at real positions, a BoolTensor of shape (S, B).

    Returns:
        α, shape (S, B); every column sums to 1.
    """
    if scores.dim() != 2 or tuple(mask.shape) != tuple(scores.shape):
        raise ValueError(
            f"need scores and a mask of the same shape (S, B), "
            f"got {tuple(scores.shape)} and {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"the mask must be a BoolTensor, got {mask.dtype}")
    if not bool(mask.any(0).all()):
        empty = (~mask.any(0)).nonzero().flatten().tolist()
        raise ValueError(f"every column needs at least one real position; columns {empty} have none")
    return scores.masked_fill(~mask, float("-inf")).softmax(0)


def attention_context(alpha: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
    """The context vector a = Σ_i α_i h_i.

    Args:
        alpha: α, shape (S, B).
        enc: encoder states, shape (S, B, H) (or (S, 1, H), shared by all B columns of α).

    Returns:
        a, shape (B, H).
    """
    if alpha.dim() != 2 or enc.dim() != 3 or alpha.shape[0] != enc.shape[0]:
        raise ValueError(
            f"need α of shape (S, B) and encoder states of shape (S, B, H), "
            f"got {tuple(alpha.shape)} and {tuple(enc.shape)}"
        )
    if enc.shape[1] not in (1, alpha.shape[1]):
        raise ValueError(f"α has batch size {alpha.shape[1]} but the encoder states have {enc.shape[1]}")
    # One batched product (B, 1, S) @ (B, S, H): the sum over i without a (S, B, H) temporary.
    return (alpha.T.unsqueeze(1) @ enc.transpose(0, 1)).squeeze(1)


class Attention(nn.Module):
    """Attention of a decoder state over encoder states: (a, α) with α = softmax(e), a = Σ_i α_i h_i.

    Args:
        score: one of :data:`SCORE_FUNCTIONS`.
        query_size: D, the size of the decoder state s.
        key_size: H, the size of an encoder state h_i (D = H for ``"dot"``).
        attention_size: K for ``"reduced_rank"``, A for ``"additive"``; ``None`` means D.

    Parameters (entries drawn from U(−1/√fan_in, 1/√fan_in), as in ``nn.Linear``):
    ``W`` (D, H) for ``"bilinear"``; ``U`` (K, D) and ``V`` (K, H) for ``"reduced_rank"``;
    ``W1`` (A, H), ``W2`` (A, D) and ``v`` (A,) for ``"additive"``; none for ``"dot"``.
    """

    def __init__(self, score: str, query_size: int, key_size: int, attention_size: int | None = None):
        super().__init__()
        if score not in SCORE_FUNCTIONS:
            raise ValueError(f"score must be one of {SCORE_FUNCTIONS}, got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(
                f"dot scores need query_size == key_size, got {query_size} and {key_size}; "
                "use 'bilinear' for states of different sizes"
            )
        self.score = score
        self.query_size = query_size
        self.key_size = key_size
        self.attention_size = query_size if attention_size is None else attention_size
        size = self.attention_size
        shapes = {
            "dot": {},
            "bilinear": {"W": (query_size, key_size)},
            "reduced_rank": {"U": (size, query_size), "V": (size, key_size)},
            "additive": {"W1": (size, key_size), "W2": (size, query_size), "v": (size,)},
        }[score]
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every matrix from U(−1/√fan_in, 1/√fan_in), fan_in = its number of columns (v: A)."""
        for parameter in self.parameters():
            bound = 1.0 / math.sqrt(parameter.shape[-1])
            nn.init.uniform_(parameter, -bound, bound)

    def scores(self, s: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        """e (S, B) from s (B, D) and enc (S, B, H): the textbook score function, this module's weights."""
        if self.score == "dot":
            return dot_scores(s, enc)
        if self.score == "bilinear":
            return bilinear_scores(s, enc, self.W)
        if self.score == "reduced_rank":
            return reduced_rank_scores(s, enc, self.U, self.V)
        return additive_scores(s, enc, self.W1, self.W2, self.v)

    def precompute(self, enc: torch.Tensor) -> torch.Tensor:
        """The keys: the part of the scores that depends on h_i only, once for all decoder steps.

        h_i for dot, W h_i (S, B, D) for bilinear, V h_i (S, B, K) for reduced rank and
        W1 h_i (S, B, A) for additive scores.
        """
        if enc.dim() != 3 or enc.shape[2] != self.key_size:
            raise ValueError(
                f"the encoder states must have shape (S, B, H) with H = {self.key_size}, "
                f"got {tuple(enc.shape)}"
            )
        if self.score == "dot":
            return enc
        if self.score == "bilinear":
            return enc @ self.W.T
        if self.score == "reduced_rank":
            return enc @ self.V.T
        return enc @ self.W1.T

    def scores_from_keys(self, s: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """e (S, B) from s (B, D) and the keys of :meth:`precompute`; equal to :meth:`scores`.

            dot, bilinear: e_i = s^T k_i,     reduced rank: e_i = (U s)^T k_i,
            additive: e_i = v^T tanh(k_i + W2 s).
        """
        _check_states(s, keys)
        if self.score in ("dot", "bilinear"):
            return dot_scores(s, keys)
        if self.score == "reduced_rank":
            return dot_scores(s @ self.U.T, keys)
        return torch.tanh(keys + s @ self.W2.T) @ self.v

    def forward(
        self, s: torch.Tensor, enc: torch.Tensor, mask: torch.Tensor, keys: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context a (B, H) and the attention distribution α (S, B).

        Args:
            s: decoder states, shape (B, D).
            enc: encoder states, shape (S, B, H), or (S, 1, H) when B rows of s (for example B
                beams) read the same source.
            mask: True at real source positions, shape (S, B) (or (S, 1) with such an enc).
            keys: ``self.precompute(enc)``, to save recomputing it at every decoder step.

        Returns:
            ``(a, α)``: a = Σ_i α_i h_i, shape (B, H); α = masked softmax of the scores, (S, B).
        """
        _check_states(s, enc)
        if s.shape[1] != self.query_size or enc.shape[2] != self.key_size:
            raise ValueError(
                f"expected s of size D = {self.query_size} and h of size H = {self.key_size}, "
                f"got {s.shape[1]} and {enc.shape[2]}"
            )
        scores = self.scores(s, enc) if keys is None else self.scores_from_keys(s, keys)
        if tuple(mask.shape) == (enc.shape[0], 1):
            mask = mask.expand_as(scores)
        alpha = masked_softmax(scores, mask)
        return attention_context(alpha, enc), alpha

    def extra_repr(self) -> str:
        return (
            f"{self.score!r}, query_size={self.query_size}, key_size={self.key_size}, "
            f"attention_size={self.attention_size}"
        )
