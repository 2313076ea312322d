"""Language models on the course corpora: test perplexity of every model of Chapters 1, 2 and 5.

Two corpora, split and tokenised as in the chapters:

* the grammar corpus (``course_lib.data.grammar``): sentences sampled from a probabilistic
  grammar, whose exact entropy rate H (nats per token, ``</s>`` included) gives the lowest
  perplexity any model can reach, the floor e^H;
* the Python-prose corpus (``course_lib.data.stdlib``): the sentences of the standard library's
  docstrings, words seen fewer than ``min_freq`` times in training replaced by ``<unk>``
  (left out of ``--tiny`` runs).

Models: an interpolated Kneser–Ney trigram (``course_lib.ngram``), the fixed-window network
(``course_lib.models.fixed_window``), a vanilla RNN (``course_lib.models.rnn.RNNLM``), an LSTM
and a GRU (``course_lib.models.lstm.RecurrentLM``), the neural ones trained by
``course_lib.training.train_language_model`` (truncated BPTT, Adam) with torch.nn's recurrent
layers. Reported: test perplexity, its ratio to the floor on the grammar corpus, parameters,
and the training time of each model when measured on a GPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from torch import nn

from benchmarks.common import Context, Outcome, rounded, synchronize
from course_lib.data.batching import encode_stream
from course_lib.data.grammar import entropy_rate, grammar_corpus
from course_lib.data.splits import train_val_test_split
from course_lib.data.stdlib import python_prose_sentences
from course_lib.device import seed_everything
from course_lib.models.fixed_window import FixedWindowLM, parameter_count
from course_lib.models.lstm import RecurrentLM
from course_lib.models.rnn import RNNLM
from course_lib.ngram import KneserNey
from course_lib.training import TrainConfig, evaluate_language_model, train_language_model
from course_lib.vocab import EOS, Vocabulary

NAME = "language_models"
TITLE = "Language models on the grammar and Python-prose corpora"
Sentences = list[list[str]]


def grammar_splits(context: Context) -> tuple[Sentences, Sentences, Sentences]:
    """The chapters' grammar corpus: training (seed 1), validation (seed 3) and test (seed 2) sentences."""
    sizes = context.pick((500, 100, 100), (20_000, 1_000, 2_000), (40_000, 2_000, 4_000))
    return tuple(grammar_corpus(n, seed=seed) for n, seed in zip(sizes, (1, 3, 2), strict=True))


def prose_splits() -> tuple[Sentences, Sentences, Sentences]:
    """The chapters' Python-prose corpus, split 80/10/10 with seed 0."""
    return tuple(train_val_test_split(python_prose_sentences(), seed=0))


def neural_builders(vocab_size: int, eos_id: int, size: dict) -> dict[str, Callable[[], nn.Module]]:
    """The neural models, each built fresh by a function of no arguments."""
    e, h = size["embedding_dim"], size["hidden_size"]
    return {
        "fixed-window (4 tokens)": lambda: FixedWindowLM(vocab_size, 4, e, h, pad_id=eos_id),
        "RNN": lambda: RNNLM(vocab_size, e, h, cell="cudnn"),
        "LSTM": lambda: RecurrentLM(vocab_size, e, h, cell="lstm", implementation="cudnn"),
        "GRU": lambda: RecurrentLM(vocab_size, e, h, cell="gru", implementation="cudnn"),
    }


def evaluate_corpus(
    splits: tuple[Sentences, Sentences, Sentences], min_freq: int, settings: dict, context: Context
) -> list[dict]:
    """One row per model: test perplexity, parameters, and (on a GPU) training seconds."""
    train, val, test = splits
    vocab = Vocabulary.build(train, min_freq=min_freq)
    train_ids, val_ids, test_ids = (encode_stream(part, vocab) for part in splits)
    kneser_ney = KneserNey(3).fit(train, vocab=vocab)
    rows = [
        {
            "model": "Kneser–Ney, n = 3",
            "parameters": sum(kneser_ney.num_ngrams().values()),
            "test_perplexity": kneser_ney.perplexity(test),
        }
    ]
    config = TrainConfig(
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        seq_len=settings["seq_len"],
        lr=settings["lr"],
        patience=None,
        max_batches_per_epoch=settings["max_batches_per_epoch"],
        mixed_precision=True,
        progress=False,
    )
    for name, build in neural_builders(len(vocab), vocab.token_to_id[EOS], settings).items():
        seed_everything(0)
        model = build()
        start = time.perf_counter()
        train_language_model(model, train_ids, val_ids, config, device=context.device)
        synchronize(context.device)
        seconds = time.perf_counter() - start
        row = {
            "model": name,
            "parameters": parameter_count(model),
            "test_perplexity": math.exp(evaluate_language_model(model, test_ids, device=context.device)),
        }
        if context.quote_times:
            row["training_seconds"] = rounded(seconds)
        rows.append(row)
    for row in rows:
        row["test_perplexity"] = rounded(row["test_perplexity"], 4)
    return rows


def run(context: Context) -> Outcome:
    settings = {
        "embedding_dim": context.pick(8, 32, 64),
        "hidden_size": context.pick(16, 64, 256),
        "epochs": context.pick(1, 1, 6),
        "batch_size": context.pick(16, 32, 128),
        "seq_len": context.pick(16, 32, 64),
        "lr": context.pick(1e-2, 1e-2, 3e-3),
        "max_batches_per_epoch": context.pick(10, 100, None),
        "prose_min_freq": 10,
    }
    floor = math.exp(entropy_rate())
    grammar = evaluate_corpus(grammar_splits(context), 1, settings, context)
    for row in grammar:
        row["above_floor"] = rounded(row["test_perplexity"] / floor - 1)
    figures = {"grammar": {"entropy_floor_perplexity": rounded(floor, 4), "models": grammar}}
    outcome = Outcome(settings=settings, figures=figures)
    if context.tiny:
        outcome.notes.append("tiny run: the Python-prose corpus (seconds to extract) is left out")
    else:
        figures["prose"] = evaluate_corpus(prose_splits(), settings["prose_min_freq"], settings, context)
    outcome.notes.append(
        "above_floor = test perplexity / e^H − 1 on the grammar corpus; no numeric target is set for these"
    )
    return outcome
