"""Tests of the long-range benchmarks, the sequence models built for them, and recurrent Jacobian norms.

Oracles: the definitions of the two tasks checked entry by entry, their baselines computed
numerically from an actual predictor, torch.nn's layers against the course's with copied
weights, a linear recurrence whose Jacobians are exact matrix powers, and central differences.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.long_range import (
    ADDING_BASELINE_MSE,
    ADDING_SOLVED_MSE,
    COPY_ALPHABET,
    COPY_BLANK,
    COPY_GO,
    COPY_INPUT_TOKENS,
    COPY_OUTPUT_CLASSES,
    COPY_SOLVED_ACCURACY,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from course_lib.gradients import recurrent_jacobian_norms
from course_lib.models.long_range import (
    IRNN_INPUT_STD,
    KINDS,
    SequenceModel,
    make_recurrent_layer,
    train_long_range,
)
from course_lib.models.lstm import GRU, LSTM
from course_lib.models.rnn import RNN

pytestmark = pytest.mark.usefixtures("one_thread")



# ---------------------------------------------------------------------- the adding problem


@pytest.mark.parametrize("seq_len", [2, 3, 10, 51])
def test_adding_problem_layout(seq_len):
    inputs, targets = adding_problem(seq_len, 200, seed=3)
    assert inputs.shape == (seq_len, 200, 2) and targets.shape == (200,)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    half = seq_len // 2
    assert (markers[:half].sum(0) == 1).all(), "exactly one marker in the first half"
    assert (markers[half:].sum(0) == 1).all(), "exactly one marker in the second half"
    assert torch.allclose(targets, (values * markers).sum(0))


def test_adding_problem_markers_cover_each_half():
    inputs, _ = adding_problem(8, 4000, seed=0)
    positions = inputs[..., 1].nonzero()[:, 0]
    assert set(positions.tolist()) == set(range(8))


def test_adding_problem_baseline_is_one_sixth():
    _, targets = adding_problem(4, 400_000, seed=1)
    mse = ((targets - 1.0) ** 2).mean().item()
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert mse == pytest.approx(ADDING_BASELINE_MSE, abs=2e-3)
    assert targets.mean().item() == pytest.approx(1.0, abs=3e-3)  # 1 is the best constant answer
    assert ADDING_SOLVED_MSE < ADDING_BASELINE_MSE / 10


def test_adding_problem_is_deterministic_by_seed():
    a, b, c = (adding_problem(20, 8, seed=s) for s in (5, 5, 6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    generator = torch.Generator().manual_seed(5)
    first, second = adding_problem(20, 8, generator), adding_problem(20, 8, generator)
    assert torch.equal(first[0], a[0]) and not torch.equal(second[0], a[0])


@pytest.mark.parametrize("args", [(1, 4), (0, 4), (10, 0), (10, -1), (2.5, 4)])
def test_adding_problem_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        adding_problem(*args)


def test_adding_problem_rejects_a_bad_seed():
    with pytest.raises(TypeError):
        adding_problem(10, 4, seed="0")


# ---------------------------------------------------------------------- the copy-memory task


@pytest.mark.parametrize("delay, k", [(1, 1), (1, 10), (7, 3), (30, 10)])
def test_copy_memory_layout(delay, k):
    inputs, targets = copy_memory(delay, 50, seed=2, num_symbols=k)
    length = delay + 2 * k
    assert inputs.shape == targets.shape == (length, 50)
    assert inputs.dtype == targets.dtype == torch.long
    symbols = inputs[:k]
    assert ((symbols >= 1) & (symbols <= COPY_ALPHABET)).all()
    assert (inputs[k : k + delay - 1] == COPY_BLANK).all(), "T − 1 blanks after the symbols"
    assert (inputs[k + delay - 1] == COPY_GO).all(), "then the go marker"
    assert (inputs[k + delay :] == COPY_BLANK).all(), "then K blanks"
    assert (targets[: delay + k] == COPY_BLANK).all()
    assert torch.equal(targets[-k:], symbols), "the last K targets are the symbols, in order"
    assert inputs.max() < COPY_INPUT_TOKENS and targets.max() < COPY_OUTPUT_CLASSES


def test_copy_memory_symbols_are_uniform():
    inputs, _ = copy_memory(1, 20_000, seed=0, num_symbols=4)
    counts = torch.bincount(inputs[:4].flatten(), minlength=COPY_ALPHABET + 1)[1:].double()
    assert (counts / counts.sum() - 1 / COPY_ALPHABET).abs().max() < 0.01


@pytest.mark.parametrize("delay, k", [(1, 1), (10, 3), (100, 10)])
def test_copy_memory_baseline_is_the_loss_of_a_predictor_without_memory(delay, k):
    inputs, targets = copy_memory(delay, 64, seed=4, num_symbols=k)
    # Blank with certainty until go has been seen, then uniform over the 8 symbols.
    after_go = torch.cumsum(inputs == COPY_GO, dim=0) - (inputs == COPY_GO).long()
    logits = torch.full((*inputs.shape, COPY_OUTPUT_CLASSES), -1e9, dtype=torch.float64)
    logits[..., COPY_BLANK] = torch.where(after_go.bool(), -1e9, 0.0)
    logits[..., 1:] = torch.where(after_go.bool(), 0.0, -1e9).unsqueeze(-1)
    loss = F.cross_entropy(logits.reshape(-1, COPY_OUTPUT_CLASSES), targets.reshape(-1)).item()
    assert loss == pytest.approx(copy_memory_baseline(delay, k), rel=1e-12)
    assert copy_memory_baseline(delay, k) == pytest.approx(k * math.log(8) / (delay + 2 * k))
    assert 1 / COPY_ALPHABET < COPY_SOLVED_ACCURACY <= 1


def test_copy_memory_is_deterministic_by_seed():
    a, b, c = (copy_memory(5, 8, seed=s, num_symbols=4) for s in (1, 1, 2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


@pytest.mark.parametrize("delay, batch_size, k", [(0, 4, 10), (5, 0, 10), (5, 4, 0), (-1, 4, 3)])
def test_copy_memory_rejects_bad_sizes(delay, batch_size, k):
    with pytest.raises(ValueError):
        copy_memory(delay, batch_size, 0, num_symbols=k)


@pytest.mark.parametrize("delay, k", [(0, 10), (5, 0)])
def test_copy_memory_baseline_rejects_bad_sizes(delay, k):
    with pytest.raises(ValueError):
        copy_memory_baseline(delay, k)


# ---------------------------------------------------------------------- layers and models


@pytest.mark.parametrize("implementation, rnn_class", [("scratch", RNN), ("cudnn", nn.RNN)])
def test_irnn_initialization(implementation, rnn_class):
    torch.manual_seed(0)
    layer = make_recurrent_layer("irnn", 40, 64, implementation)
    assert isinstance(layer, rnn_class) and layer.nonlinearity == "relu"
    assert torch.equal(layer.weight_hh_l0, torch.eye(64))
    assert (layer.bias_ih_l0 == 0).all() and (layer.bias_hh_l0 == 0).all()
    assert layer.weight_ih_l0.std().item() == pytest.approx(IRNN_INPUT_STD, rel=0.05)
    assert layer.weight_ih_l0.mean().abs().item() < 1e-4


def test_plain_rnn_keeps_torch_initialization():
    layer = make_recurrent_layer("rnn", 3, 16, "scratch")
    assert layer.nonlinearity == "tanh"
    assert layer.weight_hh_l0.abs().max() <= 1 / math.sqrt(16)


@pytest.mark.parametrize(
    "kind, scratch_class, cudnn_class",
    [("rnn", RNN, nn.RNN), ("irnn", RNN, nn.RNN), ("lstm", LSTM, nn.LSTM), ("gru", GRU, nn.GRU)],
)
def test_layer_classes_and_parameter_names(kind, scratch_class, cudnn_class):
    scratch = make_recurrent_layer(kind, 3, 5, "scratch")
    cudnn = make_recurrent_layer(kind, 3, 5, "cudnn")
    assert isinstance(scratch, scratch_class) and isinstance(cudnn, cudnn_class)
    shapes = {name: p.shape for name, p in scratch.named_parameters()}
    assert shapes == {name: p.shape for name, p in cudnn.named_parameters()}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("readout", ["last", "all"])
def test_scratch_and_cudnn_models_agree_with_copied_weights(kind, readout):
    torch.manual_seed(1)
    scratch = SequenceModel(kind, 4, 6, 3, readout, implementation="scratch").double()
    cudnn = SequenceModel(kind, 4, 6, 3, readout, implementation="cudnn").double()
    cudnn.load_state_dict(scratch.state_dict())
    x = torch.randn(9, 5, 4, dtype=torch.float64)
    outputs = [model(x) for model in (scratch, cudnn)]
    assert outputs[0].shape == ((5, 3) if readout == "last" else (9, 5, 3))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-12)
    for out in outputs:
        (out**2).sum().backward()
    cudnn_grads = dict(cudnn.named_parameters())
    for name, parameter in scratch.named_parameters():
        assert torch.allclose(parameter.grad, cudnn_grads[name].grad, atol=1e-10), name


def test_token_inputs_are_one_hot_encoded():
    torch.manual_seed(0)
    model = SequenceModel("gru", COPY_INPUT_TOKENS, 8, COPY_OUTPUT_CLASSES, "all")
    ids = torch.randint(COPY_INPUT_TOKENS, (7, 3))
    one_hot = F.one_hot(ids, COPY_INPUT_TOKENS).float()
    assert torch.allclose(model(ids), model(one_hot))
    with pytest.raises(ValueError):
        model(torch.full((7, 3), COPY_INPUT_TOKENS))
    with pytest.raises(ValueError):
        model(torch.zeros(7, 3, 2, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "lstmm"},
        {"implementation": "cuda"},
        {"hidden_size": 0},
        {"input_size": 0},
    ],
)
def test_make_recurrent_layer_rejects_bad_arguments(kwargs):
    arguments = {"kind": "lstm", "input_size": 2, "hidden_size": 4, "implementation": "cudnn", **kwargs}
    with pytest.raises(ValueError):
        make_recurrent_layer(**arguments)


def test_sequence_model_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SequenceModel("lstm", 2, 4, 1, readout="first")
    with pytest.raises(ValueError):
        SequenceModel("lstm", 2, 4, 0)


# ---------------------------------------------------------------------- training


def test_a_small_lstm_beats_the_adding_baseline():
    torch.manual_seed(0)
    model = SequenceModel("lstm", 2, 32, 1, "last")
    curve = train_long_range(
        model, "adding", 10, steps=300, lr=1e-2, seed=0, device="cpu", log_every=100, test_size=500
    )
    assert curve.steps == [100, 200, 300] and len(curve.train_loss) == 3
    assert curve.baseline == pytest.approx(1 / 6)
    assert curve.metric == curve.test_loss
    assert curve.metric < 0.5 * ADDING_BASELINE_MSE
    assert curve.train_loss[-1] < curve.train_loss[0]
    assert curve.solved == (curve.metric < ADDING_SOLVED_MSE)


def test_training_is_deterministic():
    curves = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SequenceModel("gru", COPY_INPUT_TOKENS, 16, COPY_OUTPUT_CLASSES, "all")
        curves.append(
            train_long_range(
                model, "copy", 2, steps=30, seed=3, device="cpu", log_every=10, num_symbols=2, test_size=50
            )
        )
    assert curves[0].train_loss == curves[1].train_loss and curves[0].metric == curves[1].metric
    assert curves[0].baseline == pytest.approx(copy_memory_baseline(2, 2))
    assert 0 <= curves[0].metric <= 1 and curves[0].steps == [10, 20, 30]


def test_training_can_stop_when_solved(monkeypatch):
    # With a threshold that every model passes, the run stops at the first log.
    import course_lib.models.long_range as long_range

    monkeypatch.setattr(long_range, "ADDING_SOLVED_MSE", math.inf)
    torch.manual_seed(0)
    model = SequenceModel("lstm", 2, 8, 1, "last")
    curve = train_long_range(
        model, "adding", 6, 100, seed=0, device="cpu", log_every=5, stop_when_solved=True
    )
    assert curve.solved and curve.solved_at == 5 and curve.steps == [5]


def test_train_long_range_rejects_mismatched_models_and_arguments():
    adding_model = SequenceModel("rnn", 2, 4, 1, "last")
    copy_model = SequenceModel("rnn", COPY_INPUT_TOKENS, 4, COPY_OUTPUT_CLASSES, "all")
    with pytest.raises(ValueError):
        train_long_range(adding_model, "copy", 5, 1, device="cpu")
    with pytest.raises(ValueError):
        train_long_range(copy_model, "adding", 5, 1, device="cpu")
    with pytest.raises(ValueError):
        train_long_range(adding_model, "add", 5, 1, device="cpu")
    with pytest.raises(ValueError):
        train_long_range(adding_model, "adding", 5, 0, device="cpu")
    with pytest.raises(ValueError):
        train_long_range(SequenceModel("rnn", 3, 4, 1, "last"), "adding", 5, 1, device="cpu")


# ---------------------------------------------------------------------- Jacobian norms


class LinearRNN(nn.Module):
    """h_t = W h_{t−1} + x_t (no nonlinearity), with torch.nn's recurrent interface."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[1], self.weight.shape[0]) if h is None else h[0]
        outputs = []
        for x_t in x:
            h = h @ self.weight.T + x_t
            outputs.append(h)
        return torch.stack(outputs), h.unsqueeze(0)


def test_jacobian_norms_of_a_linear_recurrence_are_norms_of_matrix_powers():
    torch.manual_seed(0)
    W = torch.randn(5, 5, dtype=torch.float64) / 2
    norms = recurrent_jacobian_norms(LinearRNN(W), torch.randn(12, 5, dtype=torch.float64))
    expected = [np.linalg.norm(np.linalg.matrix_power(W.numpy(), n), 2) for n in range(13)]
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


@pytest.mark.parametrize("implementation", ["scratch", "cudnn"])
def test_relu_rnn_in_its_linear_region_gives_matrix_powers(implementation):
    # Positive weights, inputs and state: relu is the identity, so ∂h_T/∂h_k = W_hh^{T−k}.
    layer = make_recurrent_layer("irnn", 3, 4, implementation).double()
    generator = torch.Generator().manual_seed(0)
    W = torch.rand(4, 4, generator=generator, dtype=torch.float64) / 3
    with torch.no_grad():
        layer.weight_hh_l0.copy_(W)
        layer.weight_ih_l0.copy_(torch.rand(4, 3, generator=generator, dtype=torch.float64))
    x = torch.rand(8, 1, 3, generator=generator, dtype=torch.float64)
    h0 = torch.rand(1, 1, 4, generator=generator, dtype=torch.float64)
    norms = recurrent_jacobian_norms(layer, x, h0)
    expected = [np.linalg.norm(np.linalg.matrix_power(W.numpy(), n), 2) for n in range(9)]
    np.testing.assert_allclose(norms, expected, rtol=1e-10)
    assert all(p.grad is None for p in layer.parameters()), "no gradients are left on the parameters"


def _numerical_jacobian_norm(layer, x, state, k, eps=1e-6):
    """‖∂s_T/∂s_k‖₂ by central differences: perturb each entry of s_k, rerun steps k+1 … T."""

    def run_from(s_k):
        with torch.no_grad():
            _, final = layer(x[k:], s_k) if k < len(x) else (None, s_k)
        parts = final if isinstance(final, tuple) else (final,)
        return torch.cat([p.reshape(-1) for p in parts])

    with torch.no_grad():
        _, s_k = layer(x[:k], state) if k > 0 else (None, state)
    is_tuple = isinstance(s_k, tuple)
    flat = torch.cat([p.reshape(-1) for p in (s_k if is_tuple else (s_k,))])
    hidden = state[0].shape[-1] if is_tuple else state.shape[-1]
    columns = []
    for i in range(len(flat)):
        shifted = []
        for sign in (1, -1):
            v = flat.clone()
            v[i] += sign * eps
            parts = tuple(
                v[j * hidden : (j + 1) * hidden].view(1, 1, hidden) for j in range(len(v) // hidden)
            )
            shifted.append(run_from(parts if is_tuple else parts[0]))
        columns.append((shifted[0] - shifted[1]) / (2 * eps))
    return np.linalg.norm(torch.stack(columns, dim=1).numpy(), 2)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("implementation", ["scratch", "cudnn"])
def test_jacobian_norms_match_finite_differences(kind, implementation):
    torch.manual_seed(2)
    layer = make_recurrent_layer(kind, 3, 4, implementation).double()
    x = torch.randn(6, 1, 3, dtype=torch.float64)
    h0 = torch.randn(1, 1, 4, dtype=torch.float64) * 0.5
    state = (h0, torch.randn(1, 1, 4, dtype=torch.float64) * 0.5) if kind == "lstm" else h0
    norms = recurrent_jacobian_norms(layer, x, state)
    assert norms.shape == (7,) and norms[0] == pytest.approx(1.0)
    for k in (0, 2, 5):
        assert norms[6 - k] == pytest.approx(_numerical_jacobian_norm(layer, x, state, k), rel=1e-7)


def test_jacobian_norms_start_from_zeros_by_default_and_check_shapes():
    torch.manual_seed(0)
    layer = nn.LSTM(2, 3)
    x = torch.randn(5, 2)
    zeros = (torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))
    np.testing.assert_allclose(recurrent_jacobian_norms(layer, x), recurrent_jacobian_norms(layer, x, zeros))
    with pytest.raises(ValueError):
        recurrent_jacobian_norms(layer, torch.randn(5, 2, 2))
    with pytest.raises(ValueError):
        recurrent_jacobian_norms(layer, x, (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
