"""Plausible mistakes in Assignment 8, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Adds the image after the nonlinearity, as if it were a bias of the output.
    "rnn_step": '''
def image_rnn_step(x, h_prev, im, W_xh, W_hh, W_ih, b):
    return torch.tanh(x @ W_xh.T + h_prev @ W_hh.T + b) + im @ W_ih.T
''',
    # Reads the positions column by column (p = c·h + r) instead of row by row.
    "features": '''
def flatten_features(fmap):
    return fmap.transpose(2, 3).flatten(start_dim=2).permute(2, 0, 1)


def initial_state(fmap, W_init, b_init):
    im = fmap.mean(dim=(2, 3))
    return torch.tanh(im @ W_init.T + b_init)
''',
    # Zeroes the padded terms but still divides by all T·B positions.
    "loss": '''
def caption_batch(captions, bos_id, eos_id, pad_id):
    inputs, lengths = pad_sequences([[bos_id, *caption] for caption in captions], pad_id)
    targets, _ = pad_sequences([[*caption, eos_id] for caption in captions], pad_id)
    return inputs, targets, lengths


def caption_loss(logits, targets, lengths):
    mask = length_mask(lengths, targets.shape[0])
    log_probs = F.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum() / mask.numel()
''',
    # Normalises the scores over the batch (dim 1) instead of over the positions of each image.
    "attention": '''
def spatial_attention(s, positions, W1, W2, v):
    scores = torch.tanh(positions @ W1.T + s @ W2.T) @ v
    alpha = torch.softmax(scores, dim=1)
    context = (alpha.unsqueeze(-1) * positions).sum(dim=0)
    return context, alpha
''',
    # Marks a row as finished at </s> but keeps appending the words it produces afterwards.
    "greedy": '''
def greedy_captions(step, state, bos_id, eos_id, max_len):
    first = state
    while isinstance(first, tuple):
        first = first[0]
    rows = first.shape[0]
    y = torch.full((rows,), bos_id, dtype=torch.long)
    captions = [[] for _ in range(rows)]
    finished = [False] * rows
    for _ in range(max_len):
        log_probs, state = step(y, state)
        y = log_probs.argmax(dim=-1)
        for row, word in enumerate(y.tolist()):
            if word == eos_id:
                finished[row] = True
            else:
                captions[row].append(word)
        if all(finished):
            break
    return captions
''',
    # Clips each n-gram by its count summed over all references instead of its count in the best one.
    "bleu": '''
from collections import Counter


def clipped_ngram_counts(hypothesis, references, n):
    def ngrams(words):
        return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))

    counts = ngrams(hypothesis)
    reference_counts = [ngrams(reference) for reference in references]
    matches = sum(min(count, sum(ref[gram] for ref in reference_counts)) for gram, count in counts.items())
    return matches, sum(counts.values())
''',
}
