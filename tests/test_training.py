import math

import pytest
import torch
from torch import nn

from course_lib.data.batching import batchify, bptt_batches, count_bptt_batches, encode_stream
from course_lib.data.grammar import grammar_corpus
from course_lib.training import (
    TrainConfig,
    detach_state,
    evaluate_language_model,
    load_checkpoint,
    save_checkpoint,
    train_language_model,
)
from course_lib.vocab import Vocabulary

CPU = torch.device("cpu")


class TinyRNNLM(nn.Module):
    """A small stateful LM with the course interface, built from torch.nn parts."""

    def __init__(self, vocab_size: int, hidden: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden)
        self.rnn = nn.RNN(hidden, hidden)
        self.output = nn.Linear(hidden, vocab_size)

    def forward(self, inputs, state=None):
        hidden, state = self.rnn(self.embedding(inputs), state)
        return self.output(hidden), state


@pytest.fixture(scope="module")
def corpus():
    train, val = grammar_corpus(600, seed=1), grammar_corpus(100, seed=2)
    vocab = Vocabulary.build(train)
    return vocab, encode_stream(train, vocab), encode_stream(val, vocab)


def test_batchify_cuts_contiguous_columns_and_bptt_shifts_targets():
    data = batchify(torch.arange(26), 4)
    assert data.shape == (6, 4)
    assert data[:, 1].tolist() == [6, 7, 8, 9, 10, 11]
    chunks = list(bptt_batches(data, 4))
    assert len(chunks) == count_bptt_batches(data, 4) == 2
    (x0, y0), (x1, y1) = chunks
    assert torch.equal(y0, data[1:5]) and torch.equal(x1, data[4:5]) and torch.equal(y1, data[5:6])


def test_encode_stream_appends_end_of_sentence(corpus):
    vocab = Vocabulary.build([["a", "b"]])
    assert vocab.decode(encode_stream([["a", "b"], ["b"]], vocab).tolist()) == ["a", "b", "</s>", "b", "</s>"]


def test_clear_errors_for_bad_input():
    with pytest.raises(ValueError, match="empty corpus"):
        encode_stream([[], []], Vocabulary.build([["a"]]))
    with pytest.raises(TypeError, match="tokenize"):
        encode_stream("a b", Vocabulary.build([["a"]]))
    with pytest.raises(ValueError, match="too short"):
        batchify(torch.arange(5), 4)
    with pytest.raises(ValueError, match="1-D"):
        batchify(torch.zeros(3, 3), 1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train_language_model(TinyRNNLM(5), torch.arange(40) % 5, torch.arange(40) % 5,
                             TrainConfig(optimizer="lbfgs", progress=False), device=CPU)


def test_evaluation_carries_the_state_across_chunks(corpus):
    vocab, _, val = corpus
    torch.manual_seed(0)
    model = TinyRNNLM(len(vocab))
    one_pass = evaluate_language_model(model, val, batch_size=4, seq_len=10_000, device=CPU)
    chunked = evaluate_language_model(model, val, batch_size=4, seq_len=7, device=CPU)
    assert chunked == pytest.approx(one_pass, rel=1e-5)


def test_training_lowers_validation_loss_and_is_deterministic(corpus):
    vocab, train, val = corpus
    config = TrainConfig(epochs=3, batch_size=8, seq_len=20, lr=3e-3, progress=False, patience=None)
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        model = TinyRNNLM(len(vocab))
        initial = evaluate_language_model(model, val, device=CPU)
        histories.append(train_language_model(model, train, val, config, device=CPU))
    history = histories[0]
    assert history.val_loss == histories[1].val_loss
    assert min(history.val_loss) < initial - 1.0
    assert history.val_perplexity[-1] == pytest.approx(math.exp(history.val_loss[-1]))
    assert evaluate_language_model(model, val, device=CPU) == pytest.approx(min(history.val_loss), rel=1e-5)


def test_early_stopping_and_best_weights(corpus, tmp_path):
    vocab, train, val = corpus
    model = TinyRNNLM(len(vocab))
    config = TrainConfig(epochs=10, lr=0.0, patience=2, max_batches_per_epoch=3, progress=False)
    checkpoint = tmp_path / "best.pt"
    history = train_language_model(model, train, val, config, device=CPU, checkpoint_path=checkpoint)
    assert history.stopped_early and len(history.val_loss) == 3 and history.best_epoch == 0
    restored = TinyRNNLM(len(vocab))
    metadata = load_checkpoint(tmp_path / "best.pt", restored)
    assert metadata["epoch"] == 0 and metadata["config"]["patience"] == 2
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, restored.state_dict()[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_checkpoint_round_trip_and_bad_file(tmp_path):
    model = TinyRNNLM(7)
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / "model.pt", model, optimizer, note="hello")
    other = TinyRNNLM(7)
    metadata = load_checkpoint(tmp_path / "model.pt", other, torch.optim.Adam(other.parameters()))
    assert metadata == {"note": "hello"}
    assert torch.equal(other.output.weight, model.output.weight)
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "bad.pt", other)


def test_detach_state_handles_nested_states():
    h = torch.ones(2, requires_grad=True) * 2
    c = torch.ones(2, requires_grad=True) * 3
    detached = detach_state((h, [c]))
    assert not detached[0].requires_grad and not detached[1][0].requires_grad
    assert detach_state(None) is None
    with pytest.raises(TypeError, match="cannot detach"):
        detach_state({"h": h})
