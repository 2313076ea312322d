"""Grapheme-to-phoneme conversion (Chapter 7): attention seq2seq on the CMU dictionary.

The split is the chapter's (``course_lib.data.g2p.g2p_split``: by a hash of the word, 90/5/5),
phonemes without stress digits. The model is ``course_lib.models.seq2seq.Seq2Seq`` (a
bidirectional LSTM encoder, an LSTM decoder with additive attention), trained by
``course_lib.seq2seq_training.train_seq2seq`` (teacher forcing, Adam, bucketed batches) on
all training words (the quick profile: a random subset), and scored on test words by the
word error rate (a word is right when the output equals one of its pronunciations) and the
phoneme error rate, decoding greedily and with beam search.

Target (full profile, one H100): word error rate ≤ 25% on the test words, with the training
time and the beam width used.
"""

from __future__ import annotations

import random

from benchmarks.common import Context, Outcome, judge, rounded
from course_lib.data.g2p import cmudict_entries, g2p_split
from course_lib.device import seed_everything
from course_lib.metrics import phoneme_error_rate, word_error_rate
from course_lib.models.seq2seq import Seq2Seq
from course_lib.models.tagger import SequenceTrainConfig
from course_lib.seq2seq_training import build_vocabularies, encode_pairs, train_seq2seq, translate_all

NAME = "g2p"
TITLE = "Grapheme-to-phoneme conversion with attention (CMU dictionary)"
TARGET_WER = 0.25


def sample_words(words: dict, count: int | None, seed: int) -> list[str]:
    """``count`` words drawn at random (all of them, sorted, when ``count`` is ``None``)."""
    chosen = sorted(words)
    if count is None or count >= len(chosen):
        return chosen
    return random.Random(seed).sample(chosen, count)


def run(context: Context) -> Outcome:
    settings = {
        "train_words": context.pick(300, 10_000, None),
        "test_words": context.pick(50, 1_000, None),
        "embedding_size": context.pick(16, 32, 64),
        "hidden_size": context.pick(32, 64, 256),
        "attention": "additive",
        "dropout": context.pick(0.0, 0.0, 0.2),
        "epochs": context.pick(1, 2, 12),
        "batch_size": context.pick(32, 64, 128),
        "lr": context.pick(5e-3, 5e-3, 3e-3),
        "beam_widths": context.pick([1], [1, 4], [1, 4]),
        "beam_test_words": context.pick(20, 200, None),
    }
    train, _, test = g2p_split(cmudict_entries())
    train_words = sample_words(train, settings["train_words"], seed=0)
    test_words = sample_words(test, settings["test_words"], seed=1)
    pairs = [(word, pronunciation) for word in train_words for pronunciation in train[word]]
    src_vocab, tgt_vocab = build_vocabularies(pairs)
    seed_everything(0)
    model = Seq2Seq(
        len(src_vocab),
        len(tgt_vocab),
        settings["embedding_size"],
        settings["hidden_size"],
        attention=settings["attention"],
        dropout=settings["dropout"],
    )
    config = SequenceTrainConfig(
        epochs=settings["epochs"], batch_size=settings["batch_size"], lr=settings["lr"]
    )
    history = train_seq2seq(model, encode_pairs(pairs, src_vocab, tgt_vocab), config, device=context.device)

    results = []
    for width in settings["beam_widths"]:
        # Beam search decodes one word at a time: the quick profile scores it on fewer words.
        words = test_words if width == 1 else test_words[: settings["beam_test_words"]]
        references = [test[word] for word in words]
        outputs = translate_all(model, words, src_vocab, tgt_vocab, beam_width=width)
        results.append(
            {
                "beam_width": width,
                "test_words": len(words),
                "wer": rounded(word_error_rate(outputs, references), 4),
                "per": rounded(phoneme_error_rate(outputs, references), 4),
            }
        )
    full_test = [r for r in results if r["test_words"] == len(test_words)]
    best = min(full_test, key=lambda r: r["wer"])
    figures = {
        "training_pairs": len(pairs),
        "train_loss_per_epoch": [rounded(loss, 4) for loss in history.train_loss],
        "decoding": results,
        "best": best,
    }
    if context.quote_times:
        figures["training_seconds"] = rounded(sum(history.epoch_seconds))
    outcome = Outcome(settings=settings, figures=figures)
    outcome.targets.append(
        judge(
            context,
            f"word error rate ≤ {TARGET_WER:.0%} on test words, one H100 (beam width {best['beam_width']})",
            best["wer"],
            TARGET_WER,
            needs_full=True,
        )
    )
    return outcome
