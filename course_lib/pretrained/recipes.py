"""The named recipes of the pretrained models: architecture, corpus, schedule and seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course_lib.vocab import EOS


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a pretrained model.

    Attributes:
        name: the checkpoint's file name, without extension.
        summary: one line about the model.
        corpus: ``"ptb"`` (Penn Treebank words), ``"tinyshakespeare"`` (characters; the first
            90% train, the last 10% validate) or ``"cmudict"`` (grapheme-to-phoneme pairs of the
            CMU dictionary, split by :func:`~course_lib.data.g2p.g2p_split`).
        model: ``"deep"`` (:class:`~course_lib.models.deep_lm.DeepRecurrentLM`), ``"fixed_window"``
            (:class:`~course_lib.models.fixed_window.FixedWindowLM`) or ``"seq2seq"``
            (:class:`~course_lib.models.seq2seq.Seq2Seq`).
        architecture: the model's keyword arguments besides the vocabulary sizes.
        epochs: passes over the training data.
        batch_size: B, the examples (or stream columns) per batch.
        seq_len: L, the tokens per chunk of truncated BPTT (language models; 0 for seq2seq).
        optimizer: ``"sgd"`` or ``"adam"``.
        lr: the learning rate of the first epochs.
        lr_decay, decay_after: from epoch ``decay_after`` on (counting from 0) the rate is
            multiplied by ``lr_decay`` once per epoch (Zaremba et al.'s schedule).
        clip_norm: the gradient's global norm is clipped to this.
        seed: seeds every generator before the model is built (and the batch order).
        log_every: batches per point of the learning curve.
        sample_prompt: the tokens samples start from (language models), or the words to
            transcribe (grapheme-to-phoneme).
        sample_tokens: the length of each sample (the most phonemes, for grapheme-to-phoneme).
    """

    name: str
    summary: str
    corpus: str
    model: str
    architecture: dict[str, Any]
    epochs: int
    batch_size: int
    seq_len: int
    optimizer: str
    lr: float
    lr_decay: float = 1.0
    decay_after: int = 0
    clip_norm: float = 5.0
    seed: int = 0
    log_every: int = 100
    sample_prompt: tuple[str, ...] = (EOS,)
    sample_tokens: int = 40

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (from 0)."""
        return self.lr * self.lr_decay ** max(0, epoch + 1 - self.decay_after)


def _zaremba(
    name: str, summary: str, cell: str, size: int, epochs: int = 13, decay_after: int = 4, **schedule: Any
) -> Recipe:
    """Zaremba et al.'s small PTB setting (SGD, the rate halved every epoch from the fifth), tied weights.

    Zaremba et al. sum the loss over the L = 35 steps of a chunk (rate 1, gradient norm clipped
    to 5); the course averages it, so the gradient is 35 times smaller and the same largest step,
    rate × clip = 5, is rate 20 with the norm clipped to 0.25. ``schedule`` overrides fields of the
    schedule (the vanilla RNN and the GRU diverge at that rate and train with Adam instead).
    """
    return Recipe(
        name=name,
        summary=summary,
        corpus="ptb",
        model="deep",
        architecture={
            "embedding_dim": size,
            "hidden_size": size,
            "cell": cell,
            "num_layers": 2 if cell != "rnn" else 1,
            "dropout": 0.0,
            "tie_weights": True,
            "init_range": 0.1,
        },
        epochs=epochs,
        batch_size=20,
        seq_len=35,
        **{
            "optimizer": "sgd",
            "lr": 20.0,
            "lr_decay": 0.5,
            "decay_after": decay_after,
            "clip_norm": 0.25,
            **schedule,
        },
    )


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        _zaremba("ptb-lstm", "two-layer LSTM word model on the Penn Treebank, 200 units, tied", "lstm", 200),
        _zaremba(
            "ptb-gru",
            "two-layer GRU word model on the Penn Treebank, 200 units, tied",
            "gru",
            200,
            epochs=4,
            decay_after=2,
            optimizer="adam",
            lr=2e-3,
        ),
        _zaremba(
            "ptb-rnn",
            "one-layer tanh RNN word model on the Penn Treebank, 256 units, tied",
            "rnn",
            256,
            epochs=6,
            decay_after=3,
            optimizer="adam",
            lr=2e-3,
        ),
        Recipe(
            name="ptb-fixed-window",
            summary="Bengio et al.'s fixed-window (5-gram) neural model on the Penn Treebank",
            corpus="ptb",
            model="fixed_window",
            architecture={"context_size": 4, "embedding_dim": 128, "hidden_dim": 256},
            epochs=5,
            batch_size=64,
            seq_len=35,
            optimizer="adam",
            lr=2e-3,
            lr_decay=0.5,
            decay_after=3,
        ),
        Recipe(
            name="shakespeare-char-lstm",
            summary="two-layer character LSTM on tiny-shakespeare, 512 units",
            corpus="tinyshakespeare",
            model="deep",
            architecture={
                "embedding_dim": 128,
                "hidden_size": 512,
                "cell": "lstm",
                "num_layers": 2,
                "dropout": 0.2,
                "init_range": 0.08,
            },
            epochs=6,
            batch_size=64,
            seq_len=100,
            optimizer="adam",
            lr=2e-3,
            lr_decay=0.7,
            decay_after=3,
            log_every=25,
            sample_prompt=tuple("ROMEO:\n"),
            sample_tokens=200,
        ),
        Recipe(
            name="g2p-attention",
            summary="attention encoder-decoder for grapheme-to-phoneme on the CMU dictionary, 256 units",
            corpus="cmudict",
            model="seq2seq",
            architecture={"embedding_size": 64, "hidden_size": 256, "attention": "additive", "dropout": 0.2},
            epochs=6,
            batch_size=64,
            seq_len=0,
            optimizer="adam",
            lr=3e-3,
            lr_decay=0.6,
            decay_after=3,
            clip_norm=1.0,
            sample_prompt=("knight", "photographer", "xylophone", "colonel", "ghoti"),
            sample_tokens=20,
        ),
    ]
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``."""
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"no pretrained recipe {name!r}; the recipes are: {', '.join(RECIPES)}") from None
