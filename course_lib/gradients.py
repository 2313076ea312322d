"""Tools for the gradients of recurrent networks: checking, clipping, vanishing, truncating.

* :func:`numerical_gradient`, :func:`relative_error`, :func:`gradient_check` compare a gradient
  written by hand with central differences ``(f(x + ε) - f(x - ε)) / 2ε``.
* :func:`clip_grad_norm` rescales all gradients together when their global norm is too large
  (Pascanu, Mikolov and Bengio, 2013).
* :func:`jacobian_norms` measures how ``‖∂h_t/∂h_k‖`` shrinks or grows with ``t - k``;
  :func:`power_by_eigendecomposition` shows why: ``W^n = Q Λ^n Q⁻¹``.
* :func:`train_truncated_bptt` trains a language model on a long sequence in segments of ``k``
  steps, detaching the hidden state between segments (truncated backpropagation through time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from course_lib.metrics import cross_entropy
from course_lib.models.numpy_rnn import activate, activation_derivative
from course_lib.training import State, detach_state

CLIP_EPSILON = 1e-6
"""Added to the norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does."""


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference estimate of ``∂f/∂x`` for a scalar function ``f``.

    For every entry ``x_i``: ``∂f/∂x_i ≈ (f(x + ε e_i) - f(x - ε e_i)) / 2ε``, with an error of order
    ``ε²``. ``x`` is changed in place (so ``f`` may read it from its closure rather than from its
    argument) and every entry is restored afterwards. Use float64: in float32 the rounding error
    ``~1e-7 / ε`` swamps the estimate.

    Args:
        f: maps the array ``x`` (any shape) to a float.
        x: the point, a float array; modified during the call and restored.
        eps: the step ``ε``.

    Returns:
        an array of the shape of ``x``.
    """
    grad = np.zeros_like(x, dtype=float)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        f_plus = f(x)
        x[index] = original - eps
        f_minus = f(x)
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a - b‖ / max(‖a‖ + ‖b‖, 1e-300)`` with Frobenius norms: 0 for equal arrays, 1 for ``b = -a``.

    Taken over the whole array rather than entry by entry, so entries that are zero up to
    rounding do not blow it up. In float64 a correct gradient checked with central differences
    usually gives ``< 1e-8``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def gradient_check(
    f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray, eps: float = 1e-6
) -> float:
    """Relative error between the gradient ``analytic`` and the central-difference gradient of ``f`` at ``x``.

    Returns:
        :func:`relative_error` of the two gradients; about ``1e-9`` or less when ``analytic`` is right.
    """
    return relative_error(analytic, numerical_gradient(f, x, eps))


def _squared_norm(g: np.ndarray | torch.Tensor) -> float:
    if isinstance(g, torch.Tensor):
        return float(g.detach().double().pow(2).sum())
    return float(np.sum(np.square(g, dtype=float)))


def clip_grad_norm(grads: Sequence[np.ndarray | torch.Tensor], max_norm: float) -> float:
    """Clip gradients in place by their global norm (Pascanu et al., 2013).

    With ``‖g‖ = sqrt(Σ_i ‖g_i‖²)`` over all the arrays, when ``‖g‖ > max_norm`` every ``g_i`` is
    multiplied by ``max_norm / (‖g‖ + 1e-6)``: the direction of the whole gradient is kept, only
    its length shrinks to (just under) ``max_norm``. This is what ``torch.nn.utils.clip_grad_norm_``
    does with the ``.grad`` of parameters.

    Args:
        grads: NumPy arrays or torch tensors, changed in place.
        max_norm: the largest norm allowed.

    Returns:
        the global norm before clipping.
    """
    total_norm = float(np.sqrt(sum(_squared_norm(g) for g in grads)))
    if total_norm > max_norm:
        scale = max_norm / (total_norm + CLIP_EPSILON)
        for g in grads:
            g *= scale
    return total_norm


def power_by_eigendecomposition(W: np.ndarray, n: int) -> np.ndarray:
    """``W^n = Q Λ^n Q⁻¹`` from the eigendecomposition ``W = Q Λ Q⁻¹`` (``W`` diagonalisable).

    Each eigenvalue is raised to the power ``n``: those with ``|λ| < 1`` vanish, those with
    ``|λ| > 1`` explode. For ``W = [[0, 1], [1, 1]]``, ``Λ = diag(-0.618, 1.618)`` and ``W^n``
    holds Fibonacci numbers.
    """
    eigenvalues, Q = np.linalg.eig(W)
    power = Q @ np.diag(eigenvalues**n) @ np.linalg.inv(Q)
    return power.real if np.isrealobj(W) else power


def with_spectral_radius(W: np.ndarray, radius: float) -> np.ndarray:
    """``W`` rescaled so that its largest eigenvalue modulus (spectral radius) is ``radius``."""
    return W * (radius / np.max(np.abs(np.linalg.eigvals(W))))


def jacobian_norms(
    W_h: np.ndarray, steps: int, nonlinearity: str = "tanh", input_scale: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Spectral norms ``‖∂h_n/∂h_0‖₂`` for ``n = 0..steps`` along one run of a vanilla RNN.

    The network is ``h_n = f(h_{n-1} W_h + u_n)`` (row vectors), where the input drive
    ``u_n = x_n W_x + b`` is drawn as Gaussian noise of standard deviation ``input_scale`` and
    ``h_0`` is Gaussian with standard deviation 0.5. By the chain rule, computed here by hand in
    NumPy (the tests check it against ``torch.autograd``)::

        ∂h_n/∂h_0 = Π_{m=n..1} ∂h_m/∂h_{m-1},   ∂h_m/∂h_{m-1} = diag(f'(a_m)) W_hᵀ,

    so the norm behaves like ``ρ(W_h)^n`` times the product of the derivatives ``f'`` (at most 1
    for tanh): it vanishes for spectral radius ``ρ < 1`` and may explode for ``ρ > 1``.

    Args:
        W_h: recurrent weights, shape ``(H, H)``; see :func:`with_spectral_radius`.
        steps: the largest distance ``n = t - k``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"linear"``.
        input_scale: standard deviation of the input drive (0 for no input).
        seed: seed of the random ``h_0`` and inputs.

    Returns:
        an array of shape ``(steps + 1,)``; entry 0 is ``‖I‖₂ = 1``.
    """
    rng = np.random.default_rng(seed)
    hidden_size = W_h.shape[0]
    h = 0.5 * rng.standard_normal(hidden_size)
    drive = input_scale * rng.standard_normal((steps, hidden_size))
    jacobian = np.eye(hidden_size)
    norms = [1.0]
    for u in drive:
        h = activate(h @ W_h + u, nonlinearity)
        jacobian = (activation_derivative(h, nonlinearity)[:, None] * W_h.T) @ jacobian
        norms.append(float(np.linalg.norm(jacobian, 2)))
    return np.array(norms)


def truncated_bptt_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    state: State = None,
    max_norm: float | None = None,
) -> tuple[float, State]:
    """One update on one segment: forward from ``state``, backward within the segment, step.

    Args:
        model: a language model, ``model(inputs (T, B), state) -> (logits (T, B, V), state)``.
        optimizer: over the model's parameters.
        inputs, targets: token ids of the segment, shape ``(k, B)``.
        state: the state at the start of the segment (``None``: the model's initial state).
        max_norm: if given, gradients are clipped to this global norm before the step.

    Returns:
        the segment's mean cross-entropy (nats) and its final state, detached.
    """
    optimizer.zero_grad()
    logits, state = model(inputs, state)
    loss = cross_entropy(logits, targets)
    loss.backward()
    if max_norm is not None:
        clip_grad_norm([p.grad for p in model.parameters() if p.grad is not None], max_norm)
    optimizer.step()
    return loss.item(), detach_state(state)


def train_truncated_bptt(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    k: int,
    state: State = None,
    max_norm: float | None = None,
) -> tuple[list[float], State]:
    """Truncated BPTT over one long sequence: an update every ``k`` steps, the state carried over.

    Segment ``s`` covers steps ``s k .. s k + k - 1`` (the last one may be shorter). The hidden state
    flows forward from one segment into the next, so the model sees the whole past, but it is
    detached at every boundary, so gradients flow back at most ``k`` steps. With ``k ≥ T`` this is
    a single update with the full BPTT gradient.

    Args:
        model: a language model, ``model(inputs (T, B), state) -> (logits (T, B, V), state)``.
        optimizer: over the model's parameters.
        inputs, targets: token ids, shape ``(T, B)``.
        k: truncation length (steps per segment).
        state: initial state (``None``: the model's initial state).
        max_norm: if given, gradients are clipped to this global norm before every step.

    Returns:
        the mean loss of every segment, in order, and the final (detached) state.
    """
    if k < 1:
        raise ValueError(f"the truncation length k must be at least 1, got {k}")
    losses = []
    for start in range(0, inputs.shape[0], k):
        loss, state = truncated_bptt_step(
            model, optimizer, inputs[start : start + k], targets[start : start + k], state, max_norm
        )
        losses.append(loss)
    return losses, state


def recurrent_jacobian_norms(layer: torch.nn.Module, inputs: torch.Tensor, state: State = None) -> np.ndarray:
    """Spectral norms ``‖∂s_T/∂s_k‖₂`` for ``T − k = 0 … T`` along one run of a torch recurrent layer.

    ``s_t`` is everything the layer carries from step ``t`` to step ``t + 1``: ``h_t`` for an RNN
    or a GRU, ``[h_t; c_t]`` (length 2H) for an LSTM. The layer may be any module with
    torch.nn's time-major interface, ``layer(x (T, B, D), state) -> (output, state)`` with the
    state a tensor (1, B, H) or a tuple of them: ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` or the
    course's ``RNN`` / ``LSTM`` / ``GRU``. It is run one step at a time so that every ``s_k``
    is a node of the autograd graph, and

        ∂s_T/∂s_k = Π_{m=T..k+1} ∂s_m/∂s_{m−1}

    is obtained for every k from one backward pass: the sequence is copied S times
    (S = the size of ``s_t``), copy b back-propagates the b-th entry of its ``s_T``, and the
    gradient that reaches its ``s_k`` is row b of the Jacobian. For a vanilla RNN this is the
    product of ``diag(f'(a_m)) W_h`` that Chapter 4 measures with :func:`jacobian_norms`; for an
    LSTM the cell path contributes ``diag(f_m)`` to every factor.

    Args:
        layer: the recurrent layer (its parameters are not changed, and no ``.grad`` is written).
        inputs: one input sequence x_1 … x_T, shape (T, D) or (T, 1, D).
        state: the initial state s_0 of this one sequence, in the layer's form ((1, 1, H), or a
            pair of them for an LSTM); zeros when ``None``.

    Returns:
        an array of shape (T + 1,): entry ``n`` is ``‖∂s_T/∂s_{T−n}‖₂`` (entry 0 is ``‖I‖₂ = 1``).
    """
    if inputs.dim() == 2:
        inputs = inputs.unsqueeze(1)
    if inputs.dim() != 3 or inputs.shape[1] != 1 or inputs.shape[0] < 1:
        raise ValueError(
            f"inputs must be one sequence of shape (T, D) or (T, 1, D), got {tuple(inputs.shape)}"
        )
    if state is None:
        with torch.no_grad():
            _, probe = layer(inputs[:1])
        is_tuple = isinstance(probe, (tuple, list))
        parts = [torch.zeros_like(part[:, :1]) for part in (probe if is_tuple else [probe])]
    else:
        is_tuple = isinstance(state, (tuple, list))
        parts = list(state) if is_tuple else [state]
    if any(part.dim() != 3 or part.shape[:2] != (1, 1) for part in parts):
        raise ValueError("state must be the state of one sequence: tensors of shape (1, 1, H)")
    sizes = [part.shape[-1] for part in parts]
    copies = sum(sizes)  # S: one copy of the sequence per entry of s_T
    with torch.enable_grad():
        current = [
            part.detach().expand(1, copies, size).clone().requires_grad_()
            for part, size in zip(parts, sizes, strict=True)
        ]
        states = [current]  # states[k] holds the parts of s_k, each (1, S, H_i)
        x = inputs.expand(-1, copies, -1).contiguous()
        for t in range(inputs.shape[0]):
            _, new = layer(x[t : t + 1], tuple(current) if is_tuple else current[0])
            current = list(new) if is_tuple else [new]
            states.append(current)
        final = torch.cat([part[0] for part in states[-1]], dim=1)  # (S, S): row b is copy b's s_T
        objective = final.diagonal().sum()
        flat = [part for step in states for part in step]
        grads = torch.autograd.grad(objective, flat, allow_unused=True)
    norms = []
    for k in range(len(states)):
        rows = [
            torch.zeros(copies, size, dtype=final.dtype) if g is None else g[0].detach().cpu()
            for g, size in zip(grads[k * len(parts) : (k + 1) * len(parts)], sizes, strict=True)
        ]
        jacobian = torch.cat(rows, dim=1).double()  # ∂s_T/∂s_k, shape (S, S)
        norms.append(float(torch.linalg.matrix_norm(jacobian, ord=2)))
    return np.array(norms[::-1])
