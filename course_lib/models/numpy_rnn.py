"""A vanilla recurrent network in NumPy, with backpropagation through time written by hand.

The course writes the recurrence for one column vector as

    h_t = tanh(W_h h_{t-1} + W_e e_t + b_1),        ŷ_t = softmax(U h_t + b_2).

Code works on a batch of ``B`` row vectors at once, so every product is transposed::

    h_t = tanh(x_t W_x + h_{t-1} W_h + b)           x_t: (B, D), h_t: (B, H)

with ``W_x = W_eᵀ`` of shape ``(D, H)``, the code's ``W_h`` equal to the course's ``W_hᵀ`` of shape
``(H, H)``, and ``b = b_1`` of shape ``(H,)``. Sequences are time-major: ``(T, B, ...)``.

Every ``*_forward`` function returns its output and a ``cache`` of what the matching ``*_backward``
function needs; every ``*_backward`` function takes the gradient of the loss with respect to the
output (``dout``, same shape as the output) and returns the gradients with respect to the inputs
and parameters, each the shape of the array it is the gradient of.
"""

from __future__ import annotations

import numpy as np

NONLINEARITIES = ("tanh", "relu", "linear")

StepCache = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]


def activate(pre_activation: np.ndarray, nonlinearity: str) -> np.ndarray:
    """The elementwise nonlinearity ``f``: ``tanh``, ``relu`` (``max(0, a)``) or ``linear`` (``a``)."""
    if nonlinearity == "tanh":
        return np.tanh(pre_activation)
    if nonlinearity == "relu":
        return np.maximum(pre_activation, 0.0)
    if nonlinearity == "linear":
        return pre_activation
    raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")


def activation_derivative(h: np.ndarray, nonlinearity: str) -> np.ndarray:
    """``f'(a)`` written with the output ``h = f(a)``: ``1 - h²`` (tanh), ``[h > 0]`` (relu), 1 (linear)."""
    if nonlinearity == "tanh":
        return 1.0 - h**2
    if nonlinearity == "relu":
        return (h > 0).astype(h.dtype)
    if nonlinearity == "linear":
        return np.ones_like(h)
    raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")


def rnn_step_forward(
    x: np.ndarray,
    h_prev: np.ndarray,
    W_x: np.ndarray,
    W_h: np.ndarray,
    b: np.ndarray,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, StepCache]:
    """One step of the recurrence, ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``.

    This is the course's ``h_t = tanh(W_h h_{t-1} + W_e e_t + b_1)`` for a batch of row vectors:
    ``W_x = W_eᵀ``, code ``W_h`` = course ``W_hᵀ``, ``b = b_1``. With ``nonlinearity="relu"`` the
    tanh becomes ``max(0, ·)`` (the IRNN of Le et al., 2015); ``"linear"`` leaves it out.

    Args:
        x: inputs at this step, shape ``(B, D)``.
        h_prev: previous hidden state ``h_{t-1}``, shape ``(B, H)``.
        W_x: input-to-hidden weights, shape ``(D, H)``.
        W_h: hidden-to-hidden weights, shape ``(H, H)``.
        b: bias, shape ``(H,)``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"linear"``.

    Returns:
        ``h_next`` of shape ``(B, H)`` and the cache for :func:`rnn_step_backward`.
    """
    h_next = activate(x @ W_x + h_prev @ W_h + b, nonlinearity)
    return h_next, (x, h_prev, W_x, W_h, h_next, nonlinearity)


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray,
    W_x: np.ndarray,
    W_h: np.ndarray,
    b: np.ndarray,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, list[StepCache]]:
    """Run the recurrence over a whole sequence, ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)`` for t = 1..T.

    Args:
        x: inputs, shape ``(T, B, D)``.
        h0: initial hidden state, shape ``(B, H)``.
        W_x, W_h, b: shared by every step, shapes ``(D, H)``, ``(H, H)``, ``(H,)``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"linear"``.

    Returns:
        all hidden states ``h_1..h_T``, shape ``(T, B, H)``, and the list of the ``T`` step caches.
    """
    T, B, _ = x.shape
    h = np.empty((T, B, h0.shape[1]), dtype=np.result_type(x, h0, W_x, W_h, b))
    caches = []
    h_prev = h0
    for t in range(T):
        h_prev, step_cache = rnn_step_forward(x[t], h_prev, W_x, W_h, b, nonlinearity)
        h[t] = h_prev
        caches.append(step_cache)
    return h, caches


def rnn_step_backward(
    dh_next: np.ndarray, cache: StepCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of one step ``h_t = f(a_t)``, ``a_t = x_t W_x + h_{t-1} W_h + b``.

    With ``da = dh_next ⊙ f'(a_t)`` (for tanh ``f'(a_t) = 1 - h_t²``)::

        dx = da W_xᵀ,   dh_prev = da W_hᵀ,   dW_x = x_tᵀ da,   dW_h = h_{t-1}ᵀ da,   db = Σ_batch da.

    Args:
        dh_next: gradient of the loss with respect to ``h_t``, shape ``(B, H)``.
        cache: from :func:`rnn_step_forward`.

    Returns:
        ``dx (B, D)``, ``dh_prev (B, H)``, ``dW_x (D, H)``, ``dW_h (H, H)``, ``db (H,)``.
    """
    x, h_prev, W_x, W_h, h_next, nonlinearity = cache
    da = dh_next * activation_derivative(h_next, nonlinearity)
    return da @ W_x.T, da @ W_h.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_backward(
    dh: np.ndarray, cache: list[StepCache]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time over a sequence from :func:`rnn_forward`.

    ``dh[t]`` is the gradient that reaches ``h_t`` directly from the loss at step ``t`` (through the
    output layer). Going backwards from ``t = T``, the total gradient at ``h_t`` adds the gradient
    that flows back from step ``t + 1``::

        δ_t = dh[t] + ∂J/∂h_t (through h_{t+1}),

    and because ``W_x``, ``W_h`` and ``b`` are shared by all steps their gradients are sums over
    time, e.g. ``dW_h = Σ_t h_{t-1}ᵀ (δ_t ⊙ f'(a_t))``.

    Args:
        dh: upstream gradients for all hidden states, shape ``(T, B, H)``.
        cache: the list of step caches from :func:`rnn_forward`.

    Returns:
        ``dx (T, B, D)``, ``dh0 (B, H)``, ``dW_x (D, H)``, ``dW_h (H, H)``, ``db (H,)``.
    """
    x_first, _, W_x, W_h, _, _ = cache[0]
    dx = np.empty((len(cache), *x_first.shape), dtype=np.result_type(dh, x_first))
    dW_x, dW_h = np.zeros_like(W_x), np.zeros_like(W_h)
    db = np.zeros(W_h.shape[1], dtype=W_h.dtype)
    dh_from_next = np.zeros_like(dh[0])
    for t in reversed(range(len(cache))):
        dx[t], dh_from_next, dW_x_t, dW_h_t, db_t = rnn_step_backward(dh[t] + dh_from_next, cache[t])
        dW_x += dW_x_t
        dW_h += dW_h_t
        db += db_t
    return dx, dh_from_next, dW_x, dW_h, db


def embedding_forward(ids: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """Look up the embeddings ``e_t = E[w_t]``: ids ``(T, B)`` and ``E (V, D)`` give ``(T, B, D)``."""
    return E[ids], (ids, E.shape[0])


def embedding_backward(dout: np.ndarray, cache: tuple[np.ndarray, int]) -> np.ndarray:
    """Gradient of the embedding table, ``dE[v] = Σ_{(t, b): w_{t,b} = v} dout[t, b]``, shape ``(V, D)``."""
    ids, vocab_size = cache
    dE = np.zeros((vocab_size, dout.shape[-1]), dtype=dout.dtype)
    np.add.at(dE, ids.reshape(-1), dout.reshape(-1, dout.shape[-1]))
    return dE


def temporal_affine_forward(
    h: np.ndarray, U: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Output scores at every step, ``s_t = h_t U + c`` (course: ``U h_t + b_2``).

    Args:
        h: hidden states, shape ``(T, B, H)``.
        U: output weights, shape ``(H, V)``.
        c: output bias, shape ``(V,)``.

    Returns:
        scores of shape ``(T, B, V)`` and the cache for :func:`temporal_affine_backward`.
    """
    return h @ U + c, (h, U)


def temporal_affine_backward(
    dscores: np.ndarray, cache: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``s_t = h_t U + c``: ``dh (T, B, H)``, ``dU (H, V)`` summed over steps, ``dc (V,)``."""
    h, U = cache
    dU = h.reshape(-1, h.shape[-1]).T @ dscores.reshape(-1, dscores.shape[-1])
    return dscores @ U.T, dU, dscores.sum(axis=(0, 1))


def softmax_cross_entropy(scores: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy ``J = -(1/N) Σ log softmax(s)[target]`` over the ``N = T·B`` positions.

    Its gradient is ``dJ/ds = (softmax(s) - onehot(target)) / N``.

    Args:
        scores: unnormalised scores, shape ``(T, B, V)``.
        targets: token ids, shape ``(T, B)``.

    Returns:
        the loss in nats and ``dscores`` of shape ``(T, B, V)``.
    """
    shifted = scores - scores.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    flat_log_probs = log_probs.reshape(-1, scores.shape[-1])
    flat_targets = targets.reshape(-1)
    count = flat_targets.size
    rows = np.arange(count)
    loss = -flat_log_probs[rows, flat_targets].mean()
    dscores = np.exp(flat_log_probs)
    dscores[rows, flat_targets] -= 1.0
    return float(loss), (dscores / count).reshape(scores.shape)


def init_rnn_lm(
    vocab_size: int, embed_dim: int, hidden_dim: int, seed: int = 0, recurrent_scale: float = 1.0
) -> dict[str, np.ndarray]:
    """Random float64 parameters of a NumPy RNN language model.

    ``E (V, D)`` embeddings, ``W_x (D, H)``, ``W_h (H, H)``, ``b (H,)`` recurrence, ``U (H, V)``,
    ``c (V,)`` output layer. Weights are Gaussian with variance ``1 / fan_in``; ``W_h`` is
    multiplied by ``recurrent_scale`` (larger values make gradients explode sooner).
    """
    rng = np.random.default_rng(seed)
    return {
        "E": rng.standard_normal((vocab_size, embed_dim)),
        "W_x": rng.standard_normal((embed_dim, hidden_dim)) / np.sqrt(embed_dim),
        "W_h": recurrent_scale * rng.standard_normal((hidden_dim, hidden_dim)) / np.sqrt(hidden_dim),
        "b": np.zeros(hidden_dim),
        "U": rng.standard_normal((hidden_dim, vocab_size)) / np.sqrt(hidden_dim),
        "c": np.zeros(vocab_size),
    }


def rnn_lm_loss(
    params: dict[str, np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    h0: np.ndarray | None = None,
    nonlinearity: str = "tanh",
) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
    """Loss and gradients of the NumPy RNN language model on one batch.

    Forward: ``e_t = E[w_t]``, ``h_t = f(e_t W_x + h_{t-1} W_h + b)``, ``s_t = h_t U + c``,
    ``J = mean cross-entropy(s_t, w_{t+1})``; backward runs the same steps in reverse.

    Args:
        params: as made by :func:`init_rnn_lm`.
        inputs: token ids, shape ``(T, B)``.
        targets: next-token ids, shape ``(T, B)``.
        h0: initial hidden state ``(B, H)``; zeros if ``None``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"linear"``.

    Returns:
        the loss, the gradients (same keys and shapes as ``params``) and the last hidden state ``(B, H)``.
    """
    if h0 is None:
        h0 = np.zeros((inputs.shape[1], params["W_h"].shape[0]))
    x, embed_cache = embedding_forward(inputs, params["E"])
    h, rnn_cache = rnn_forward(x, h0, params["W_x"], params["W_h"], params["b"], nonlinearity)
    scores, affine_cache = temporal_affine_forward(h, params["U"], params["c"])
    loss, dscores = softmax_cross_entropy(scores, targets)

    dh, dU, dc = temporal_affine_backward(dscores, affine_cache)
    dx, _, dW_x, dW_h, db = rnn_backward(dh, rnn_cache)
    grads = {"E": embedding_backward(dx, embed_cache), "W_x": dW_x, "W_h": dW_h, "b": db, "U": dU, "c": dc}
    return loss, grads, h[-1]
