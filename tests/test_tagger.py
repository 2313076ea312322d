"""Tests of course_lib.models.tagger and of the grammaticality data of course_lib.data.grammar.

Oracles: the grammar's inside algorithm (is a sentence generated?), the torch.nn layers on
packed sequences (``implementation="cudnn"``) for the from-scratch encoder, each sentence
tagged alone without padding, accuracies counted by hand, and two tiny training runs.
"""

import pytest
import torch

from course_lib.data.grammar import (
    GRAMMATICAL,
    UNGRAMMATICAL,
    count_derivations,
    default_grammar,
    grammaticality_examples,
    sample_sentences,
)
from course_lib.data.padding import pad_sequences
from course_lib.models.tagger import (
    SequenceClassifier,
    SequenceTagger,
    SequenceTrainConfig,
    classification_accuracy,
    collate,
    encode_labelled,
    encode_tagged,
    tagging_accuracy,
    train_sequence_model,
)
from course_lib.vocab import Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

AMBIGUOUS = ("light", "square", "novel")
NUM_TAGS = 10



@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.build([default_grammar().vocabulary])


@pytest.fixture(scope="module")
def tagged(vocab):
    return encode_tagged(sample_sentences(40, seed=3), vocab)


def verb_positions(tokens: list[str]) -> list[int]:
    grammar = default_grammar()
    return [i for i, w in enumerate(tokens) if grammar.word_tags[w] & {"VERB_SG", "VERB_PL"}]


def test_grammaticality_examples_are_balanced_and_deterministic():
    examples = grammaticality_examples(200, seed=1)
    assert [label for _, label in examples].count(UNGRAMMATICAL) == 100
    assert [label for _, label in examples].count(GRAMMATICAL) == 100
    assert examples == grammaticality_examples(200, seed=1)
    assert examples != grammaticality_examples(200, seed=2)
    assert [label for _, label in grammaticality_examples(7, seed=0)].count(UNGRAMMATICAL) == 3
    assert grammaticality_examples(0) == []
    with pytest.raises(ValueError, match="at least 0"):
        grammaticality_examples(-1)


def test_each_ungrammatical_sentence_has_exactly_one_agreement_error():
    """Ungrammatical: the grammar cannot generate it, and switching one verb's number repairs it."""
    grammar = default_grammar()
    for tokens, label in grammaticality_examples(120, seed=4):
        if label == GRAMMATICAL:
            assert count_derivations(tokens) == 1
            continue
        assert count_derivations(tokens) == 0
        repairs = []
        for i in verb_positions(tokens):
            switched = tokens[:i] + [grammar.other_number[tokens[i]]] + tokens[i + 1 :]
            repairs.append(count_derivations(switched) == 1)
        assert sum(repairs) >= 1, tokens


def test_tagger_scratch_and_cudnn_agree_and_ignore_padding(vocab, tagged):
    torch.manual_seed(0)
    for cell in ("lstm", "gru"):
        scratch = SequenceTagger(len(vocab), NUM_TAGS, 8, 6, num_layers=2, cell=cell).double()
        cudnn = SequenceTagger(len(vocab), NUM_TAGS, 8, 6, num_layers=2, cell=cell, implementation="cudnn")
        cudnn.double().load_state_dict(scratch.state_dict())
        tokens, lengths, _ = collate(tagged[:6])
        logits = scratch(tokens, lengths)
        assert logits.shape == (tokens.shape[0], 6, NUM_TAGS)
        assert (logits - cudnn(tokens, lengths)).abs().max() < 1e-12
        for b, (ids, _) in enumerate(tagged[:6]):
            alone = scratch(torch.tensor(ids).unsqueeze(1), torch.tensor([len(ids)]))
            assert (logits[: len(ids), b] - alone[:, 0]).abs().max() < 1e-12


def test_classifier_reads_the_forward_end_and_the_backward_start(vocab, tagged):
    torch.manual_seed(1)
    model = SequenceClassifier(len(vocab), 3, 8, 6, num_layers=2).double()
    twin = SequenceClassifier(len(vocab), 3, 8, 6, num_layers=2, implementation="cudnn").double()
    twin.load_state_dict(model.state_dict())
    tokens, lengths, _ = collate(tagged[:5])
    logits = model(tokens, lengths)
    assert logits.shape == (5, 3)
    assert (logits - twin(tokens, lengths)).abs().max() < 1e-12
    outputs, _ = model.encoder(model.embedding(tokens), lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        summary = torch.cat([outputs[n - 1, b, :6], outputs[0, b, 6:]])
        assert (logits[b] - model.output(summary)).abs().max() < 1e-12
        alone = model(tokens[:n, b : b + 1], lengths[b : b + 1])
        assert (logits[b] - alone[0]).abs().max() < 1e-12


def test_accuracies_match_counts_by_hand(vocab, tagged):
    torch.manual_seed(2)
    tagger = SequenceTagger(len(vocab), NUM_TAGS, 8, 6)
    ambiguous = {vocab.lookup(w) for w in AMBIGUOUS}
    hits = {"all": [0, 0], "ambiguous": [0, 0]}
    for ids, tags in tagged:
        predicted = tagger(torch.tensor(ids).unsqueeze(1), torch.tensor([len(ids)]))[:, 0].argmax(-1)
        for token, tag, guess in zip(ids, tags, predicted.tolist(), strict=True):
            for key in ("all", "ambiguous") if token in ambiguous else ("all",):
                hits[key][0] += guess == tag
                hits[key][1] += 1
    assert tagging_accuracy(tagger, tagged, batch_size=7) == pytest.approx(hits["all"][0] / hits["all"][1])
    expected = hits["ambiguous"][0] / hits["ambiguous"][1]
    assert tagging_accuracy(tagger, tagged, only_tokens=ambiguous) == pytest.approx(expected)
    classifier = SequenceClassifier(len(vocab), 2, 8, 6)
    labelled = [(ids, i % 2) for i, (ids, _) in enumerate(tagged)]
    correct = sum(
        classifier(torch.tensor(ids).unsqueeze(1), torch.tensor([len(ids)])).argmax().item() == label
        for ids, label in labelled
    )
    accuracy = classification_accuracy(classifier, labelled, batch_size=9)
    assert accuracy == pytest.approx(correct / len(labelled))


def test_training_is_deterministic_and_the_same_for_both_implementations(vocab, tagged):
    config = SequenceTrainConfig(epochs=2, batch_size=8)
    histories = []
    for implementation in ("scratch", "cudnn", "cudnn"):
        torch.manual_seed(3)
        model = SequenceTagger(len(vocab), NUM_TAGS, 8, 8, implementation=implementation)
        histories.append(train_sequence_model(model, tagged, config, device="cpu").train_loss)
    assert histories[1] == histories[2]
    assert max(abs(a - b) for a, b in zip(histories[0], histories[1], strict=True)) < 1e-5
    assert histories[0][1] < histories[0][0]


def test_bidirectional_tagger_beats_unidirectional_on_ambiguous_words(vocab):
    """light/square/novel after a determiner: only the right context tells noun from adjective."""
    train = encode_tagged(sample_sentences(600, seed=1), vocab)
    test = encode_tagged(sample_sentences(1000, seed=2), vocab)
    ambiguous = {vocab.lookup(w) for w in AMBIGUOUS}
    config = SequenceTrainConfig(epochs=4, batch_size=16, lr=1e-2)
    accuracy = {}
    for bidirectional in (False, True):
        torch.manual_seed(0)
        model = SequenceTagger(
            len(vocab), NUM_TAGS, 16, 16, bidirectional=bidirectional, implementation="cudnn"
        )
        train_sequence_model(model, train, config, device="cpu")
        accuracy[bidirectional] = tagging_accuracy(model, test, only_tokens=ambiguous)
        assert tagging_accuracy(model, test) > 0.95
    # Measured: 0.71 one-way, 0.89 both ways (83 ambiguous tokens).
    assert accuracy[True] > 0.8
    assert accuracy[True] > accuracy[False] + 0.1


def test_classifier_beats_chance_on_grammaticality(vocab):
    train = encode_labelled(grammaticality_examples(2000, seed=3), vocab)
    test = encode_labelled(grammaticality_examples(500, seed=4), vocab)
    torch.manual_seed(0)
    model = SequenceClassifier(len(vocab), 2, 16, 32, implementation="cudnn")
    train_sequence_model(model, train, SequenceTrainConfig(epochs=6, lr=1e-2), device="cpu")
    # Measured: 0.84 (chance: 0.5 ± 0.045 at two standard deviations).
    assert classification_accuracy(model, test) > 0.7


def test_bad_input_raises_clear_errors(vocab, tagged):
    with pytest.raises(ValueError, match="implementation"):
        SequenceTagger(10, 3, 4, 4, implementation="cuda")
    with pytest.raises(ValueError, match="cell"):
        SequenceClassifier(10, 3, 4, 4, cell="lstmx")
    tagger = SequenceTagger(len(vocab), NUM_TAGS, 4, 4)
    tokens, lengths = pad_sequences([[4, 5, 6], [7]], 0)
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        tagger(tokens[:, 0], lengths)
    with pytest.raises(ValueError, match="one length per sequence"):
        tagger(tokens, lengths[:1])
    with pytest.raises(ValueError, match="between 1 and T"):
        tagger(tokens, torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="one tag per token"):
        collate([([4, 5], [1])])
    with pytest.raises(ValueError, match="no training examples"):
        train_sequence_model(tagger, [], device="cpu")
