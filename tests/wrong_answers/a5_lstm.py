"""Plausible mistakes in Assignment 5, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Cuts the gates in the order the equations are usually written (f, i, g, o), not PyTorch's i, f, g, o.
    "lstm_step": '''
def lstm_step(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = x @ weight_ih.T + h_prev @ weight_hh.T
    if bias_ih is not None:
        gates = gates + bias_ih + bias_hh
    f, i, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c
''',
    # Applies the reset gate before the product with the state, as in the chapter's form of the
    # GRU: (r ⊙ h_{t-1}) W_hn^T + b_hn instead of r ⊙ (h_{t-1} W_hn^T + b_hn).
    "gru_step": '''
def gru_step(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    if bias_ih is None:
        bias_ih = bias_hh = torch.zeros(weight_ih.shape[0], dtype=x.dtype)
    input_r, input_z, input_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=1)
    W_hr, W_hz, W_hn = weight_hh.chunk(3, dim=0)
    b_hr, b_hz, b_hn = bias_hh.chunk(3)
    r = torch.sigmoid(input_r + h_prev @ W_hr.T + b_hr)
    z = torch.sigmoid(input_z + h_prev @ W_hz.T + b_hz)
    n = torch.tanh(input_n + (r * h_prev) @ W_hn.T + b_hn)
    return (1 - z) * n + z * h_prev
''',
    # Records the state before each step instead of after it: returns h_0 .. h_{T-1}, not h_1 .. h_T.
    "run_sequence": '''
def run_sequence(step, x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    weights = (weight_ih, weight_hh, bias_ih, bias_hh)
    outputs = []
    for x_t in x:
        if isinstance(state, tuple):
            outputs.append(state[0])
            state = step(x_t, *state, *weights)
        else:
            outputs.append(state)
            state = step(x_t, state, *weights)
    return torch.stack(outputs), state
''',
    # Calls detach() but throws its result away: detach is not in place, so the gradient still
    # flows back through every chunk.
    "chunks": '''
def run_in_chunks(layer, x, chunk_len, state=None, detach=True):
    outputs = []
    for start in range(0, x.shape[0], chunk_len):
        if detach and state is not None:
            for part in state if isinstance(state, tuple) else (state,):
                part.detach()
        chunk_outputs, state = layer(x[start : start + chunk_len], state)
        outputs.append(chunk_outputs)
    return torch.cat(outputs), state
''',
    # Ignores the state it is given: every chunk starts again from zeros.
    "language_model": '''
class LSTMLanguageModel(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = reference.LSTM(embedding_dim, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)

    def forward(self, inputs, state=None):
        hidden, state = self.rnn(self.embedding(inputs))
        return self.output(hidden), state
''',
    # Counts one bias vector per block, b = bias_ih + bias_hh, where torch.nn keeps two.
    "parameters": '''
def parameter_count(cell, input_size, hidden_size, bias=True):
    blocks = {"rnn": 1, "gru": 3, "lstm": 4}
    if cell not in blocks:
        raise ValueError(f"unknown cell {cell!r}")
    per_block = hidden_size * input_size + hidden_size * hidden_size
    if bias:
        per_block += hidden_size
    return blocks[cell] * per_block


def hidden_size_for_budget(cell, input_size, budget, bias=True):
    hidden_size = 0
    while parameter_count(cell, input_size, hidden_size + 1, bias) <= budget:
        hidden_size += 1
    return hidden_size
''',
}
