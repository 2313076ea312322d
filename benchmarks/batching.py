"""Batching variable-length sequences: bucketing against random batches, packed against padded inputs.

The data are sentences of the grammar corpus (``course_lib.data.grammar``), of many lengths.
One epoch of each sampler of ``course_lib.data.padding`` gives

    padding fraction = 1 − Σ_b n_b / Σ_batches (B · T)

(:func:`course_lib.data.padding.padding_fraction`). The same epochs are then run through an
embedding and a ``torch.nn.LSTM`` (forward and backward) in two ways: on the padded batch,
the layer stepping through all T rows, and through ``pack_padded_sequence``
(:func:`course_lib.models.stacked.run_packed`), which hands the layer only the real steps.
The four combinations run side by side; each is reported as its speed in real tokens per
second relative to random, padded batches (every combination processes the same real tokens).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.common import Context, Outcome, interleaved_medians, judge, rounded
from course_lib.data.grammar import grammar_corpus
from course_lib.data.padding import BucketBatchSampler, RandomBatchSampler, pad_sequences, padding_fraction
from course_lib.device import seed_everything
from course_lib.models.stacked import run_packed
from course_lib.vocab import PAD, Vocabulary

NAME = "batching"
TITLE = "Batching: bucketing against random batches, packed against padded"
BASELINE = "random, padded"
TARGET_PADDING_CUT = 0.5


class Encoder(nn.Module):
    """Embedding and one LSTM layer, run on a padded batch either padded or packed."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, pad_id: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.rnn = nn.LSTM(embedding_dim, hidden_size)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, packed: bool) -> torch.Tensor:
        """Hidden states (T, B, H) of token ids (T, B); with ``packed``, zero at padded positions."""
        x = self.embedding(tokens)
        output, _ = run_packed(self.rnn, x, lengths) if packed else self.rnn(x)
        return output


def epoch_pass(model: Encoder, batches: list[tuple[torch.Tensor, torch.Tensor]], packed: bool):
    """A function of no arguments: forward and backward over every batch of one epoch."""

    def run() -> None:
        for tokens, lengths in batches:
            model.zero_grad(set_to_none=True)
            mask = (torch.arange(tokens.shape[0], device=tokens.device).unsqueeze(1) < lengths).unsqueeze(-1)
            output = model(tokens, lengths, packed)
            (output.pow(2) * mask).sum().backward()

    return run


def run(context: Context) -> Outcome:
    settings = {
        "sentences": context.pick(256, 2000, 40000),
        "batch_size": context.pick(32, 64, 64),
        "pool_batches": 50,
        "embedding_dim": context.pick(16, 64, 128),
        "hidden_size": context.pick(16, 128, 512),
        "rounds": context.pick(1, 3, 10),
    }
    seed_everything(0)
    sentences = grammar_corpus(settings["sentences"], seed=1)
    vocab = Vocabulary.build(sentences)
    pad_id = vocab.token_to_id[PAD]
    encoded = [vocab.encode(sentence) for sentence in sentences]
    lengths = [len(ids) for ids in encoded]
    samplers = {
        "random": RandomBatchSampler(len(encoded), settings["batch_size"], seed=0),
        "bucketed": BucketBatchSampler(
            lengths, settings["batch_size"], seed=0, pool_batches=settings["pool_batches"]
        ),
    }
    epochs = {name: list(sampler) for name, sampler in samplers.items()}
    fractions = {name: padding_fraction(batches, lengths) for name, batches in epochs.items()}

    model = Encoder(len(vocab), settings["embedding_dim"], settings["hidden_size"], pad_id).to(context.device)
    passes = {}
    for name, batches in epochs.items():
        tensors = []
        for indices in batches:
            tokens, batch_lengths = pad_sequences([encoded[i] for i in indices], pad_id)
            tensors.append((tokens.to(context.device), batch_lengths.to(context.device)))
        for packed in (False, True):
            passes[f"{name}, {'packed' if packed else 'padded'}"] = epoch_pass(model, tensors, packed)
    seconds = interleaved_medians(passes, settings["rounds"], context.device)
    real_tokens = sum(lengths)
    figures = {
        "sentences": len(encoded),
        "real_tokens": real_tokens,
        "length_min_mean_max": [min(lengths), rounded(real_tokens / len(lengths)), max(lengths)],
        "padding_fraction": {name: rounded(value) for name, value in fractions.items()},
        "speed_vs_random_padded": {name: rounded(seconds[BASELINE] / s) for name, s in seconds.items()},
    }
    if context.quote_times:
        figures["real_tokens_per_s"] = {name: rounded(real_tokens / s) for name, s in seconds.items()}
    outcome = Outcome(settings=settings, figures=figures)
    outcome.targets.append(
        judge(
            context,
            f"bucketing leaves at most {TARGET_PADDING_CUT:g} × the padding of random batches",
            rounded(fractions["bucketed"] / fractions["random"]),
            TARGET_PADDING_CUT,
            needs_gpu=False,
        )
    )
    return outcome
