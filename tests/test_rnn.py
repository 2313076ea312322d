"""Tests of course_lib.models.rnn against torch.nn.RNN / RNNCell with copied weights.

The oracles are PyTorch's own recurrent layers (forward values and autograd gradients), the
NumPy implementation of course_lib.models.numpy_rnn, finite differences (gradcheck), and
explicit loops for the loss.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models import numpy_rnn
from course_lib.models.rnn import (
    RNN,
    RNNLM,
    RNNCell,
    last_hidden,
    rnn_sequence,
    rnn_step,
    teacher_forcing_loss,
)

# Largest difference allowed from torch.nn, per dtype, relative to max(1, largest |value|).
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
T, B, D, H, V = 7, 3, 5, 4, 11


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max(1, max |b|): absolute up to 1, relative above (summed gradients)."""
    return ((a - b).abs().max() / b.abs().max().clamp(min=1)).item()


def gradients(module: nn.Module, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """d loss / d (every input and parameter) by autograd, keyed by name."""
    grads = {f"input{i}": tensor.grad for i, tensor in enumerate(inputs)}
    grads.update({name: parameter.grad for name, parameter in module.named_parameters()})
    return grads


def run_rnn(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None, weights: torch.Tensor):
    """Forward, then backward of a loss that weighs every output, so every gradient is exercised."""
    x = x.clone().requires_grad_()
    inputs = [x]
    if h0 is not None:
        h0 = h0.clone().requires_grad_()
        inputs.append(h0)
    output, h_n = module(x, h0)
    ((output * weights).sum() + (h_n**2).sum()).backward()
    return output.detach(), h_n.detach(), gradients(module, inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("with_h0", [False, True])
def test_rnn_matches_torch_rnn_forward_and_gradients(dtype, nonlinearity, with_h0):
    torch.manual_seed(0)
    oracle = nn.RNN(D, H, nonlinearity=nonlinearity).to(dtype)
    ours = RNN(D, H, nonlinearity=nonlinearity).to(dtype)
    ours.load_state_dict(oracle.state_dict())
    x = torch.randn(T, B, D, dtype=dtype)
    h0 = torch.randn(1, B, H, dtype=dtype) if with_h0 else None
    weights = torch.randn(T, B, H, dtype=dtype)

    out, h_n, grads = run_rnn(ours, x, h0, weights)
    out_ref, h_n_ref, grads_ref = run_rnn(oracle, x, h0, weights)

    assert out.shape == (T, B, H) and h_n.shape == (1, B, H)
    assert max_error(out, out_ref) < TOL[dtype]
    assert max_error(h_n, h_n_ref) < TOL[dtype]
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        assert max_error(grads[name], grads_ref[name]) < TOL[dtype], name


def test_rnn_has_the_parameters_of_torch_rnn_and_loads_both_ways():
    oracle, ours = nn.RNN(D, H), RNN(D, H)
    shapes = {name: parameter.shape for name, parameter in ours.named_parameters()}
    assert shapes == {name: parameter.shape for name, parameter in oracle.named_parameters()}
    oracle.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, D)
    assert max_error(ours(x)[0], oracle(x)[0]) < TOL[torch.float32]


def test_rnn_without_bias_matches_torch():
    torch.manual_seed(1)
    oracle = nn.RNN(D, H, bias=False).double()
    ours = RNN(D, H, bias=False).double()
    ours.load_state_dict(oracle.state_dict())
    assert set(dict(ours.named_parameters())) == {"weight_ih_l0", "weight_hh_l0"}
    x = torch.randn(T, B, D, dtype=torch.float64)
    assert max_error(ours(x)[0], oracle(x)[0]) < TOL[torch.float64]


def test_rnn_initialisation_follows_torch():
    torch.manual_seed(2)
    hidden = 64
    for parameter in RNN(D, hidden).parameters():
        bound = 1 / math.sqrt(hidden)
        assert parameter.abs().max() <= bound
        assert parameter.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)  # std of U(-a, a)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_matches_torch_rnn_cell(nonlinearity):
    torch.manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        oracle = nn.RNNCell(D, H, nonlinearity=nonlinearity).to(dtype)
        ours = RNNCell(D, H, nonlinearity=nonlinearity).to(dtype)
        ours.load_state_dict(oracle.state_dict())
        x, h = torch.randn(B, D, dtype=dtype), torch.randn(B, H, dtype=dtype)
        results = []
        for module in (ours, oracle):
            module.zero_grad()
            inputs = [x.clone().requires_grad_(), h.clone().requires_grad_()]
            h_next = module(*inputs)
            (h_next * torch.arange(H, dtype=dtype)).sum().backward()
            results.append((h_next.detach(), gradients(module, inputs)))
        (h_ours, g_ours), (h_ref, g_ref) = results
        assert max_error(h_ours, h_ref) < TOL[dtype]
        for name in g_ref:
            assert max_error(g_ours[name], g_ref[name]) < TOL[dtype], name
        assert max_error(ours(x), oracle(x)) < TOL[dtype]  # no state given: zeros


def test_functions_match_the_numpy_rnn():
    """rnn_step / rnn_sequence equal the NumPy version with W_x = W_eᵀ, W_h = W_hᵀ, b = b_ih + b_hh."""
    rng = np.random.default_rng(4)
    x, h0 = rng.normal(size=(T, B, D)), rng.normal(size=(B, H))
    w_ih, w_hh = rng.normal(size=(H, D)), rng.normal(size=(H, H))
    b_ih, b_hh = rng.normal(size=H), rng.normal(size=H)
    expected, _ = numpy_rnn.rnn_forward(x, h0, w_ih.T, w_hh.T, b_ih + b_hh)
    as_torch = [torch.from_numpy(a) for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    assert np.abs(rnn_sequence(*as_torch).numpy() - expected).max() < 1e-12
    step, _ = numpy_rnn.rnn_step_forward(x[0], h0, w_ih.T, w_hh.T, b_ih + b_hh, "relu")
    assert np.abs(rnn_step(as_torch[0][0], *as_torch[1:], "relu").numpy() - step).max() < 1e-12


def test_rnn_gradients_match_finite_differences():
    torch.manual_seed(5)
    rnn = RNN(3, 4).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    params = tuple(rnn.parameters())

    def run(x, h0, *weights):
        return rnn_sequence(x, h0[0], *weights)

    assert torch.autograd.gradcheck(run, (x, h0, *params))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(D, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(D, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="h0"):
        RNN(D, H)(torch.randn(T, B, D), torch.randn(B, H))
    with pytest.raises(ValueError, match="time-major"):
        RNN(D, H)(torch.randn(B, D))
    with pytest.raises(ValueError, match="cell"):
        RNNLM(V, D, H, cell="lstm")


def test_last_hidden_picks_the_final_state_of_each_padded_sequence():
    torch.manual_seed(6)
    rnn = RNN(D, H)
    lengths = torch.tensor([T, 2, 5])
    x = torch.randn(T, B, D)
    picked = last_hidden(rnn(x)[0], lengths)
    for b, length in enumerate(lengths.tolist()):
        _, h_n = rnn(x[:length, b : b + 1])  # the sequence alone, without its padding
        assert torch.allclose(picked[b], h_n[0, 0], atol=1e-6)
    assert torch.equal(last_hidden(rnn(x)[0], torch.full((B,), T)), rnn(x)[1][0])
    with pytest.raises(ValueError, match="lengths"):
        last_hidden(rnn(x)[0], torch.tensor([0, 1, 2]))


def language_models(seed: int = 7, dtype=torch.float64):
    """A from-scratch RNNLM and a cuDNN-style one sharing the same weights."""
    torch.manual_seed(seed)
    scratch = RNNLM(V, D, H, cell="scratch").to(dtype)
    fused = RNNLM(V, D, H, cell="cudnn").to(dtype)
    fused.load_state_dict(scratch.state_dict())
    assert isinstance(fused.rnn, nn.RNN) and isinstance(scratch.rnn, RNN)
    return scratch, fused


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rnnlm_scratch_and_cudnn_cells_agree(dtype):
    scratch, fused = language_models(dtype=dtype)
    inputs = torch.randint(V, (T, B))
    state = 0.5 * torch.randn(1, B, H, dtype=dtype)
    for with_state in (None, state):
        logits, h = scratch(inputs, with_state)
        logits_ref, h_ref = fused(inputs, with_state)
        assert logits.shape == (T, B, V) and h.shape == (1, B, H)
        assert max_error(logits, logits_ref) < TOL[dtype]
        assert max_error(h, h_ref) < TOL[dtype]
    sequence = torch.randint(V, (T + 1, B))
    for model in (scratch, fused):
        teacher_forcing_loss(model, sequence).backward()
    for (name, p), (_, p_ref) in zip(scratch.named_parameters(), fused.named_parameters(), strict=True):
        assert max_error(p.grad, p_ref.grad) < TOL[dtype], name


def test_rnnlm_is_embedding_rnn_linear():
    scratch, _ = language_models()
    inputs = torch.randint(V, (T, B))
    rnn = nn.RNN(D, H).double()
    rnn.load_state_dict(scratch.rnn.state_dict())
    hidden, _ = rnn(scratch.embedding.weight[inputs])
    expected = hidden @ scratch.output.weight.T + scratch.output.bias
    assert max_error(scratch(inputs)[0], expected) < TOL[torch.float64]


def test_rnnlm_chunks_with_carried_state_equal_one_pass():
    for model in language_models():
        inputs = torch.randint(V, (12, B))
        full_logits, full_state = model(inputs)
        state, chunks = model.init_state(B), []
        for chunk in inputs.split(5):  # chunks of 5, 5 and 2 steps
            logits, state = model(chunk, state)
            chunks.append(logits)
        assert max_error(torch.cat(chunks), full_logits) < TOL[torch.float64]
        assert max_error(state, full_state) < TOL[torch.float64]


def test_init_state_is_zeros_on_the_model_device():
    model = RNNLM(V, D, H)
    state = model.init_state(B)
    assert state.shape == (1, B, H) and state.dtype == torch.float32 and not state.any()
    inputs = torch.randint(V, (T, B))
    assert torch.equal(model(inputs)[0], model(inputs, state)[0])


def test_teacher_forcing_loss_is_the_mean_next_token_cross_entropy():
    scratch, _ = language_models(seed=8)
    sequence = torch.randint(V, (T + 1, B))
    logits, _ = scratch(sequence[:-1])
    log_probs = F.log_softmax(logits, dim=-1)
    terms = [-log_probs[t, b, sequence[t + 1, b]] for t in range(T) for b in range(B)]
    expected = torch.stack(terms).mean()
    assert abs(teacher_forcing_loss(scratch, sequence).item() - expected.item()) < 1e-12

    pad = 0
    padded = sequence.clone()
    padded[-2:, 0] = pad  # the last two targets of sequence 0 are padding
    kept = [(t, b) for t in range(T) for b in range(B) if padded[t + 1, b] != pad]
    logits, _ = scratch(padded[:-1])
    log_probs = F.log_softmax(logits, dim=-1)
    expected = torch.stack([-log_probs[t, b, padded[t + 1, b]] for t, b in kept]).mean()
    assert abs(teacher_forcing_loss(scratch, padded, ignore_index=pad).item() - expected.item()) < 1e-12

    with pytest.raises(ValueError, match="T \\+ 1"):
        teacher_forcing_loss(scratch, sequence[:1])


def test_an_rnnlm_learns_a_repeating_pattern():
    torch.manual_seed(9)
    model = RNNLM(4, 8, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    sequence = torch.tensor([0, 1, 2, 3] * 6).view(-1, 1).repeat(1, 2)  # (24, 2)
    for _ in range(60):
        optimizer.zero_grad()
        loss = teacher_forcing_loss(model, sequence)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
