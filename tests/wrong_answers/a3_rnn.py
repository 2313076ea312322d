"""Plausible mistakes in Assignment 3, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Predicts each character from itself: the targets are not shifted by one.
    "hello": '''
def one_hot(ids, vocab_size):
    ids = np.asarray(ids, dtype=np.int64)
    out = np.zeros((len(ids), vocab_size))
    out[np.arange(len(ids)), ids] = 1.0
    return out


def char_lm_example(text, vocab):
    ids = np.array(vocab.encode(list(text)), dtype=np.int64)
    return one_hot(ids[:-1], len(vocab)), ids[:-1]
''',
    # Uses the course's column-vector weight W_h as is: h_{t-1} W_h^T instead of h_{t-1} W_h.
    "rnn_step": '''
def rnn_step_forward(x, h_prev, W_x, W_h, b):
    return np.tanh(x @ W_x + h_prev @ W_h.T + b)
''',
    # Starts every step from h0: the state is never carried forward.
    "rnn_sequence": '''
def rnn_forward(x, h0, W_x, W_h, b):
    states = []
    for x_t in x:
        states.append(rnn_step_forward(x_t, h0, W_x, W_h, b))
    return np.stack(states)
''',
    # Forgets the second bias vector of torch.nn.RNN (b_1 = b_ih + b_hh).
    "rnn_torch": '''
def rnn_forward_torch(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    states = []
    h = h0
    for x_t in x:
        h = torch.tanh(x_t @ weight_ih.T + h @ weight_hh.T + bias_ih)
        states.append(h)
    return torch.stack(states)
''',
    # Scores each prediction against the token the model has just read, not the next one.
    "teacher_forcing": '''
def teacher_forcing_loss(model, sequence):
    logits, _ = model(sequence[:-1])
    targets = sequence[:-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
''',
    # Multiplies the logits by the temperature instead of dividing by it.
    "sampling": '''
def sampling_probs(logits, temperature=1.0, top_k=None):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    if top_k is not None and top_k < logits.shape[-1]:
        ranked = torch.sort(logits, dim=-1, descending=True, stable=True).indices
        logits = logits.scatter(-1, ranked[..., top_k:], float("-inf"))
    return torch.softmax(logits * temperature, dim=-1)


def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    probs = sampling_probs(logits, temperature, top_k)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
''',
}
