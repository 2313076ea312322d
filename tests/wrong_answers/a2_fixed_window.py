"""Plausible mistakes in Assignment 2, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Off by one: each window ends with the token it should predict.
    "windows": '''
def context_windows(stream, context_size, pad_id):
    padded = torch.cat([torch.full((context_size,), pad_id, dtype=stream.dtype), stream])
    contexts = padded.unfold(0, context_size, 1)[1:]
    return contexts.contiguous(), stream.clone()
''',
    # Reads the contexts as time-major (n - 1, B) and mixes up the windows of the batch.
    "embed": '''
def embed_and_concatenate(contexts, embedding):
    return embedding[contexts.T].reshape(len(contexts), -1)
''',
    # Forgets the tanh: the hidden layer is linear.
    "hidden": '''
def logits_from_embeddings(e, params):
    h = e @ params["W"].T + params["b1"]
    return h @ params["U"].T + params["b2"]
''',
    # log(sum(exp(z))) as written: overflows to inf for large scores.
    "loss": '''
def cross_entropy_loss(logits, targets):
    log_normaliser = torch.log(torch.exp(logits).sum(dim=1))
    target_scores = logits[torch.arange(len(targets)), targets]
    return (log_normaliser - target_scores).mean()
''',
    # Never resets the gradients, so each step uses the sum of all gradients so far.
    "sgd": '''
def sgd_step(loss, parameters, lr):
    loss.backward()
    with torch.no_grad():
        for parameter in parameters:
            parameter -= lr * parameter.grad
''',
    # Averages the batches' mean losses, which overweights a smaller last batch.
    "perplexity": '''
def perplexity(model, contexts, targets, batch_size):
    batch_losses = []
    with torch.no_grad():
        for start in range(0, len(targets), batch_size):
            logits = model.logits_from_contexts(contexts[start : start + batch_size])
            batch_losses.append(F.cross_entropy(logits, targets[start : start + batch_size]).item())
    return math.exp(sum(batch_losses) / len(batch_losses))
''',
}
