"""Plausible mistakes in Assignment 1, one per graded part (see ``tests/wrong_answers/__init__.py``)."""

WRONG_ANSWERS: dict[str, str] = {
    # Forgets the end-of-sentence symbol.
    "counting": '''
def padded_ngrams(sentence, n):
    if n < 1:
        raise ValueError("n must be at least 1")
    padded = [BOS] * (n - 1) + list(sentence)
    return [tuple(padded[i : i + n]) for i in range(len(padded) - n + 1)]


def count_ngrams(sentences, n):
    counts = Counter()
    for sentence in sentences:
        counts.update(padded_ngrams(sentence, n))
    return counts
''',
    # Divides by the number of all n-grams: a joint, not a conditional, probability.
    "mle": '''
def context_totals(ngram_counts):
    totals = Counter()
    for ngram, count in ngram_counts.items():
        totals[ngram[:-1]] += count
    return totals


def mle_probability(ngram_counts, totals, context, word):
    if totals[tuple(context)] == 0:
        return 0.0
    return ngram_counts[tuple(context) + (word,)] / sum(ngram_counts.values())
''',
    # Adds V instead of k·V to the denominator (right only for k = 1).
    "add_k": '''
def add_k_probability(ngram_counts, totals, context, word, k, vocab_size):
    context = tuple(context)
    return (ngram_counts[context + (word,)] + k) / (totals[context] + vocab_size)
''',
    # Backs off without the factor alpha.
    "backoff": '''
def stupid_backoff_score(counts, totals, context, word, alpha=0.4):
    context = tuple(context)
    while context:
        ngram = context + (word,)
        if counts[len(ngram)][ngram] > 0:
            return counts[len(ngram)][ngram] / totals[len(ngram)][context]
        context = context[1:]
    return counts[1][(word,)] / sum(counts[1].values())
''',
    # Leaves out the prediction of </s>.
    "perplexity": '''
def perplexity(probability, sentences, n):
    total_log_prob, count = 0.0, 0
    for sentence in sentences:
        padded = [BOS] * (n - 1) + list(sentence)
        for t in range(n - 1, len(padded)):
            p = probability(padded[t], tuple(padded[t - n + 1 : t]))
            if p == 0:
                return math.inf
            total_log_prob += math.log(p)
            count += 1
    return math.exp(-total_log_prob / count)
''',
    # Multiplies by the temperature instead of raising to the power 1/temperature.
    "sampling": '''
def sampling_distribution(probs, temperature=1.0, top_k=None):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    probs = np.asarray(probs, dtype=float)
    if top_k is not None:
        kept = np.argsort(-probs, kind="stable")[:top_k]
        truncated = np.zeros_like(probs)
        truncated[kept] = probs[kept]
        probs = truncated
    weights = probs * temperature
    return weights / weights.sum()
''',
}
