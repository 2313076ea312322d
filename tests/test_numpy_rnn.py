"""The NumPy RNN against torch.nn (copied weights), autograd and finite differences, all in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.gradients import numerical_gradient, relative_error
from course_lib.models import numpy_rnn

T, B, D, H, V = 5, 3, 4, 6, 7


def _rnn_arrays(seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((T, B, D)),
        "h0": rng.standard_normal((B, H)),
        "W_x": scale * rng.standard_normal((D, H)),
        "W_h": scale * rng.standard_normal((H, H)),
        "b": scale * rng.standard_normal(H),
    }


def _torch_rnn(arrays: dict[str, np.ndarray], nonlinearity: str) -> torch.nn.RNN:
    """``torch.nn.RNN`` computes ``h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``: ``W_ih = W_xᵀ``."""
    rnn = torch.nn.RNN(D, H, nonlinearity=nonlinearity, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(arrays["W_x"].T))
        rnn.weight_hh_l0.copy_(torch.from_numpy(arrays["W_h"].T))
        rnn.bias_ih_l0.copy_(torch.from_numpy(arrays["b"]))
        rnn.bias_hh_l0.zero_()
    return rnn


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_step_forward_matches_torch_rnn_cell(nonlinearity):
    a = _rnn_arrays(0)
    cell = torch.nn.RNNCell(D, H, nonlinearity=nonlinearity, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(a["W_x"].T))
        cell.weight_hh.copy_(torch.from_numpy(a["W_h"].T))
        cell.bias_ih.copy_(torch.from_numpy(a["b"]))
        cell.bias_hh.zero_()
        expected = cell(torch.from_numpy(a["x"][0]), torch.from_numpy(a["h0"])).numpy()
    h_next, _ = numpy_rnn.rnn_step_forward(a["x"][0], a["h0"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    assert h_next.shape == (B, H)
    np.testing.assert_allclose(h_next, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_forward_matches_torch_rnn(nonlinearity):
    a = _rnn_arrays(1)
    with torch.no_grad():
        expected, _ = _torch_rnn(a, nonlinearity)(torch.from_numpy(a["x"]), torch.from_numpy(a["h0"])[None])
    h, cache = numpy_rnn.rnn_forward(a["x"], a["h0"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    assert h.shape == (T, B, H) and len(cache) == T
    np.testing.assert_allclose(h, expected.numpy(), rtol=0, atol=1e-13)


def test_unknown_nonlinearity_is_rejected():
    a = _rnn_arrays(0)
    with pytest.raises(ValueError, match="nonlinearity"):
        numpy_rnn.rnn_step_forward(a["x"][0], a["h0"], a["W_x"], a["W_h"], a["b"], "sigmoid")


def _step_loss(a: dict[str, np.ndarray], dh_next: np.ndarray, nonlinearity: str) -> float:
    h_next, _ = numpy_rnn.rnn_step_forward(a["x"], a["h_prev"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    return float(np.sum(h_next * dh_next))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_step_backward_matches_finite_differences(nonlinearity):
    sequence = _rnn_arrays(2)
    a = {**sequence, "x": sequence["x"][0], "h_prev": sequence["h0"]}
    dh_next = np.random.default_rng(3).standard_normal((B, H))
    _, cache = numpy_rnn.rnn_step_forward(a["x"], a["h_prev"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    gradients = numpy_rnn.rnn_step_backward(dh_next, cache)
    for name, analytic in zip(["x", "h_prev", "W_x", "W_h", "b"], gradients, strict=True):
        assert analytic.shape == a[name].shape
        numeric = numerical_gradient(lambda _: _step_loss(a, dh_next, nonlinearity), a[name])
        assert relative_error(analytic, numeric) < 1e-7, name


def _sequence_loss(a: dict[str, np.ndarray], dh: np.ndarray, nonlinearity: str) -> float:
    h, _ = numpy_rnn.rnn_forward(a["x"], a["h0"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    return float(np.sum(h * dh))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_backward_matches_finite_differences(nonlinearity):
    a = _rnn_arrays(4)
    dh = np.random.default_rng(5).standard_normal((T, B, H))
    _, cache = numpy_rnn.rnn_forward(a["x"], a["h0"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    gradients = dict(zip(["x", "h0", "W_x", "W_h", "b"], numpy_rnn.rnn_backward(dh, cache), strict=True))
    for name, analytic in gradients.items():
        numeric = numerical_gradient(lambda _: _sequence_loss(a, dh, nonlinearity), a[name])
        assert relative_error(analytic, numeric) < 1e-7, name


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_backward_matches_autograd(nonlinearity):
    a = _rnn_arrays(6)
    dh = np.random.default_rng(7).standard_normal((T, B, H))
    _, cache = numpy_rnn.rnn_forward(a["x"], a["h0"], a["W_x"], a["W_h"], a["b"], nonlinearity)
    dx, dh0, dW_x, dW_h, db = numpy_rnn.rnn_backward(dh, cache)

    rnn = _torch_rnn(a, nonlinearity)
    x = torch.from_numpy(a["x"]).requires_grad_()
    h0 = torch.from_numpy(a["h0"])[None].requires_grad_()
    h, _ = rnn(x, h0)
    (h * torch.from_numpy(dh)).sum().backward()
    atol = 1e-10
    np.testing.assert_allclose(dx, x.grad.numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(dh0, h0.grad[0].numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(dW_x, rnn.weight_ih_l0.grad.numpy().T, rtol=0, atol=atol)
    np.testing.assert_allclose(dW_h, rnn.weight_hh_l0.grad.numpy().T, rtol=0, atol=atol)
    np.testing.assert_allclose(db, rnn.bias_ih_l0.grad.numpy(), rtol=0, atol=atol)


def test_weight_gradient_is_the_sum_of_the_steps_gradients():
    a = _rnn_arrays(8)
    dh = np.zeros((T, B, H))
    dh[-1] = np.random.default_rng(9).standard_normal((B, H))
    _, cache = numpy_rnn.rnn_forward(a["x"], a["h0"], a["W_x"], a["W_h"], a["b"])
    _, _, _, dW_h, _ = numpy_rnn.rnn_backward(dh, cache)
    total, dh_next = np.zeros_like(dW_h), dh[-1]
    for step_cache in reversed(cache):
        _, dh_next, _, dW_h_step, _ = numpy_rnn.rnn_step_backward(dh_next, step_cache)
        total += dW_h_step
    np.testing.assert_allclose(dW_h, total, rtol=1e-14, atol=1e-14)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(10)
    scores = 3 * rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    loss, dscores = numpy_rnn.softmax_cross_entropy(scores, targets)
    scores_t = torch.from_numpy(scores).requires_grad_()
    expected = F.cross_entropy(scores_t.reshape(-1, V), torch.from_numpy(targets).reshape(-1))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-14)
    np.testing.assert_allclose(dscores, scores_t.grad.numpy(), rtol=0, atol=1e-15)


class _TorchRNNLM(torch.nn.Module):
    """The NumPy language model's twin in torch: embedding, ``nn.RNN``, linear output layer."""

    def __init__(self, params: dict[str, np.ndarray], nonlinearity: str):
        super().__init__()
        self.embedding = torch.nn.Embedding.from_pretrained(torch.from_numpy(params["E"]), freeze=False)
        self.rnn = _torch_rnn({key: params[key] for key in ("W_x", "W_h", "b")}, nonlinearity)
        self.output = torch.nn.Linear(H, V, dtype=torch.float64)
        with torch.no_grad():
            self.output.weight.copy_(torch.from_numpy(params["U"].T))
            self.output.bias.copy_(torch.from_numpy(params["c"]))

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, state = self.rnn(self.embedding(inputs), state)
        return self.output(h), state


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_language_model_gradients_match_autograd(nonlinearity):
    params = numpy_rnn.init_rnn_lm(V, D, H, seed=11)
    rng = np.random.default_rng(12)
    params["b"], params["c"] = rng.standard_normal(H), rng.standard_normal(V)
    inputs, targets = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    h0 = rng.standard_normal((B, H))
    loss, grads, h_last = numpy_rnn.rnn_lm_loss(params, inputs, targets, h0, nonlinearity)
    assert set(grads) == set(params) and all(grads[k].shape == params[k].shape for k in params)

    model = _TorchRNNLM(params, nonlinearity)
    logits, state = model(torch.from_numpy(inputs), torch.from_numpy(h0)[None])
    expected = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(targets).reshape(-1))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-13)
    np.testing.assert_allclose(h_last, state[0].detach().numpy(), rtol=0, atol=1e-13)
    torch_grads = {
        "E": model.embedding.weight.grad,
        "W_x": model.rnn.weight_ih_l0.grad.T,
        "W_h": model.rnn.weight_hh_l0.grad.T,
        "b": model.rnn.bias_ih_l0.grad,
        "U": model.output.weight.grad.T,
        "c": model.output.bias.grad,
    }
    for name, grad in torch_grads.items():
        np.testing.assert_allclose(grads[name], grad.numpy(), rtol=0, atol=1e-12, err_msg=name)


def test_language_model_gradients_match_finite_differences():
    params = numpy_rnn.init_rnn_lm(V, D, H, seed=13)
    rng = np.random.default_rng(14)
    inputs, targets = rng.integers(0, V, size=(T, B)), rng.integers(0, V, size=(T, B))
    _, grads, _ = numpy_rnn.rnn_lm_loss(params, inputs, targets)

    def loss(_: np.ndarray) -> float:
        return numpy_rnn.rnn_lm_loss(params, inputs, targets)[0]

    for name in params:
        numeric = numerical_gradient(loss, params[name])
        assert relative_error(grads[name], numeric) < 1e-7, name


def test_sgd_on_the_numpy_language_model_lowers_the_loss():
    params = numpy_rnn.init_rnn_lm(V, D, H, seed=15)
    rng = np.random.default_rng(16)
    inputs = rng.integers(0, V, size=(12, 2))
    targets = np.roll(inputs, -1, axis=0)
    first, _, _ = numpy_rnn.rnn_lm_loss(params, inputs, targets)
    for _ in range(50):
        loss, grads, _ = numpy_rnn.rnn_lm_loss(params, inputs, targets)
        for name in params:
            params[name] -= 0.5 * grads[name]
    assert loss < 0.5 * first
