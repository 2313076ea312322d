"""Plausible mistakes in Assignment 7, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Applies W from the wrong side, s^T W^T h_i: only possible when D = H, and wrong even then.
    "scores": '''
def dot_scores(s, enc):
    return (enc * s).sum(-1)


def bilinear_scores(s, enc, W):
    return (enc @ W * s).sum(-1)


def reduced_rank_scores(s, enc, U, V):
    return (enc @ V.T * (s @ U.T)).sum(-1)
''',
    # Takes the tanh after the product with v: a linear score squashed, not a hidden layer.
    "additive": '''
def additive_scores(s, enc, W1, W2, v):
    return torch.tanh((enc @ W1.T + s @ W2.T) @ v)
''',
    # Masks by multiplying the scores by the mask: padded positions get score 0, and exp(0) = 1.
    "context": '''
def masked_softmax(scores, mask):
    return (scores * mask).softmax(dim=0)


def attention_context(alpha, enc):
    return (alpha.unsqueeze(-1) * enc).sum(dim=0)
''',
    # Attends with the previous state s_{t-1} instead of the new state s_t.
    "decoder_step": '''
def decoder_step(model, y_prev, state, memory):
    s_prev, c, o = state
    x = torch.cat([model.tgt_embedding(y_prev), o], dim=-1)
    s, c = model.decoder_cell(x, (s_prev, c))
    if model.attention is None:
        alpha = None
        o = torch.tanh(model.combine(s))
    else:
        a, alpha = model.attention(s_prev, memory.states, memory.mask)
        o = torch.tanh(model.combine(torch.cat([a, s], dim=-1)))
    return model.output(model.dropout(o)), (s, c, o), alpha
''',
    # Forgets which rows have finished: a row that ended keeps collecting the tokens after its </s>.
    "greedy": '''
def greedy_decode(step, state, bos_id, eos_id, max_len):
    first = state
    while isinstance(first, tuple):
        first = first[0]
    rows = first.shape[0]
    y = torch.full((rows,), bos_id, dtype=torch.long)
    outputs = [[] for _ in range(rows)]
    ended = [False] * rows
    with torch.no_grad():
        for _ in range(max_len):
            log_probs, state = step(y, state)
            y = log_probs.argmax(dim=-1)
            for row, token in enumerate(y.tolist()):
                if token == eos_id:
                    ended[row] = True
                else:
                    outputs[row].append(token)
            if all(ended):
                break
    return outputs
''',
    # Keeps the state of the old beam: it never selects the rows of the prefixes that survived.
    "beam": '''
def beam_search(step, state, bos_id, eos_id, beam_width, max_len, length_penalty=0.0):
    prefixes, prefix_log_probs = [[]], torch.zeros(1, dtype=torch.float64)
    y = torch.tensor([bos_id])
    finished = []
    with torch.no_grad():
        for _ in range(max_len):
            log_probs, state = step(y, state)
            vocab_size = log_probs.shape[-1]
            candidates = (prefix_log_probs.unsqueeze(1) + log_probs.double()).flatten()
            best = torch.topk(candidates, min(beam_width - len(finished), len(candidates)))
            rows, tokens, kept = [], [], []
            for log_prob, index in zip(best.values.tolist(), best.indices.tolist(), strict=True):
                row, token = divmod(index, vocab_size)
                if token == eos_id:
                    done = prefixes[row]
                    finished.append(Hypothesis(done, log_prob, log_prob / (len(done) + 1) ** length_penalty))
                else:
                    rows.append(row)
                    tokens.append(token)
                    kept.append(log_prob)
            if not rows:
                return sorted(finished, key=lambda hypothesis: -hypothesis.score)
            prefixes = [prefixes[row] + [token] for row, token in zip(rows, tokens, strict=True)]
            prefix_log_probs = torch.tensor(kept, dtype=torch.float64)
            y = torch.tensor(tokens)
    for prefix, log_prob in zip(prefixes, prefix_log_probs.tolist(), strict=True):
        finished.append(Hypothesis(prefix, log_prob, log_prob / len(prefix) ** length_penalty))
    return sorted(finished, key=lambda hypothesis: -hypothesis.score)
''',
}
