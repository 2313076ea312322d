"""Tests of course_lib.models.attention.

Oracles: each score written as a loop over the source positions i with sums of elementwise
products (no matrix product, no einsum), the identities between the score functions
(dot = bilinear with W = I, reduced rank with U = I, V = W = bilinear), softmax over the
unpadded slice, finite differences (gradcheck), and the textbook functions for the
precomputed path of the module.
"""

import pytest
import torch

from course_lib.models.attention import (
    SCORE_FUNCTIONS,
    Attention,
    additive_scores,
    attention_context,
    bilinear_scores,
    dot_scores,
    masked_softmax,
    reduced_rank_scores,
)

pytestmark = pytest.mark.usefixtures("one_thread")

S, B, D, H, K = 5, 3, 4, 6, 2
LENGTHS = torch.tensor([5, 2, 3])
# Measured largest errors (float64): 3.6e-15 against the loops, 4.4e-16 between the module's two paths.
TOL = 1e-12



def randn(*shape, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed + 1000 * len(shape) + sum(shape))
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def mask_of(lengths: torch.Tensor, steps: int = S) -> torch.Tensor:
    return torch.arange(steps).unsqueeze(1) < lengths


def matvec(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """M x for a batch of rows x (B, n): sums of elementwise products, shape (B, m)."""
    return (matrix.unsqueeze(0) * x.unsqueeze(1)).sum(-1)


def loop_scores(score: str, s: torch.Tensor, enc: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
    """e_i, one source position at a time, without matrix products."""
    rows = []
    for h_i in enc:
        if score == "dot":
            rows.append((s * h_i).sum(-1))
        elif score == "bilinear":
            (W,) = weights
            rows.append((s * matvec(W, h_i)).sum(-1))
        elif score == "reduced_rank":
            U, V = weights
            rows.append((matvec(U, s) * matvec(V, h_i)).sum(-1))
        else:
            W1, W2, v = weights
            rows.append((torch.tanh(matvec(W1, h_i) + matvec(W2, s)) * v).sum(-1))
    return torch.stack(rows)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def test_dot_scores_match_the_loop():
    s, enc = randn(B, H), randn(S, B, H)
    assert dot_scores(s, enc).shape == (S, B)
    assert max_error(dot_scores(s, enc), loop_scores("dot", s, enc)) < TOL


def test_bilinear_scores_match_the_loop():
    s, enc, W = randn(B, D), randn(S, B, H), randn(D, H)
    assert max_error(bilinear_scores(s, enc, W), loop_scores("bilinear", s, enc, W)) < TOL


def test_reduced_rank_scores_match_the_loop_and_equal_bilinear_with_w_equal_ut_v():
    s, enc, U, V = randn(B, D), randn(S, B, H), randn(K, D), randn(K, H)
    scores = reduced_rank_scores(s, enc, U, V)
    assert max_error(scores, loop_scores("reduced_rank", s, enc, U, V)) < TOL
    assert max_error(scores, bilinear_scores(s, enc, U.T @ V)) < TOL


def test_additive_scores_match_the_loop():
    A = 3
    s, enc, W1, W2, v = randn(B, D), randn(S, B, H), randn(A, H), randn(A, D), randn(A)
    assert max_error(additive_scores(s, enc, W1, W2, v), loop_scores("additive", s, enc, W1, W2, v)) < TOL


def test_identities_between_the_scores():
    s, enc, W = randn(B, H), randn(S, B, H), randn(H, H)
    assert max_error(dot_scores(s, enc), bilinear_scores(s, enc, torch.eye(H, dtype=torch.float64))) < TOL
    identity = torch.eye(H, dtype=torch.float64)
    assert max_error(reduced_rank_scores(s, enc, identity, W), bilinear_scores(s, enc, W)) < TOL


def test_masked_softmax_is_the_softmax_of_the_real_slice_with_exact_zeros():
    scores, mask = randn(S, B), mask_of(LENGTHS)
    alpha = masked_softmax(scores, mask)
    assert torch.all(alpha[~mask] == 0.0)
    assert max_error(alpha.sum(0), torch.ones(B, dtype=torch.float64)) < TOL
    for b, n in enumerate(LENGTHS.tolist()):
        assert max_error(alpha[:n, b], scores[:n, b].softmax(0)) < TOL
    garbage = scores.masked_fill(~mask, float("nan"))
    assert torch.equal(masked_softmax(garbage, mask), alpha)


def test_masked_softmax_rejects_an_empty_column_and_a_float_mask():
    mask = mask_of(LENGTHS)
    mask[:, 1] = False
    with pytest.raises(ValueError, match="columns \\[1\\]"):
        masked_softmax(randn(S, B), mask)
    with pytest.raises(ValueError, match="BoolTensor"):
        masked_softmax(randn(S, B), mask_of(LENGTHS).double())
    with pytest.raises(ValueError, match="same shape"):
        masked_softmax(randn(S, B), mask_of(LENGTHS)[:-1])


def test_context_is_the_weighted_sum_of_the_encoder_states():
    alpha, enc = randn(S, B).softmax(0), randn(S, B, H)
    expected = sum(alpha[i].unsqueeze(1) * enc[i] for i in range(S))
    assert attention_context(alpha, enc).shape == (B, H)
    assert max_error(attention_context(alpha, enc), expected) < TOL


def make_attention(score: str, seed: int = 0) -> Attention:
    torch.manual_seed(seed)
    query_size = H if score == "dot" else D
    return Attention(score, query_size, H, attention_size=K).double()


@pytest.mark.parametrize("score", SCORE_FUNCTIONS)
def test_module_uses_the_textbook_formulas_and_the_precomputed_keys_agree(score):
    attention = make_attention(score)
    s, enc, mask = randn(B, attention.query_size), randn(S, B, H), mask_of(LENGTHS)
    context, alpha = attention(s, enc, mask)
    weights = [getattr(attention, name) for name, _ in attention.named_parameters()]
    expected_alpha = masked_softmax(loop_scores(score, s, enc, *weights), mask)
    assert max_error(alpha, expected_alpha) < TOL
    assert max_error(context, attention_context(expected_alpha, enc)) < TOL
    fast_context, fast_alpha = attention(s, enc, mask, keys=attention.precompute(enc))
    assert max_error(fast_alpha, alpha) < TOL
    assert max_error(fast_context, context) < TOL


SCORE_CALLS = {
    "dot": (dot_scores, ()),
    "bilinear": (bilinear_scores, ((D, H),)),
    "reduced_rank": (reduced_rank_scores, ((K, D), (K, H))),
    "additive": (additive_scores, ((K, H), (K, D), (K,))),
}


@pytest.mark.parametrize("score", SCORE_FUNCTIONS)
def test_gradients_of_scores_softmax_and_context_match_finite_differences(score):
    function, weight_shapes = SCORE_CALLS[score]
    query_size = H if score == "dot" else D
    inputs = [randn(B, query_size, seed=1), randn(S, B, H, seed=2)]
    inputs += [randn(*shape, seed=3 + n) for n, shape in enumerate(weight_shapes)]
    mask = mask_of(LENGTHS)

    def attend(s, enc, *weights):
        alpha = masked_softmax(function(s, enc, *weights), mask)
        return attention_context(alpha, enc), alpha

    assert torch.autograd.gradcheck(attend, [x.requires_grad_() for x in inputs])


def gradients(attention: Attention, s, enc, mask, use_keys: bool) -> list[torch.Tensor]:
    attention.zero_grad()
    s, enc = s.clone().requires_grad_(), enc.clone().requires_grad_()
    keys = attention.precompute(enc) if use_keys else None
    context, alpha = attention(s, enc, mask, keys=keys)
    (context.sin().sum() + alpha.cos().sum()).backward()
    return [s.grad, enc.grad] + [parameter.grad.clone() for parameter in attention.parameters()]


@pytest.mark.parametrize("score", SCORE_FUNCTIONS)
def test_gradients_of_the_precomputed_path_equal_those_of_the_textbook_path(score):
    attention = make_attention(score, seed=1)
    s, enc, mask = randn(B, attention.query_size, seed=4), randn(S, B, H, seed=5), mask_of(LENGTHS)
    textbook = gradients(attention, s, enc, mask, use_keys=False)
    precomputed = gradients(attention, s, enc, mask, use_keys=True)
    for a, b in zip(textbook, precomputed, strict=True):
        assert max_error(a, b) < TOL


@pytest.mark.parametrize("score", SCORE_FUNCTIONS)
def test_padded_encoder_states_do_not_matter(score):
    attention = make_attention(score, seed=2)
    s, enc, mask = randn(B, attention.query_size, seed=6), randn(S, B, H, seed=7), mask_of(LENGTHS)
    other = enc.masked_fill(~mask.unsqueeze(-1), 1e3)
    for keys in (None, "precomputed"):
        context, alpha = attention(s, enc, mask, keys=None if keys is None else attention.precompute(enc))
        other_keys = None if keys is None else attention.precompute(other)
        other_context, other_alpha = attention(s, other, mask, keys=other_keys)
        assert torch.all(alpha[~mask] == 0.0)
        assert torch.equal(other_alpha, alpha)
        assert max_error(other_context, context) < TOL


@pytest.mark.parametrize("score", SCORE_FUNCTIONS)
def test_one_source_broadcasts_over_many_queries(score):
    attention = make_attention(score, seed=3)
    beams = 4
    s, enc = randn(beams, attention.query_size, seed=8), randn(S, 1, H, seed=9)
    mask = mask_of(torch.tensor([3]))
    context, alpha = attention(s, enc, mask)
    assert context.shape == (beams, H) and alpha.shape == (S, beams)
    expanded_context, expanded_alpha = attention(s, enc.expand(S, beams, H), mask.expand(S, beams))
    assert max_error(alpha, expanded_alpha) < TOL
    assert max_error(context, expanded_context) < TOL
    keys_context, keys_alpha = attention(s, enc, mask, keys=attention.precompute(enc))
    assert max_error(keys_alpha, alpha) < TOL
    assert max_error(keys_context, context) < TOL


def test_unknown_scores_and_mismatched_shapes_raise_value_errors():
    with pytest.raises(ValueError, match="score must be one of"):
        Attention("cosine", D, H)
    with pytest.raises(ValueError, match="query_size == key_size"):
        Attention("dot", D, H)
    s, enc = randn(B, D), randn(S, B, H)
    with pytest.raises(ValueError, match="same size"):
        dot_scores(s, enc)
    with pytest.raises(ValueError, match="W must have shape"):
        bilinear_scores(s, enc, randn(H, D))
    with pytest.raises(ValueError, match="V must have shape"):
        reduced_rank_scores(s, enc, randn(K, D), randn(K + 1, H))
    with pytest.raises(ValueError, match="v must have shape"):
        additive_scores(s, enc, randn(K, H), randn(K, D), randn(K + 1))
    with pytest.raises(ValueError, match="batch size"):
        bilinear_scores(randn(B + 1, D), enc, randn(D, H))
    with pytest.raises(ValueError, match="shape \\(S, B, H\\)"):
        dot_scores(randn(B, H), randn(B, H))
    with pytest.raises(ValueError, match="batch size"):
        attention_context(randn(S, B), randn(S, B + 1, H))
    attention = make_attention("additive")
    with pytest.raises(ValueError, match="expected s of size"):
        attention(randn(B, D + 1), enc, mask_of(LENGTHS))
