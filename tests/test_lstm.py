"""Tests of course_lib.models.lstm against torch.nn.LSTM / LSTMCell / GRU / GRUCell with copied weights.

The oracles are PyTorch's own recurrent layers (forward values and autograd gradients),
finite differences (gradcheck), and the course's equations written out gate by gate.
"""

import pytest
import torch
from torch import nn

from course_lib.models.lstm import GRU, LSTM, GRUCell, LSTMCell, RecurrentLM, gru_step, lstm_step
from course_lib.models.rnn import teacher_forcing_loss

# Largest difference allowed from torch.nn, per dtype, relative to max(1, largest |value|).
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
T, B, D, H, V = 7, 3, 5, 4, 11
DTYPES = [torch.float32, torch.float64]
LAYERS = {"lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}
CELLS = {"lstm": (LSTMCell, nn.LSTMCell), "gru": (GRUCell, nn.GRUCell)}


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max(1, max |b|): absolute up to 1, relative above (summed gradients)."""
    return ((a - b).abs().max() / b.abs().max().clamp(min=1)).item()


def flatten(state) -> list[torch.Tensor]:
    """The tensors of a state: h for the GRU, (h, c) for the LSTM."""
    return [state] if isinstance(state, torch.Tensor) else list(state)


def random_state(cell: str, shape: tuple[int, ...], dtype: torch.dtype):
    h = torch.randn(shape, dtype=dtype)
    return (h, torch.randn(shape, dtype=dtype)) if cell == "lstm" else h


def run(module: nn.Module, x: torch.Tensor, state, weights: torch.Tensor):
    """Forward, then backward of a loss that weighs every output, so every gradient is exercised.

    Returns the detached outputs (all tensors the module returned) and the gradients with
    respect to the inputs, the initial state and every parameter, keyed by name.
    """
    module.zero_grad()
    x = x.clone().requires_grad_()
    inputs = {"x": x}
    if state is not None:
        parts = [part.clone().requires_grad_() for part in flatten(state)]
        inputs.update({f"state{i}": part for i, part in enumerate(parts)})
        state = parts[0] if len(parts) == 1 else tuple(parts)
    result = module(x, state)
    if isinstance(module, (LSTM, GRU, nn.LSTM, nn.GRU)):
        output, final = result
        outputs = [output, *flatten(final)]
    else:
        outputs = flatten(result)
    loss = (outputs[0] * weights).sum() + sum((out**2).sum() for out in outputs[1:])
    loss.backward()
    grads = {name: tensor.grad for name, tensor in inputs.items()}
    grads.update({name: parameter.grad for name, parameter in module.named_parameters()})
    return [out.detach() for out in outputs], grads


def compare(ours_result, oracle_result, dtype: torch.dtype) -> float:
    """Assert that two results of :func:`run` agree; return the largest scaled error."""
    (outs, grads), (outs_ref, grads_ref) = ours_result, oracle_result
    assert len(outs) == len(outs_ref) and grads.keys() == grads_ref.keys()
    errors = {f"output{i}": max_error(a, b) for i, (a, b) in enumerate(zip(outs, outs_ref, strict=True))}
    for name in grads_ref:
        assert grads[name] is not None and grads_ref[name] is not None, name
        errors[name] = max_error(grads[name], grads_ref[name])
    for name, error in errors.items():
        assert error < TOL[dtype], (name, error)
    return max(errors.values())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("with_state", [False, True])
def test_layer_matches_torch_forward_and_gradients(dtype, cell, with_state):
    torch.manual_seed(0)
    ours_class, oracle_class = LAYERS[cell]
    oracle = oracle_class(D, H).to(dtype)
    ours = ours_class(D, H).to(dtype)
    ours.load_state_dict(oracle.state_dict())
    x = torch.randn(T, B, D, dtype=dtype)
    state = random_state(cell, (1, B, H), dtype) if with_state else None
    weights = torch.randn(T, B, H, dtype=dtype)

    ours_result = run(ours, x, state, weights)
    assert [out.shape for out in ours_result[0]][:2] == [(T, B, H), (1, B, H)]
    compare(ours_result, run(oracle, x, state, weights), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("with_state", [False, True])
def test_cell_matches_torch_cell_forward_and_gradients(dtype, cell, with_state):
    torch.manual_seed(1)
    ours_class, oracle_class = CELLS[cell]
    oracle = oracle_class(D, H).to(dtype)
    ours = ours_class(D, H).to(dtype)
    ours.load_state_dict(oracle.state_dict())
    x = torch.randn(B, D, dtype=dtype)
    state = random_state(cell, (B, H), dtype) if with_state else None
    weights = torch.randn(B, H, dtype=dtype)

    ours_result = run(ours, x, state, weights)
    assert all(out.shape == (B, H) for out in ours_result[0])
    compare(ours_result, run(oracle, x, state, weights), dtype)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layers_and_cells_have_torch_parameters_and_load_both_ways(cell):
    torch.manual_seed(2)
    for (ours_class, oracle_class), x in (
        (LAYERS[cell], torch.randn(T, B, D)),
        (CELLS[cell], torch.randn(B, D)),
    ):
        for bias in (True, False):
            ours, oracle = ours_class(D, H, bias=bias), oracle_class(D, H, bias=bias)
            shapes = {name: parameter.shape for name, parameter in ours.named_parameters()}
            assert shapes == {name: parameter.shape for name, parameter in oracle.named_parameters()}
            oracle.load_state_dict(ours.state_dict())  # ours → torch
            assert max_error(flatten(ours(x))[0], flatten(oracle(x))[0]) < TOL[torch.float32]
            fresh = ours_class(D, H, bias=bias)
            fresh.load_state_dict(oracle.state_dict())  # torch → ours
            for name, parameter in fresh.state_dict().items():
                assert torch.equal(parameter, oracle.state_dict()[name])


def test_lstm_step_is_the_course_equations():
    """The fused step equals the gates written one by one, with W_f = [W_hh,f | W_ih,f] on [h; x]."""
    torch.manual_seed(3)
    cell = LSTMCell(D, H).double()
    x, h, c = torch.randn(B, D).double(), torch.randn(B, H).double(), torch.randn(B, H).double()
    stacked = torch.cat([h, x], dim=1)  # [h_{t−1}; x_t] for every row of the batch
    w = torch.cat([cell.weight_hh, cell.weight_ih], dim=1)  # (4H, H + D)
    b = cell.bias_ih + cell.bias_hh
    w_i, w_f, w_c, w_o = w.split(H)
    b_i, b_f, b_c, b_o = b.split(H)
    f = torch.sigmoid(stacked @ w_f.T + b_f)
    i = torch.sigmoid(stacked @ w_i.T + b_i)
    o = torch.sigmoid(stacked @ w_o.T + b_o)
    c_tilde = torch.tanh(stacked @ w_c.T + b_c)
    c_next = f * c + i * c_tilde
    h_next = o * torch.tanh(c_next)
    h_ours, c_ours = cell(x, (h, c))
    assert max_error(h_ours, h_next) < TOL[torch.float64]
    assert max_error(c_ours, c_next) < TOL[torch.float64]


def test_gru_step_is_torchs_form_of_the_equations():
    torch.manual_seed(4)
    cell = GRUCell(D, H).double()
    x, h = torch.randn(B, D).double(), torch.randn(B, H).double()
    w_ir, w_iz, w_in = cell.weight_ih.split(H)
    w_hr, w_hz, w_hn = cell.weight_hh.split(H)
    b_ir, b_iz, b_in = cell.bias_ih.split(H)
    b_hr, b_hz, b_hn = cell.bias_hh.split(H)
    r = torch.sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = torch.sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    n = torch.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
    assert max_error(cell(x, h), (1 - z) * n + z * h) < TOL[torch.float64]


def test_steps_match_finite_differences():
    torch.manual_seed(5)
    lstm, gru = LSTMCell(3, 2).double(), GRUCell(3, 2).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lstm_step, (x, h, c, *lstm.parameters()))
    assert torch.autograd.gradcheck(gru_step, (x, h, *gru.parameters()))


def language_models(cell: str, seed: int = 6, dtype=torch.float64):
    """A from-scratch RecurrentLM and a cuDNN-style one sharing the same weights."""
    torch.manual_seed(seed)
    scratch = RecurrentLM(V, D, H, cell=cell, implementation="scratch").to(dtype)
    fused = RecurrentLM(V, D, H, cell=cell, implementation="cudnn").to(dtype)
    assert scratch.state_dict().keys() == fused.state_dict().keys()
    fused.load_state_dict(scratch.state_dict())
    assert isinstance(scratch.rnn, LAYERS[cell][0]) and isinstance(fused.rnn, LAYERS[cell][1])
    return scratch, fused


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_lm_scratch_and_cudnn_agree(dtype, cell):
    scratch, fused = language_models(cell, dtype=dtype)
    inputs = torch.randint(V, (T, B))
    for state in (None, random_state(cell, (1, B, H), dtype)):
        logits, final = scratch(inputs, state)
        logits_ref, final_ref = fused(inputs, state)
        assert logits.shape == (T, B, V)
        assert max_error(logits, logits_ref) < TOL[dtype]
        for part, part_ref in zip(flatten(final), flatten(final_ref), strict=True):
            assert part.shape == (1, B, H)
            assert max_error(part, part_ref) < TOL[dtype]
    sequence = torch.randint(V, (T + 1, B))
    for model in (scratch, fused):
        teacher_forcing_loss(model, sequence).backward()
    for (name, p), (_, p_ref) in zip(scratch.named_parameters(), fused.named_parameters(), strict=True):
        assert max_error(p.grad, p_ref.grad) < TOL[dtype], name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_lm_chunks_with_carried_state_equal_one_pass(cell):
    scratch, _ = language_models(cell)
    inputs = torch.randint(V, (T, B))
    logits, final = scratch(inputs)
    chunks, state = [], None
    for chunk in inputs.split(3):
        chunk_logits, state = scratch(chunk, state)
        chunks.append(chunk_logits)
    assert max_error(torch.cat(chunks), logits) < TOL[torch.float64]
    for part, part_ref in zip(flatten(state), flatten(final), strict=True):
        assert max_error(part, part_ref) < TOL[torch.float64]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_lm_init_state_is_zeros_of_the_right_form(cell):
    scratch, _ = language_models(cell)
    state = scratch.init_state(B)
    assert all(part.shape == (1, B, H) and not part.any() for part in flatten(state))
    assert len(flatten(state)) == (2 if cell == "lstm" else 1)
    inputs = torch.randint(V, (T, B))
    assert torch.equal(scratch(inputs, state)[0], scratch(inputs)[0])


def test_wrong_states_and_arguments_are_rejected():
    x, x_t = torch.randn(T, B, D), torch.randn(B, D)
    with pytest.raises(ValueError, match=r"h must have shape \(1, B, H\)"):
        LSTM(D, H)(x, (torch.randn(B, H), torch.randn(1, B, H)))
    with pytest.raises(ValueError, match=r"c must have shape \(1, B, H\)"):
        LSTM(D, H)(x, (torch.randn(1, B, H), torch.randn(1, B + 1, H)))
    with pytest.raises(ValueError, match="pair"):
        LSTM(D, H)(x, torch.randn(1, B, H))
    with pytest.raises(ValueError, match=r"c must have shape \(B, H\)"):
        LSTMCell(D, H)(x_t, (torch.randn(B, H), torch.randn(B, H + 1)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, B, H\)"):
        GRU(D, H)(x, torch.randn(B, H))
    with pytest.raises(ValueError, match=r"h_prev must have shape \(B, H\)"):
        GRUCell(D, H)(x_t, torch.randn(1, B, H))
    with pytest.raises(ValueError, match="time-major"):
        LSTM(D, H)(x_t)
    with pytest.raises(ValueError, match="D = 5"):
        GRU(D, H)(torch.randn(T, B, D + 1))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        LSTMCell(D, H)(x)
    with pytest.raises(ValueError, match="cell"):
        RecurrentLM(V, D, H, cell="rnn")
    with pytest.raises(ValueError, match="implementation"):
        RecurrentLM(V, D, H, implementation="fused")
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        RecurrentLM(V, D, H)(torch.randint(V, (T,)))
    with pytest.raises(ValueError, match="pair"):
        RecurrentLM(V, D, H, cell="lstm")(torch.randint(V, (T, B)), torch.zeros(1, B, H))
