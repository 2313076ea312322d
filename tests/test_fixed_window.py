"""Tests of the fixed-window language model and of word2vec (Chapter 2).

The oracles are independent computations: the equations written out with one-hot
matrix products, central finite differences for the gradients, explicit Python loops
for the training data, and a unigram model from ``course_lib.ngram`` as the baseline.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.data.grammar import grammar_corpus
from course_lib.metrics import cross_entropy
from course_lib.models.fixed_window import (
    FixedWindowLM,
    context_windows,
    fixed_window_parameter_count,
    nearest_neighbours,
    ngram_table_size,
    parameter_count,
    window_perplexity,
)
from course_lib.models.word2vec import CBOW, SkipGram, cbow_examples, skipgram_pairs
from course_lib.ngram import Laplace
from course_lib.vocab import BOS, EOS, Vocabulary


def encode_stream(sentences: list[list[str]], vocab: Vocabulary) -> torch.Tensor:
    """The sentences one after another, each followed by </s>, as one tensor of ids (N,)."""
    return torch.tensor([i for sentence in sentences for i in vocab.encode([*sentence, EOS])])


def manual_logits(model: FixedWindowLM, contexts: torch.Tensor) -> torch.Tensor:
    """U tanh(W e + b_1) + b_2 with the embedding lookup written as a one-hot product."""
    E, W, b1 = model.embedding.weight, model.hidden.weight, model.hidden.bias
    U, b2 = model.output.weight, model.output.bias
    one_hot = F.one_hot(contexts, model.vocab_size).to(E.dtype)  # (B, n−1, V)
    e = (one_hot @ E).reshape(len(contexts), -1)  # (B, (n−1)·d)
    h = torch.tanh(e @ W.T + b1)
    return h @ U.T + b2


# ---------------------------------------------------------------------- context windows


def test_context_windows_by_hand():
    contexts, targets = context_windows(torch.tensor([7, 8, 9, 10]), context_size=3, pad_id=2)
    assert contexts.tolist() == [[2, 2, 2], [2, 2, 7], [2, 7, 8], [7, 8, 9]]
    assert targets.tolist() == [7, 8, 9, 10]
    contexts, targets = context_windows(torch.tensor([4, 5]), context_size=1, pad_id=0)
    assert contexts.tolist() == [[0], [4]] and targets.tolist() == [4, 5]


def test_context_windows_match_a_loop():
    stream = torch.randint(3, 20, (50,), generator=torch.Generator().manual_seed(0))
    for n_minus_1 in (1, 2, 5, 60):
        contexts, _ = context_windows(stream, n_minus_1, pad_id=1)
        padded = [1] * n_minus_1 + stream.tolist()
        assert contexts.tolist() == [padded[t : t + n_minus_1] for t in range(len(stream))]


def test_context_windows_errors():
    with pytest.raises(ValueError, match="at least 1"):
        context_windows(torch.tensor([1, 2]), 0, pad_id=0)
    with pytest.raises(ValueError, match="1-dimensional"):
        context_windows(torch.tensor([[1, 2]]), 2, pad_id=0)
    with pytest.raises(TypeError, match="integer"):
        context_windows(torch.tensor([1.0, 2.0]), 2, pad_id=0)


# ---------------------------------------------------------------------- the model's equations


def test_logits_equal_the_equations_written_out():
    torch.manual_seed(0)
    model = FixedWindowLM(vocab_size=13, context_size=3, embedding_dim=5, hidden_dim=7)
    contexts = torch.randint(0, 13, (9, 3))
    error = (model.logits_from_contexts(contexts) - manual_logits(model, contexts)).abs().max().item()
    assert error < 1e-6  # 0.0 measured (the same float32 products)
    E = model.embedding.weight
    assert torch.equal(model.embed(contexts), torch.cat([E[contexts[:, j]] for j in range(3)], dim=1))


def test_gradients_match_finite_differences():
    torch.manual_seed(1)
    model = FixedWindowLM(vocab_size=6, context_size=2, embedding_dim=3, hidden_dim=4).double()
    contexts, targets = torch.randint(0, 6, (5, 2)), torch.randint(0, 6, (5,))

    def loss() -> torch.Tensor:
        return F.cross_entropy(model.logits_from_contexts(contexts), targets)

    model.zero_grad()
    loss().backward()
    step = 1e-6
    for name, parameter in model.named_parameters():
        numeric = torch.zeros_like(parameter)
        flat, numeric_flat = parameter.data.view(-1), numeric.view(-1)
        with torch.no_grad():
            for i in range(flat.numel()):
                original = flat[i].item()
                flat[i] = original + step
                up = loss().item()
                flat[i] = original - step
                down = loss().item()
                flat[i] = original
                numeric_flat[i] = (up - down) / (2 * step)
        relative = (parameter.grad - numeric).norm() / max(parameter.grad.norm(), numeric.norm())
        assert relative < 1e-6, (name, relative.item())  # about 1e-9 measured


def test_parameters_by_symbol_are_the_module_weights():
    model = FixedWindowLM(vocab_size=8, context_size=2, embedding_dim=3, hidden_dim=4)
    symbols = model.parameters_by_symbol()
    assert list(symbols) == ["E", "W", "b1", "U", "b2"]
    assert {id(p) for p in symbols.values()} == {id(p) for p in model.parameters()}
    shapes = {name: tuple(p.shape) for name, p in symbols.items()}
    assert shapes == {"E": (8, 3), "W": (4, 6), "b1": (4,), "U": (8, 4), "b2": (8,)}


# ---------------------------------------------------------------------- the language-model interface


def test_forward_predicts_from_the_last_n_minus_1_tokens():
    torch.manual_seed(2)
    model = FixedWindowLM(vocab_size=10, context_size=3, embedding_dim=4, hidden_dim=6, pad_id=2)
    stream = torch.randint(3, 10, (12,))
    logits, state = model(stream[:-1].unsqueeze(1))
    contexts, _ = context_windows(stream, 3, pad_id=2)
    # logits[t] scores stream[t + 1], whose window context_windows builds independently.
    expected = model.logits_from_contexts(contexts[1:])
    assert logits.shape == (11, 1, 10)
    assert torch.allclose(logits[:, 0], expected, atol=1e-6)
    assert state[:, 0].tolist() == stream[-4:-1].tolist()


def test_chunked_forward_equals_one_long_forward():
    torch.manual_seed(3)
    model = FixedWindowLM(vocab_size=15, context_size=4, embedding_dim=3, hidden_dim=5)
    inputs = torch.randint(0, 15, (20, 3))  # (T, B)
    whole, final_state = model(inputs)
    pieces, state = [], None
    for chunk in torch.split(inputs, [5, 1, 2, 7, 5]):  # chunks shorter than the window too
        logits, state = model(chunk, state)
        pieces.append(logits)
    assert torch.allclose(torch.cat(pieces), whole, atol=1e-6)
    assert torch.equal(state, final_state) and torch.equal(final_state, inputs[-4:])
    empty_logits, same_state = model(inputs[:0], state)
    assert empty_logits.shape == (0, 3, 15) and torch.equal(same_state, state)


def test_shape_errors_say_what_was_expected():
    model = FixedWindowLM(vocab_size=10, context_size=3, embedding_dim=4, hidden_dim=6)
    with pytest.raises(ValueError, match=r"shape \(B, 3\).*got \(5, 2\)"):
        model.logits_from_contexts(torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="2-dimensional"):
        model.logits_from_contexts(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids"):
        model.logits_from_contexts(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\(3, 2\).*got \(2, 2\)"):
        model(torch.zeros(4, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="pad_id"):
        FixedWindowLM(vocab_size=10, context_size=3, embedding_dim=4, hidden_dim=6, pad_id=10)
    with pytest.raises(ValueError, match="context_size"):
        FixedWindowLM(vocab_size=10, context_size=0, embedding_dim=4, hidden_dim=6)


def test_parameter_counts():
    model = FixedWindowLM(vocab_size=50, context_size=4, embedding_dim=8, hidden_dim=16)
    expected = 50 * 8 + 16 * 32 + 16 + 50 * 16 + 50
    assert parameter_count(model) == fixed_window_parameter_count(50, 4, 8, 16) == expected
    model.embedding.weight.requires_grad_(False)
    assert parameter_count(model) == expected - 50 * 8
    assert ngram_table_size(50, 2) == 50**2 * 49


def test_window_perplexity_is_exp_of_the_mean_nll_for_any_batch_size():
    torch.manual_seed(4)
    model = FixedWindowLM(vocab_size=12, context_size=2, embedding_dim=3, hidden_dim=5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4)  # spread the per-token losses, so badly averaged batches show
    contexts, targets = torch.randint(0, 12, (23, 2)), torch.randint(0, 12, (23,))
    expected = math.exp(cross_entropy(model.logits_from_contexts(contexts), targets).item())
    for batch_size in (1, 5, 23, 100):
        assert window_perplexity(model, contexts, targets, batch_size) == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    assert window_perplexity(model, contexts, targets) == pytest.approx(12, rel=1e-6)
    with pytest.raises(ValueError, match="as many targets"):
        window_perplexity(model, contexts, targets[:-1])


# ---------------------------------------------------------------------- training


def test_training_beats_a_unigram_model_on_the_grammar_corpus():
    train, val = grammar_corpus(1500, seed=0), grammar_corpus(200, seed=1)
    vocab = Vocabulary.build(train)
    contexts, targets = context_windows(encode_stream(train, vocab), 3, vocab.token_to_id[BOS])
    val_contexts, val_targets = context_windows(encode_stream(val, vocab), 3, vocab.token_to_id[BOS])

    torch.manual_seed(0)
    model = FixedWindowLM(len(vocab), 3, embedding_dim=16, hidden_dim=64, pad_id=vocab.token_to_id[BOS])
    before = window_perplexity(model, val_contexts, val_targets)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        batch = torch.randint(0, len(targets), (128,))
        loss = F.cross_entropy(model.logits_from_contexts(contexts[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = window_perplexity(model, val_contexts, val_targets)
    unigram = Laplace(order=1).fit(train, vocab).perplexity(val)
    assert before > unigram > 1.5 * after, (before, unigram, after)


# ---------------------------------------------------------------------- nearest neighbours


def test_nearest_neighbours_by_cosine():
    vocab = Vocabulary(["a", "b", "c", "d"], specials=())
    embeddings = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 3.0], [-1.0, 0.0]])
    neighbours = nearest_neighbours(embeddings, vocab, "a", k=3)
    assert [word for word, _ in neighbours] == ["b", "c", "d"]
    assert [cosine for _, cosine in neighbours] == pytest.approx([10 / math.sqrt(101), 0.0, -1.0])
    assert nearest_neighbours(embeddings, vocab, "d", k=1) == [("c", pytest.approx(0.0))]
    with pytest.raises(KeyError, match="'z'"):
        nearest_neighbours(embeddings, vocab, "z")
    with pytest.raises(ValueError, match="V = 4"):
        nearest_neighbours(embeddings[:3], vocab, "a")
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(embeddings, vocab, "a", k=4)


# ---------------------------------------------------------------------- word2vec


def test_word2vec_examples_match_loops():
    stream = torch.randint(0, 30, (25,), generator=torch.Generator().manual_seed(5))
    tokens = stream.tolist()
    for c in (1, 3):
        contexts, centers = cbow_examples(stream, c)
        positions = range(c, len(tokens) - c)
        assert contexts.tolist() == [tokens[t - c : t] + tokens[t + 1 : t + c + 1] for t in positions]
        assert centers.tolist() == [tokens[t] for t in positions]
        centers, neighbours = skipgram_pairs(stream, c)
        pairs = [
            (tokens[t], tokens[t + j])
            for t in range(len(tokens))
            for j in [*range(-c, 0), *range(1, c + 1)]
            if 0 <= t + j < len(tokens)
        ]
        assert list(zip(centers.tolist(), neighbours.tolist(), strict=True)) == pairs
    with pytest.raises(ValueError, match="no position"):
        cbow_examples(stream[:4], 2)


def test_word2vec_equations():
    torch.manual_seed(6)
    cbow, skipgram = CBOW(vocab_size=9, dim=4), SkipGram(vocab_size=9, dim=4)
    contexts, centers = torch.randint(0, 9, (5, 4)), torch.randint(0, 9, (5,))
    one_hot = F.one_hot(contexts, 9).float()  # (B, 2c, V)
    mean_embedding = (one_hot @ cbow.embedding.weight).sum(dim=1) / 4
    assert torch.allclose(cbow(contexts), mean_embedding @ cbow.output.weight.T, atol=1e-6)
    center_embedding = F.one_hot(centers, 9).float() @ skipgram.embedding.weight
    assert torch.allclose(skipgram(centers), center_embedding @ skipgram.output.weight.T, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, 2c\)"):
        cbow(centers)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        skipgram(contexts)


@pytest.mark.parametrize("architecture", ["cbow", "skipgram"])
def test_word2vec_learns(architecture):
    sentences = grammar_corpus(300, seed=2)
    vocab = Vocabulary.build(sentences)
    stream = encode_stream(sentences, vocab)
    torch.manual_seed(7)
    if architecture == "cbow":
        model, (inputs, targets) = CBOW(len(vocab), 16), cbow_examples(stream, 2)
    else:
        model, (inputs, targets) = SkipGram(len(vocab), 16), skipgram_pairs(stream, 2)

    def loss() -> torch.Tensor:
        return F.cross_entropy(model(inputs), targets)

    with torch.no_grad():
        before = loss().item()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(100):
        batch = torch.randint(0, len(targets), (256,))
        batch_loss = F.cross_entropy(model(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        batch_loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss().item()
    assert after < before - 0.5, (before, after)
