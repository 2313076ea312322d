import pytest

from course_lib.tokenizers import char_tokenize, split_sentences, word_tokenize
from course_lib.vocab import BOS, EOS, PAD, UNK, Vocabulary

SENTENCES = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"]]


def test_word_tokenize_keeps_identifiers_and_splits_punctuation():
    assert word_tokenize("Call read_text(), then -1.5 isn't 2.") == [
        "call", "read_text", "(", ")", ",", "then", "-", "1.5", "isn't", "2", ".",
    ]
    assert word_tokenize("The Cat", lowercase=False) == ["The", "Cat"]


def test_char_tokenize_and_sentence_split():
    assert char_tokenize("ab c") == ["a", "b", " ", "c"]
    text = "First one.  Second\n  line two! Third?\n\nNew paragraph"
    assert split_sentences(text) == ["First one.", "Second line two!", "Third?", "New paragraph"]


def test_ids_are_specials_then_frequency_then_alphabetical():
    vocab = Vocabulary.build(SENTENCES)
    assert vocab.id_to_token == [PAD, UNK, BOS, EOS, "cat", "sat", "the", "a", "dog"]
    assert vocab.encode(["the", "cat", "zebra"]) == [6, 4, vocab.unk_id]
    assert vocab.decode([6, 4, 1]) == ["the", "cat", UNK]
    assert len(vocab) == 9 and "dog" in vocab and "zebra" not in vocab


def test_frequency_cut_off_and_max_size():
    assert Vocabulary.build(SENTENCES, min_freq=2).id_to_token[4:] == ["cat", "sat", "the"]
    assert Vocabulary.build(SENTENCES, max_size=2).id_to_token[4:] == ["cat", "sat"]


def test_save_and_load_round_trip(tmp_path):
    vocab = Vocabulary.build(SENTENCES, min_freq=2)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.id_to_token == vocab.id_to_token and loaded.specials == vocab.specials
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]


def test_clear_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        Vocabulary.build([])
    with pytest.raises(TypeError, match="tokenize first"):
        Vocabulary.build(["the cat sat"])
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build(SENTENCES, min_freq=0)
    strict = Vocabulary.build(SENTENCES, specials=(PAD, BOS, EOS))
    with pytest.raises(KeyError, match="no '<unk>' token"):
        strict.encode(["zebra"])
    with pytest.raises(IndexError, match="outside the vocabulary"):
        strict.decode([100])


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a vocabulary file"):
        Vocabulary.load(path)
