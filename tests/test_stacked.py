"""Tests of course_lib.models.stacked against torch.nn.RNN / LSTM / GRU with copied weights.

Oracles: PyTorch's multi-layer, bidirectional layers (forward values and autograd gradients,
on padded batches through pack_padded_sequence), each sequence run alone without padding,
finite differences (gradcheck), and index arithmetic written out by hand.
"""

import pytest
import torch
from torch import nn

from course_lib.models.stacked import (
    StackedGRU,
    StackedLSTM,
    StackedRNN,
    bidirectional,
    last_layer_state,
    reverse_padded,
    run_direction,
    run_packed,
)

pytestmark = pytest.mark.usefixtures("one_thread")

T, B, D, H = 6, 4, 3, 5
LENGTHS = torch.tensor([4, 6, 1, 3])
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
# Largest difference allowed from torch.nn, relative to max(1, largest |value|). The measured
# errors are at most 1.1e-15 (float64) and 6.1e-7 (float32), gradients included.
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}



def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1)).item()


def flatten(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def pair(cell: str, num_layers: int, bidirectional: bool, dtype=torch.float64, **options):
    """A torch.nn layer and a StackedRNN holding the same weights."""
    oracle = TORCH_LAYERS[cell](D, H, num_layers, bidirectional=bidirectional, **options).to(dtype)
    ours = StackedRNN(D, H, num_layers, cell=cell, bidirectional=bidirectional, **options).to(dtype)
    ours.load_state_dict(oracle.state_dict())
    return ours, oracle


def run(module: nn.Module, x: torch.Tensor, state, lengths):
    """Outputs, and the gradients of a loss using all of them w.r.t. x, the state and every parameter."""
    module.zero_grad()
    x = x.clone().requires_grad_()
    state_parts = [part.clone().requires_grad_() for part in flatten(state)]
    state = tuple(state_parts) if len(state_parts) == 2 else state_parts[0]
    if isinstance(module, StackedRNN):
        output, final = module(x, state, lengths)
    else:
        output, final = run_packed(module, x, lengths, state) if lengths is not None else module(x, state)
    weights = torch.linspace(-1, 1, output.numel(), dtype=x.dtype).view_as(output)
    outputs = [output, *flatten(final)]
    loss = (output * weights).sum() + sum((part**2).sum() for part in outputs[1:])
    loss.backward()
    grads = {"x": x.grad, **{f"state{i}": part.grad for i, part in enumerate(state_parts)}}
    grads.update({name: parameter.grad for name, parameter in module.named_parameters()})
    return [out.detach() for out in outputs], grads


def random_state(cell: str, rows: int, dtype: torch.dtype):
    h = torch.randn(rows, B, H, dtype=dtype)
    return (h, torch.randn(rows, B, H, dtype=dtype)) if cell == "lstm" else h


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("bidirectional_", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_matches_torch_forward_and_gradients(cell, num_layers, bidirectional_, with_lengths):
    torch.manual_seed(0)
    dtype = torch.float64
    ours, oracle = pair(cell, num_layers, bidirectional_, dtype)
    x = torch.randn(T, B, D, dtype=dtype)
    state = random_state(cell, num_layers * (2 if bidirectional_ else 1), dtype)
    lengths = LENGTHS if with_lengths else None
    (outs, grads), (outs_ref, grads_ref) = run(ours, x, state, lengths), run(oracle, x, state, lengths)
    assert [o.shape for o in outs] == [o.shape for o in outs_ref]
    assert outs[0].shape == (T, B, (2 if bidirectional_ else 1) * H)
    for out, out_ref in zip(outs, outs_ref, strict=True):
        assert max_error(out, out_ref) < TOL[dtype]
    assert grads.keys() == grads_ref.keys()
    for name, grad_ref in grads_ref.items():
        assert max_error(grads[name], grad_ref) < TOL[dtype], name


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_matches_torch_in_float32(cell):
    torch.manual_seed(1)
    ours, oracle = pair(cell, 2, True, torch.float32)
    x = torch.randn(T, B, D)
    state = random_state(cell, 4, torch.float32)
    for lengths in (None, LENGTHS):
        (outs, grads), (outs_ref, grads_ref) = run(ours, x, state, lengths), run(oracle, x, state, lengths)
        for out, out_ref in zip(outs, outs_ref, strict=True):
            assert max_error(out, out_ref) < TOL[torch.float32]
        for name, grad_ref in grads_ref.items():
            assert max_error(grads[name], grad_ref) < TOL[torch.float32], name


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_padded_batch_equals_each_sequence_alone(cell):
    """With lengths, sequence b's outputs and final states are those of running it unpadded."""
    torch.manual_seed(2)
    ours = StackedRNN(D, H, 2, cell=cell, bidirectional=True).double()
    x = torch.randn(T, B, D, dtype=torch.float64)
    output, final = ours(x, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        alone, alone_final = ours(x[:n, b : b + 1])
        assert max_error(output[:n, b], alone[:, 0]) < 1e-12
        assert output[n:, b].abs().sum() == 0
        for part, alone_part in zip(flatten(final), flatten(alone_final), strict=True):
            assert max_error(part[:, b], alone_part[:, 0]) < 1e-12


def test_state_dict_is_torch_compatible():
    oracle = nn.LSTM(D, H, 3, bidirectional=True)
    ours = StackedLSTM(D, H, 3, bidirectional=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in oracle.state_dict().items()
    }
    oracle.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, D)
    assert torch.allclose(ours(x)[0], oracle(x)[0], atol=1e-6)
    assert list(dict(StackedGRU(D, H, 2, bias=False).named_parameters())) == list(
        dict(nn.GRU(D, H, 2, bias=False).named_parameters())
    )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_same_seed_gives_torchs_initial_weights(cell):
    torch.manual_seed(8)
    oracle = TORCH_LAYERS[cell](D, 16, 2, bidirectional=True)
    torch.manual_seed(8)
    ours = StackedRNN(D, 16, 2, cell=cell, bidirectional=True)
    expected = oracle.state_dict()
    for name, parameter in ours.state_dict().items():
        assert torch.equal(parameter, expected[name]), name
        assert parameter.abs().max() <= 1 / 16**0.5, name


def test_dropout_is_torchs_between_layers_in_training_mode():
    """Same seed, same dropout masks: torch's CPU layers draw them exactly as F.dropout does."""
    ours, oracle = pair("lstm", 3, True, torch.float32, dropout=0.5)
    x = torch.randn(T, B, D)
    torch.manual_seed(5)
    expected, _ = oracle(x)
    torch.manual_seed(5)
    output, _ = ours(x)
    assert max_error(output, expected) < 1e-5
    ours.eval()
    oracle.eval()
    assert max_error(ours(x)[0], oracle(x)[0]) < 1e-5
    assert not torch.allclose(ours(x)[0], output)


def test_dropout_leaves_the_input_and_the_last_layer_alone():
    """p = 1 zeroes the input of layer 1 only: layer 0's states are kept, layer 1 reads zeros."""
    torch.manual_seed(3)
    ours = StackedRNN(D, H, 2, cell="gru", bidirectional=True, dropout=1.0)
    x = torch.randn(T, B, D)
    _, final_train = ours(x, lengths=LENGTHS)
    ours.eval()
    output_eval, final_eval = ours(x, lengths=LENGTHS)
    assert torch.equal(final_train[:2], final_eval[:2])
    ours.train()
    top = StackedRNN(2 * H, H, 1, cell="gru", bidirectional=True)
    top.load_state_dict({k.replace("_l1", "_l0"): v for k, v in ours.state_dict().items() if "_l1" in k})
    output_top, final_top = top(torch.zeros(T, B, 2 * H), lengths=LENGTHS)
    output_train, final_train = ours(x, lengths=LENGTHS)
    assert torch.allclose(output_train, output_top, atol=1e-7)
    assert torch.allclose(final_train[2:], final_top, atol=1e-7)
    assert not torch.allclose(output_train, output_eval)
    single = StackedRNN(D, H, 1, cell="gru", dropout=0.9)
    assert torch.equal(single(x)[0], single.eval()(x)[0])


def test_reverse_padded():
    x = torch.arange(T * B).view(T, B)
    reversed_ = reverse_padded(x, LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        for t in range(T):
            assert reversed_[t, b] == (x[n - 1 - t, b] if t < n else x[t, b])
    assert torch.equal(reverse_padded(reversed_, LENGTHS), x)
    features = torch.randn(T, B, 2, 3)
    assert torch.equal(reverse_padded(reverse_padded(features, LENGTHS), LENGTHS), features)
    first = features[..., 0, 0]
    assert torch.equal(reverse_padded(first, LENGTHS), reverse_padded(features, LENGTHS)[..., 0, 0])
    assert torch.equal(reverse_padded(features), features.flip(0))
    assert torch.equal(reverse_padded(features, torch.full((B,), T)), features.flip(0))


def test_bidirectional_wrapper_reads_the_right_context():
    """With a running sum as the recurrence, h→_t = Σ_{s≤t} x_s and h←_t = Σ_{t≤s<n} x_s."""

    def running_sum(x, lengths):
        mask = (torch.arange(x.shape[0]).unsqueeze(1) < lengths).unsqueeze(-1)
        outputs = (x * mask).cumsum(0) * mask
        return outputs, outputs[lengths - 1, torch.arange(x.shape[1])]

    x = torch.randn(T, B, 2, dtype=torch.float64)
    outputs, (final_forward, final_backward) = bidirectional(running_sum, running_sum, x, LENGTHS)
    assert outputs.shape == (T, B, 4)
    for b, n in enumerate(LENGTHS.tolist()):
        for t in range(n):
            assert torch.allclose(outputs[t, b, :2], x[: t + 1, b].sum(0))
            assert torch.allclose(outputs[t, b, 2:], x[t:n, b].sum(0))
        assert outputs[n:, b].abs().sum() == 0
        assert torch.allclose(final_forward[b], x[:n, b].sum(0))
        assert torch.allclose(final_backward[b], x[:n, b].sum(0))


def test_run_direction_gradients_match_finite_differences():
    torch.manual_seed(4)
    weights = tuple(torch.randn(4 * 2, size, dtype=torch.float64, requires_grad=True) for size in (2, 2))
    biases = tuple(torch.randn(4 * 2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    h0, c0 = (torch.randn(3, 2, dtype=torch.float64, requires_grad=True) for _ in range(2))

    def f(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        output, (h, c) = run_direction("lstm", x, (h0, c0), (w_ih, w_hh, b_ih, b_hh), torch.tensor([4, 1, 3]))
        return output, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, *weights, *biases))


def test_last_layer_state_is_the_forward_end_and_the_backward_start():
    torch.manual_seed(6)
    lstm = StackedLSTM(D, H, 2, bidirectional=True)
    output, (h_n, _) = lstm(torch.randn(T, B, D), lengths=LENGTHS)
    summary = last_layer_state(h_n, 2)
    assert summary.shape == (B, 2 * H)
    for b, n in enumerate(LENGTHS.tolist()):
        assert torch.equal(summary[b, :H], output[n - 1, b, :H])
        assert torch.equal(summary[b, H:], output[0, b, H:])
    assert torch.equal(last_layer_state(h_n, 1), h_n[-1])


def test_relu_rnn_and_no_bias_match_torch():
    torch.manual_seed(7)
    oracle = nn.RNN(D, H, 2, nonlinearity="relu", bias=False, bidirectional=True)
    ours = StackedRNN(D, H, 2, nonlinearity="relu", bias=False, bidirectional=True)
    ours.load_state_dict(oracle.state_dict())
    x = torch.randn(T, B, D)
    assert max_error(ours(x, lengths=LENGTHS)[0], run_packed(oracle, x, LENGTHS)[0]) < 1e-6


def test_bad_input_raises_clear_errors():
    lstm = StackedLSTM(D, H, 2, bidirectional=True)
    x = torch.randn(T, B, D)
    with pytest.raises(ValueError, match="cell"):
        StackedRNN(D, H, cell="transformer")
    with pytest.raises(ValueError, match="num_layers"):
        StackedRNN(D, H, 0)
    with pytest.raises(ValueError, match="dropout"):
        StackedRNN(D, H, 2, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        StackedRNN(D, H, cell="gru", nonlinearity="relu")
    with pytest.raises(ValueError, match="one length per sequence"):
        lstm(x, lengths=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="between 1 and T"):
        lstm(x, lengths=torch.tensor([1, 2, 3, T + 1]))
    with pytest.raises(ValueError, match="between 1 and T"):
        lstm(x, lengths=torch.tensor([0, 2, 3, 4]))
    with pytest.raises(ValueError, match="integers"):
        lstm(x, lengths=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="pair"):
        lstm(x, torch.zeros(4, B, H))
    with pytest.raises(ValueError, match="shape"):
        lstm(x, (torch.zeros(2, B, H), torch.zeros(2, B, H)))
    with pytest.raises(ValueError, match="D = 3"):
        lstm(torch.randn(T, B, D + 1))
    with pytest.raises(ValueError, match="1 or 2"):
        last_layer_state(torch.zeros(4, B, H), 3)
