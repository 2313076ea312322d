"""Plausible mistakes in Assignment 4, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Forgets a transpose: the gradient to h_{t-1} goes through W_h instead of W_hᵀ (same shape).
    "step_backward": '''
def rnn_step_backward(dh_next, cache):
    x, h_prev, W_x, W_h, h_next, nonlinearity = cache
    if nonlinearity == "tanh":
        da = dh_next * (1.0 - h_next**2)
    else:
        da = dh_next * (h_next > 0)
    return da @ W_x.T, da @ W_h, x.T @ da, h_prev.T @ da, da.sum(axis=0)
''',
    # Backpropagates only the loss of each step itself: the gradient from step t+1 is dropped.
    "backward": '''
def rnn_backward(dh, cache):
    x_first, _, W_x, W_h, _, _ = cache[0]
    dx = np.zeros((len(cache), *x_first.shape))
    dW_x, dW_h, db = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros(W_h.shape[1])
    dh_prev = np.zeros_like(dh[0])
    for t in reversed(range(len(cache))):
        dx[t], dh_prev, dW_x_t, dW_h_t, db_t = reference.rnn_step_backward(dh[t], cache[t])
        dW_x += dW_x_t
        dW_h += dW_h_t
        db += db_t
    return dx, dh_prev, dW_x, dW_h, db
''',
    # One-sided differences (f(x + eps) - f(x)) / eps: an error of order eps instead of eps².
    "gradient_check": '''
def numerical_gradient(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    f_x = f(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        grad[index] = (f(x) - f_x) / eps
        x[index] = original
    return grad


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def gradient_check(f, x, analytic, eps=1e-6):
    return relative_error(analytic, numerical_gradient(f, x, eps))
''',
    # Clips every gradient by its own norm instead of by the global norm of all of them.
    "clipping": '''
def clip_grad_norm(grads, max_norm):
    total_norm = float(np.sqrt(sum(float((g**2).sum()) for g in grads)))
    for g in grads:
        norm = float(np.sqrt((g**2).sum()))
        if norm > max_norm:
            g *= max_norm / (norm + 1e-6)
    return total_norm
''',
    # Starts every segment from the initial state instead of carrying the (detached) state over.
    "truncated_bptt": '''
def train_truncated_bptt(model, optimizer, inputs, targets, k, state=None):
    losses = []
    for start in range(0, inputs.shape[0], k):
        logits, final = model(inputs[start : start + k], state)
        loss = cross_entropy(logits, targets[start : start + k])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if isinstance(final, tuple):
        return losses, tuple(part.detach() for part in final)
    return losses, final.detach()
''',
}
