import math

import numpy as np
import pytest

from course_lib.data.grammar import (
    TAGSET,
    Grammar,
    agreement_examples,
    count_derivations,
    default_grammar,
    entropy_rate,
    expected_sentence_length,
    grammar_corpus,
    sample_sentences,
    sentence_log_prob,
)


@pytest.fixture(scope="module")
def sentences():
    return sample_sentences(20_000, seed=0)


def _attachment_grammar() -> Grammar:
    """'see dog with telescope' has two derivations: the PP attaches to the verb or to the noun."""
    rules = {
        "S": [(("V", "NP"), 0.5), (("V", "NP", "PP"), 0.5)],
        "NP": [(("N",), 0.6), (("N", "PP"), 0.4)],
        "PP": [(("P", "N"), 1.0)],
        "V": [(("see",), 1.0)],
        "N": [(("dog",), 0.5), (("telescope",), 0.5)],
        "P": [(("with",), 1.0)],
    }
    return Grammar(rules, {"V": "VERB_SG", "N": "NOUN_SG", "P": "PREP"})


def test_rule_probabilities_sum_to_one():
    grammar = default_grammar()
    for lhs, alternatives in grammar.rules.items():
        assert sum(p for _, p in alternatives) == pytest.approx(1.0, abs=1e-12), lhs
        assert all(p > 0 for _, p in alternatives), lhs
    with pytest.raises(ValueError, match="sum to"):
        Grammar({"S": [(("X",), 0.5)], "X": [(("x",), 1.0)]}, {"X": "NOUN_SG"})


def test_inconsistent_grammar_is_rejected():
    # S -> S S has mean 2 · 0.6 = 1.2 > 1 copies of S per expansion: derivations may never end.
    grammar = Grammar({"S": [(("S", "S"), 0.6), (("X",), 0.4)], "X": [(("x",), 1.0)]}, {"X": "NOUN_SG"})
    with pytest.raises(ValueError, match="infinite expected size"):
        entropy_rate(grammar)


def test_expected_length_is_finite_and_matches_sampling(sentences):
    expected = expected_sentence_length()
    assert 10 <= expected <= 14
    lengths = np.array([len(s.tokens) for s in sentences])
    standard_error = lengths.std() / math.sqrt(len(lengths))
    assert abs(lengths.mean() - expected) < 4 * standard_error


def test_exact_entropy_rate_matches_monte_carlo(sentences):
    # Ratio estimator Σ x / Σ y with x = −log p(sentence), y = length + 1 (for </s>);
    # its standard error by the delta method is sd(x − R·y) / (√N · mean(y)).
    x = np.array([-s.log_prob for s in sentences])
    y = np.array([len(s.tokens) + 1 for s in sentences])
    estimate = x.sum() / y.sum()
    standard_error = (x - estimate * y).std() / (math.sqrt(len(x)) * y.mean())
    assert abs(estimate - entropy_rate()) < 4 * standard_error
    assert 1.5 < entropy_rate() < 4.0


def test_every_sampled_sentence_has_one_derivation_with_the_sampled_probability(sentences):
    for s in sentences[:5000]:
        assert count_derivations(s.tokens) == 1, s.tokens
        assert sentence_log_prob(s.tokens) == pytest.approx(s.log_prob, abs=1e-9)


def test_derivation_counter_finds_ambiguity():
    grammar = _attachment_grammar()
    tokens = ["see", "dog", "with", "telescope"]
    assert count_derivations(tokens, grammar) == 2
    # p = p(PP on the verb) + p(PP on the noun) = 0.5·0.6·0.5·0.5 + 0.5·0.4·0.5·0.5
    assert sentence_log_prob(tokens, grammar) == pytest.approx(math.log(0.075 + 0.05))


@pytest.mark.parametrize(
    "sentence",
    [
        "the dog sleep .",  # no agreement
        "the writer of the books are famous .",  # agreement with the attractor
        "the dog sleeps",  # no final period
        "the dog that the cats sees sleeps .",  # no agreement inside the relative clause
        "the dog is of the cat .",  # "of" only inside noun phrases
        "a apple falls .",  # unknown word
        "",
    ],
)
def test_sentences_outside_the_language_are_rejected(sentence):
    with pytest.raises(ValueError, match="does not generate"):
        sentence_log_prob(sentence.split())


def test_ambiguous_words_are_settled_by_their_neighbours():
    grammar = default_grammar()
    ambiguous = {word for word, tags in grammar.word_tags.items() if len(tags) > 1}
    assert ambiguous == {"light", "square", "novel"}
    for sentence in ["the light light is light .", "the light is near the square novels ."]:
        assert count_derivations(sentence.split()) == 1
    seen = set()
    for s in sample_sentences(5000, seed=3):
        for i, word in enumerate(s.tokens):
            if word in ambiguous:
                # An adjective follows a copula or precedes an adjective or a noun; a noun does neither.
                after_verb = s.tags[i - 1] in ("VERB_SG", "VERB_PL")
                before_noun = s.tags[i + 1] in ("ADJ", "NOUN_SG", "NOUN_PL")
                assert s.tags[i] == ("ADJ" if after_verb or before_noun else "NOUN_SG")
                seen.add(s.tags[i])
    assert seen == {"ADJ", "NOUN_SG"}


def test_tags(sentences):
    grammar = default_grammar()
    assert set(grammar.tags.values()) <= set(TAGSET)
    for s in sentences:
        assert len(s.tags) == len(s.tokens)
        assert set(s.tags) <= set(TAGSET)
        assert all(tag in grammar.word_tags[word] for word, tag in zip(s.tokens, s.tags, strict=True))
        assert s.tags[-1] == "PUNCT"


def test_subject_and_verb_agree(sentences):
    for s in sentences:
        subject, verb = s.tags[s.subject_index], s.tags[s.verb_index]
        assert subject in ("NOUN_SG", "NOUN_PL") and verb in ("VERB_SG", "VERB_PL")
        assert subject[-2:] == verb[-2:]
        assert s.subject_index < s.verb_index


def test_vocabulary_and_lengths(sentences):
    assert 100 <= len(default_grammar().vocabulary) <= 300
    assert all(4 <= len(s.tokens) <= 40 for s in sentences)


def test_sampling_is_deterministic():
    assert sample_sentences(50, seed=7) == sample_sentences(50, seed=7)
    assert grammar_corpus(50, seed=7) == [s.tokens for s in sample_sentences(50, seed=7)]
    assert grammar_corpus(50, seed=7) != grammar_corpus(50, seed=8)


@pytest.mark.parametrize("distance", [1, 2, 3, 5, 8])
def test_agreement_examples(distance):
    grammar = default_grammar()
    examples = agreement_examples(100, distance, seed=1)
    assert len(examples) == 100
    for example in examples:
        assert example.distance == distance
        assert grammar.other_number[example.correct] == example.wrong
        subject = example.prefix[-distance]
        assert grammar.word_tags[subject] & {"NOUN_SG", "NOUN_PL"}
        singular = "VERB_SG" in grammar.word_tags[example.correct]
        assert singular == (subject in grammar.lexicon["Noun_sg"])
    assert examples == agreement_examples(100, distance, seed=1)
    assert examples != agreement_examples(100, distance, seed=2)


def test_agreement_examples_with_attractors():
    examples = agreement_examples(50, 5, seed=0, attractors=1)
    assert all(example.attractors == 1 for example in examples)
    grammar = default_grammar()
    singular_subjects = [example for example in examples if "VERB_SG" in grammar.word_tags[example.correct]]
    assert singular_subjects
    for example in singular_subjects:
        # Plural nouns are never ambiguous, so counting them in the words between is exact.
        assert sum(word in grammar.lexicon["Noun_pl"] for word in example.prefix[-4:]) == 1


def test_agreement_examples_reject_impossible_requests():
    with pytest.raises(ValueError, match="at least 1"):
        agreement_examples(10, 0)
    with pytest.raises(ValueError, match="found only"):
        agreement_examples(10, 60, max_draws=1000)
