"""Gradient checking, clipping, Jacobian norms and truncated BPTT against torch and closed forms."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from course_lib import gradients
from course_lib.metrics import cross_entropy

V, E, H = 11, 5, 8


def test_numerical_gradient_matches_a_closed_form_and_restores_x():
    rng = np.random.default_rng(0)
    x, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    before = x.copy()
    numeric = gradients.numerical_gradient(lambda z: float(np.sum(c * np.sin(z))), x)
    assert gradients.relative_error(numeric, c * np.cos(x)) < 1e-9
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_sees_changes_made_in_place():
    x = np.array([1.0, 2.0, 3.0])
    numeric = gradients.numerical_gradient(lambda _: float(x @ x), x)
    np.testing.assert_allclose(numeric, 2 * x, rtol=1e-9)


def test_relative_error():
    a = np.array([1.0, -2.0, 3.0])
    assert gradients.relative_error(a, a) == 0.0
    assert gradients.relative_error(a, -a) == pytest.approx(1.0)
    assert gradients.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradients.relative_error(a, a * (1 + 1e-6)) == pytest.approx(0.5e-6, rel=1e-6)


def test_gradient_check_accepts_right_and_rejects_wrong_gradients():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(6)

    def f(z):
        return float(np.sum(z**3))

    assert gradients.gradient_check(f, x, 3 * x**2) < 1e-8
    assert gradients.gradient_check(f, x, 2 * x**2) > 0.1


def _gradient_arrays(seed: int, scale: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(shape) for shape in [(3, 4), (4,), (2, 2, 5)]]


@pytest.mark.parametrize(("scale", "max_norm"), [(1.0, 0.5), (10.0, 3.0), (0.1, 5.0)])
def test_clip_grad_norm_matches_torch_on_numpy_arrays(scale, max_norm):
    grads = _gradient_arrays(2, scale)
    parameters = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for parameter, g in zip(parameters, grads, strict=True):
        parameter.grad = torch.from_numpy(g.copy())
    expected_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    total_norm = gradients.clip_grad_norm(grads, max_norm)
    assert total_norm == pytest.approx(expected_norm.item(), rel=1e-14)
    for parameter, g in zip(parameters, grads, strict=True):
        np.testing.assert_allclose(g, parameter.grad.numpy(), rtol=1e-13, atol=0)


def test_clip_grad_norm_on_tensors_keeps_the_direction():
    grads = [torch.from_numpy(g) for g in _gradient_arrays(3, 5.0)]
    before = torch.cat([g.flatten() for g in grads]).clone()
    total_norm = gradients.clip_grad_norm(grads, 1.0)
    after = torch.cat([g.flatten() for g in grads])
    assert total_norm == pytest.approx(before.norm().item(), rel=1e-14)
    assert after.norm().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(after, before * (after.norm() / before.norm()), rtol=1e-14, atol=0)


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = _gradient_arrays(4, 0.01)
    before = [g.copy() for g in grads]
    gradients.clip_grad_norm(grads, 10.0)
    for g, original in zip(grads, before, strict=True):
        np.testing.assert_array_equal(g, original)


def test_power_of_the_fibonacci_matrix_through_its_eigenvalues():
    W = np.array([[0.0, 1.0], [1.0, 1.0]])
    eigenvalues = np.sort(np.linalg.eigvals(W))
    golden = (1 + np.sqrt(5)) / 2
    np.testing.assert_allclose(eigenvalues, [1 - golden, golden], rtol=1e-14)
    np.testing.assert_allclose(eigenvalues, [-0.618, 1.618], atol=5e-4)
    np.testing.assert_allclose(np.abs(eigenvalues) ** 10, [0.00813, 122.99], rtol=1e-3)
    power = gradients.power_by_eigendecomposition(W, 10)
    np.testing.assert_allclose(power, [[34, 55], [55, 89]], rtol=1e-12)
    np.testing.assert_allclose(power, np.linalg.matrix_power(W, 10), rtol=1e-12)


def test_with_spectral_radius():
    W = np.random.default_rng(5).standard_normal((6, 6))
    scaled = gradients.with_spectral_radius(W, 0.9)
    assert np.max(np.abs(np.linalg.eigvals(scaled))) == pytest.approx(0.9, rel=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "linear"])
def test_jacobian_norms_match_autograd(nonlinearity):
    steps, seed = 6, 7
    W_h = gradients.with_spectral_radius(np.random.default_rng(8).standard_normal((H, H)), 1.2)
    norms = gradients.jacobian_norms(W_h, steps, nonlinearity, input_scale=0.7, seed=seed)

    rng = np.random.default_rng(seed)
    h0 = torch.from_numpy(0.5 * rng.standard_normal(H))
    drive = torch.from_numpy(0.7 * rng.standard_normal((steps, H)))
    f = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda a: a}[nonlinearity]

    def run(h: torch.Tensor, n: int) -> torch.Tensor:
        for u in drive[:n]:
            h = f(h @ torch.from_numpy(W_h) + u)
        return h

    expected = [
        torch.linalg.matrix_norm(torch.autograd.functional.jacobian(lambda h, n=n: run(h, n), h0), 2).item()
        for n in range(steps + 1)
    ]
    np.testing.assert_allclose(norms, expected, rtol=1e-12)


def test_jacobian_norms_vanish_below_and_grow_above_spectral_radius_one():
    W = np.random.default_rng(9).standard_normal((16, 16))
    small = gradients.jacobian_norms(gradients.with_spectral_radius(W, 0.5), 30, "tanh")
    large = gradients.jacobian_norms(gradients.with_spectral_radius(W, 1.5), 30, "linear", input_scale=0.0)
    assert small[-1] < 1e-6 and np.all(np.diff(small[5:]) < 0)
    assert large[-1] > 1e4
    assert large[-1] ** (1 / 30) == pytest.approx(1.5, rel=0.1)


class _TinyLM(torch.nn.Module):
    """A language model with the course interface ``forward(inputs (T, B), state) -> (logits, state)``."""

    def __init__(self, cell: str = "rnn"):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, E)
        self.rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM}[cell](E, H)
        self.output = torch.nn.Linear(H, V)

    def forward(self, inputs, state=None):
        hidden, state = self.rnn(self.embedding(inputs), state)
        return self.output(hidden), state


def _data(T: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(0, V, (T + 1, batch), generator=torch.Generator().manual_seed(seed))
    return tokens[:-1], tokens[1:]


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("k", [12, 50])
def test_truncation_at_least_the_length_is_full_bptt(cell, k):
    torch.manual_seed(0)
    model = _TinyLM(cell)
    reference = copy.deepcopy(model)
    inputs, targets = _data(12, 3, seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    losses, _ = gradients.train_truncated_bptt(model, optimizer, inputs, targets, k)

    logits, _ = reference(inputs)
    loss = cross_entropy(logits, targets)
    loss.backward()
    assert losses == [pytest.approx(loss.item(), rel=1e-6)]
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_truncated_gradients_stop_at_the_segment_boundary(cell):
    torch.manual_seed(2)
    model = _TinyLM(cell)
    reference = copy.deepcopy(model)
    inputs, targets = _data(10, 2, seed=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    losses, state = gradients.train_truncated_bptt(model, optimizer, inputs, targets, k=4)
    assert len(losses) == 3 and not any(part.requires_grad for part in state)

    with torch.no_grad():
        logits, _ = reference(inputs)
        _, boundary_state = reference(inputs[:8])
    expected_losses = [cross_entropy(logits[s : s + 4], targets[s : s + 4]).item() for s in (0, 4, 8)]
    assert losses == pytest.approx(expected_losses, rel=1e-5)

    last_logits, _ = reference(inputs[8:], boundary_state)
    cross_entropy(last_logits, targets[8:]).backward()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)


def test_truncated_bptt_updates_once_per_segment_and_clips():
    torch.manual_seed(4)
    model = _TinyLM()
    reference = copy.deepcopy(model)
    inputs, targets = _data(9, 2, seed=5)
    lr, max_norm = 0.5, 0.1
    losses, _ = gradients.train_truncated_bptt(
        model, torch.optim.SGD(model.parameters(), lr=lr), inputs, targets, k=3, max_norm=max_norm
    )

    state, expected = None, []
    for start in (0, 3, 6):
        logits, state = reference(inputs[start : start + 3], state)
        loss = cross_entropy(logits, targets[start : start + 3])
        reference.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
        with torch.no_grad():
            for p in reference.parameters():
                p -= lr * p.grad
        state = state.detach()
        expected.append(loss.item())
    assert losses == pytest.approx(expected, rel=1e-5)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_truncation_length_must_be_positive():
    model = _TinyLM()
    inputs, targets = _data(4, 1, seed=6)
    with pytest.raises(ValueError, match="k must be"):
        gradients.train_truncated_bptt(model, torch.optim.SGD(model.parameters(), lr=0.1), inputs, targets, 0)
