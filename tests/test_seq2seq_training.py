"""Tests of course_lib.seq2seq_training (vocabularies, batches, training and decoding of Seq2Seq).

Oracles: batches checked position by position against the pairs; the loss of a padded batch
against the losses of its pairs run one at a time without padding; greedy outputs against
``Seq2Seq.greedy_translate`` and ``course_lib.decoding``; a small model that must learn to
reverse strings.
"""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from course_lib.decoding import beam_search
from course_lib.models.seq2seq import Seq2Seq
from course_lib.models.tagger import SequenceTrainConfig
from course_lib.seq2seq_training import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    accuracy_by_length,
    build_vocabularies,
    collate_pairs,
    encode_pairs,
    evaluate_seq2seq_loss,
    seq2seq_loss,
    sequence_log_probs,
    train_seq2seq,
    translate_all,
    translate_with_attention,
)
from course_lib.vocab import SPECIAL_TOKENS

pytestmark = pytest.mark.usefixtures("one_thread")


def reversal_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = ["".join(rng.choices("abcdef", k=rng.randint(2, 7))) for _ in range(n)]
    return [(word, word[::-1]) for word in words]



@pytest.fixture(scope="module")
def vocabularies():
    return build_vocabularies(reversal_pairs(200, seed=0))


@pytest.fixture(scope="module")
def trained(vocabularies):
    """A small attention model trained to reverse strings (about 5 s on one CPU core)."""
    source_vocab, target_vocab = vocabularies
    torch.manual_seed(0)
    model = Seq2Seq(len(source_vocab), len(target_vocab), embedding_size=16, hidden_size=32)
    train = encode_pairs(reversal_pairs(2000, seed=1), source_vocab, target_vocab)
    val = encode_pairs(reversal_pairs(200, seed=2), source_vocab, target_vocab)
    config = SequenceTrainConfig(epochs=4, batch_size=32, lr=1e-2)
    history = train_seq2seq(model, train, config, device="cpu", val_pairs=val)
    return model, history


def test_vocabularies_and_encoding(vocabularies):
    source_vocab, target_vocab = vocabularies
    assert (PAD_ID, BOS_ID, EOS_ID) == (0, 2, 3)
    assert source_vocab.id_to_token[:4] == list(SPECIAL_TOKENS) and len(source_vocab) == 4 + 6
    (src, tgt), = encode_pairs([("abz", "ba")], source_vocab, target_vocab)
    assert src == [source_vocab.lookup("a"), source_vocab.lookup("b"), source_vocab.unk_id]
    assert tgt == [target_vocab.lookup("b"), target_vocab.lookup("a"), EOS_ID]
    phonemes = build_vocabularies([("knight", ("N", "AY", "T"))])[1]
    assert phonemes.id_to_token[4:] == ["AY", "N", "T"]
    with pytest.raises(ValueError, match="at least one token"):
        encode_pairs([("", "x")], source_vocab, target_vocab)


def test_collate_pairs():
    examples = [([5, 6, 7], [8, 9, EOS_ID]), ([5], [EOS_ID]), ([6, 6], [9, 8, 8, 9, EOS_ID])]
    batch = collate_pairs(examples)
    assert batch.src.shape == (3, 3) and batch.tgt_in.shape == batch.tgt_out.shape == (5, 3)
    assert batch.src_lengths.tolist() == [3, 1, 2] and batch.tgt_lengths.tolist() == [3, 1, 5]
    for b, (src, tgt) in enumerate(examples):
        assert batch.src[:, b].tolist() == src + [PAD_ID] * (3 - len(src))
        assert batch.tgt_out[:, b].tolist() == tgt + [PAD_ID] * (5 - len(tgt))
        assert batch.tgt_in[:, b].tolist() == [BOS_ID, *tgt[:-1]] + [PAD_ID] * (5 - len(tgt))


def test_padded_loss_equals_loss_of_single_pairs(vocabularies):
    source_vocab, target_vocab = vocabularies
    torch.manual_seed(1)
    model = Seq2Seq(len(source_vocab), len(target_vocab), embedding_size=8, hidden_size=12)
    examples = encode_pairs(reversal_pairs(6, seed=3), source_vocab, target_vocab)
    total, count = 0.0, 0
    for example in examples:  # one pair at a time: no padding anywhere
        single = collate_pairs([example])
        logits = model(single.src, single.src_lengths, single.tgt_in)
        total += F.cross_entropy(logits[:, 0], single.tgt_out[:, 0], reduction="sum").item()
        count += len(example[1])
    batched = seq2seq_loss(model, collate_pairs(examples)).item()
    assert batched == pytest.approx(total / count, abs=1e-5)
    assert evaluate_seq2seq_loss(model, examples, batch_size=4) == pytest.approx(total / count, abs=1e-5)


def test_training_learns_to_reverse(trained, vocabularies):
    model, history = trained
    source_vocab, target_vocab = vocabularies
    assert len(history.train_loss) == len(history.val_loss) == len(history.epoch_seconds) == 4
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
    assert history.val_loss[-1] < 0.1
    test = reversal_pairs(300, seed=4)
    outputs = translate_all(model, [s for s, _ in test], source_vocab, target_vocab, as_string=True)
    accuracy = sum(out == tgt for out, (_, tgt) in zip(outputs, test, strict=True)) / len(test)
    assert accuracy > 0.9
    assert model.training  # translate_all restores the mode


def test_training_is_deterministic(vocabularies):
    source_vocab, target_vocab = vocabularies
    train = encode_pairs(reversal_pairs(300, seed=5), source_vocab, target_vocab)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = Seq2Seq(len(source_vocab), len(target_vocab), embedding_size=8, hidden_size=8)
        config = SequenceTrainConfig(epochs=2, batch_size=32, lr=1e-2, seed=7)
        losses.append(train_seq2seq(model, train, config, device="cpu").train_loss)
    assert losses[0] == losses[1]


def test_translate_all_greedy_matches_the_model(trained, vocabularies):
    model, _ = trained
    source_vocab, target_vocab = vocabularies
    sources = [s for s, _ in reversal_pairs(40, seed=6)]
    greedy = translate_all(model, sources, source_vocab, target_vocab, batch_size=7)
    assert translate_all(model, sources, source_vocab, target_vocab, batch_size=64) == greedy
    for source, output in zip(sources[:10], greedy[:10], strict=True):
        src = torch.tensor([source_vocab.encode(source)]).T
        ids, _ = model.greedy_translate(src, torch.tensor([len(source)]), BOS_ID, EOS_ID, max_len=24)
        assert output == tuple(target_vocab.decode(ids[0]))
    beam_1 = translate_all(model, sources, source_vocab, target_vocab, beam_width=1)
    assert beam_1 == greedy


def test_translate_all_beam_search(trained, vocabularies):
    model, _ = trained
    source_vocab, target_vocab = vocabularies
    sources = [s for s, _ in reversal_pairs(15, seed=7)]
    beam = translate_all(model, sources, source_vocab, target_vocab, beam_width=3, as_string=True)
    model.eval()
    best_log_probs = []
    for source, output in zip(sources, beam, strict=True):
        src = torch.tensor([source_vocab.encode(source)]).T
        step, state = model.step_function(src, torch.tensor([len(source)]))
        best = beam_search(step, state, BOS_ID, EOS_ID, beam_width=3, max_len=2 * len(source) + 10)[0]
        assert output == "".join(target_vocab.decode(best.tokens))
        best_log_probs.append(best.log_prob)
    model.train()
    # the same log-probabilities, scored by teacher forcing in padded batches of 4
    scored = encode_pairs(list(zip(sources, beam, strict=True)), source_vocab, target_vocab)
    assert sequence_log_probs(model, scored, batch_size=4) == pytest.approx(best_log_probs, abs=1e-4)
    assert model.training
    assert sum(out == s[::-1] for out, s in zip(beam, sources, strict=True)) >= 13


def test_translate_with_attention(trained, vocabularies):
    model, _ = trained
    source_vocab, target_vocab = vocabularies
    output, alpha = translate_with_attention(model, "abcde", source_vocab, target_vocab)
    assert "".join(output) == "edcba"
    assert alpha.shape == (5, 5)
    assert torch.allclose(alpha.sum(1), torch.ones(5), atol=1e-6)
    assert alpha[0].argmax() == 4  # the first output letter is the last source letter
    log = []
    model.eval()
    step, state = model.step_function(torch.tensor([source_vocab.encode("abcde")]).T, torch.tensor([5]), log)
    for y in [BOS_ID, *target_vocab.encode("edcb")]:
        _, state = step(torch.tensor([y]), state)
    model.train()
    assert torch.allclose(torch.cat(log, dim=1).T, alpha, atol=1e-6)


def test_accuracy_by_length():
    lengths = [3, 4, 5, 9, 10, 12, 20]
    correct = [True, False, True, True, True, False, True]
    accuracy, counts = accuracy_by_length(lengths, correct, [0, 5, 10, 15])
    assert counts == [2, 2, 2]
    assert accuracy == [0.5, 1.0, 0.5]
    accuracy, counts = accuracy_by_length(lengths, correct, [3, 4, 100, 200])
    assert counts == [1, 6, 0] and math.isnan(accuracy[2])
    accuracy, _ = accuracy_by_length([3, 4, 12], [0.25, 0.5, 1.0], [0, 5, 15])
    assert accuracy == [0.375, 1.0]
    with pytest.raises(ValueError, match="increasing"):
        accuracy_by_length(lengths, correct, [5, 5])
