"""Plausible mistakes in Assignment 6, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Flips the whole padded column: the padding comes first and the real steps are shifted.
    "reverse": '''
def reverse_padded(x, lengths):
    return x.flip(0)
''',
    # Forgets to reverse the backward outputs back: position t gets the state of word n_b - 1 - t.
    "bidirectional": '''
def bidirectional_forward(forward_layer, backward_layer, x, lengths=None):
    forward_outputs, final_forward = forward_layer(x, lengths)
    backward_outputs, final_backward = backward_layer(reverse_padded(x, lengths), lengths)
    outputs = torch.cat([forward_outputs, backward_outputs], dim=-1)
    return outputs, (final_forward, final_backward)
''',
    # Applies dropout to the outputs of every layer, the last one included.
    "stacked": '''
def inverted_dropout(x, p, training):
    if not training or p == 0:
        return x
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep / (1 - p)


def stacked_forward(layers, x, lengths=None, dropout=0.0, training=False):
    finals = []
    for layer in layers:
        x, final = layer(x, lengths)
        x = inverted_dropout(x, dropout, training)
        finals.append(final)
    return x, finals
''',
    # Zeroes the padded losses but still divides by all T * B positions.
    "masked_loss": '''
def masked_cross_entropy(logits, targets, lengths):
    mask = torch.arange(targets.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return (losses * mask.reshape(-1)).sum() / losses.numel()
''',
    # Sorts by length and cuts, but never shuffles: every epoch goes from short to long batches.
    "bucketing": '''
def bucket_batches(lengths, batch_size, seed):
    by_length = sorted(range(len(lengths)), key=lambda index: lengths[index])
    return [by_length[start : start + batch_size] for start in range(0, len(by_length), batch_size)]
''',
    # Reads the forward half at the last row T - 1, which is padding for shorter sentences.
    "readout": '''
def sentence_summary(outputs, lengths):
    hidden_size = outputs.shape[-1] // 2
    return torch.cat([outputs[-1, :, :hidden_size], outputs[0, :, hidden_size:]], dim=-1)
''',
}
