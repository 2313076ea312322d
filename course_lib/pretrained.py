"""Pretrained models: named recipes, trained once with one command, loaded by the chapters.

Some results of the lectures need more training than a book build allows (an LSTM reaches
its Penn Treebank perplexity after a dozen passes over a million words). Each such model has a
named :class:`Recipe` in :data:`RECIPES` (architecture, corpus, schedule, seed), and

    python -m course_lib.pretrained train ptb-lstm

trains it (on the GPU when there is one), with a progress bar, saving its progress every minute
so that an interrupted run resumes where it stopped. It writes two files into ``checkpoints/``:

* ``ptb-lstm.pt``: the weights in half precision and the vocabulary;
* ``ptb-lstm.json``, the manifest: the recipe, the data's sha256, the library version and the
  command, the hardware, the wall time, the learning curve (the mean training loss every
  ``log_every`` batches, and the validation loss after each epoch), the metrics, measured on
  the half-precision weights, and samples at several points of training.

:func:`load_pretrained` gives the model back, after checking the weights' sha256 against the
manifest and that they fit the architecture the recipe builds today; otherwise it fails and
says how to retrain. The metrics are losses in nats per predicted token (``*_loss``) and their
perplexities exp(loss).

    pretrained = load_pretrained("ptb-lstm")
    pretrained.model, pretrained.vocab, pretrained.manifest["metrics"]["test_perplexity"]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

import course_lib
from course_lib.data.batching import batchify, bptt_batches, count_bptt_batches
from course_lib.data.download import REGISTRY, TINY_SHAKESPEARE, load_tinyshakespeare
from course_lib.data.ptb import SPLITS as PTB_SPLITS
from course_lib.data.ptb import ptb_streams, ptb_vocabulary
from course_lib.device import get_device, seed_everything
from course_lib.generation import generate
from course_lib.models.deep_lm import DeepRecurrentLM
from course_lib.models.fixed_window import FixedWindowLM
from course_lib.training import detach_state, evaluate_language_model, language_model_step
from course_lib.vocab import EOS, Vocabulary

CHECKPOINT_DIR_ENV_VAR = "COURSE_LIB_CHECKPOINTS"
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
EVAL_BATCH_SIZE, EVAL_SEQ_LEN = 10, 35
SAVE_EVERY_S = 60.0
SHAKESPEARE_TRAIN_FRACTION = 0.9


class PretrainedError(RuntimeError):
    """A checkpoint is missing, damaged, or does not fit the recipe; the message says how to retrain."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a pretrained model.

    Attributes:
        name: the checkpoint's file name, without extension.
        summary: one line about the model.
        corpus: ``"ptb"`` (Penn Treebank words) or ``"tinyshakespeare"`` (characters; the first
            90% train, the last 10% validate).
        model: ``"deep"`` (:class:`~course_lib.models.deep_lm.DeepRecurrentLM`) or
            ``"fixed_window"`` (:class:`~course_lib.models.fixed_window.FixedWindowLM`).
        architecture: the model's keyword arguments besides the vocabulary size.
        epochs: passes over the training stream.
        batch_size, seq_len: B columns read L tokens at a time (truncated BPTT, state carried).
        optimizer: ``"sgd"`` or ``"adam"``.
        lr: the learning rate of the first epochs.
        lr_decay, decay_after: from epoch ``decay_after`` on (counting from 0) the rate is
            multiplied by ``lr_decay`` once per epoch (Zaremba et al.'s schedule).
        clip_norm: the gradient's global norm is clipped to this.
        seed: seeds every generator before the model is built.
        log_every: batches per point of the learning curve.
        sample_prompt: the tokens samples start from.
        sample_tokens: the length of each sample.
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


def _zaremba(name: str, summary: str, cell: str, size: int, epochs: int = 13, lr: float = 1.0) -> Recipe:
    """Zaremba et al.'s small PTB setting (two layers, SGD, halving after epoch 4), tied weights."""
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
        optimizer="sgd",
        lr=lr,
        lr_decay=0.5,
        decay_after=4,
    )


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        _zaremba("ptb-lstm", "two-layer LSTM word model on the Penn Treebank, 200 units, tied", "lstm", 200),
        _zaremba("ptb-gru", "two-layer GRU word model on the Penn Treebank, 200 units, tied", "gru", 200),
        _zaremba(
            "ptb-rnn",
            "one-layer tanh RNN word model on the Penn Treebank, 256 units, tied",
            "rnn",
            256,
            lr=0.5,
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
            lr=1e-3,
            lr_decay=0.5,
            decay_after=2,
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
            epochs=12,
            batch_size=64,
            seq_len=100,
            optimizer="adam",
            lr=2e-3,
            lr_decay=0.8,
            decay_after=4,
            log_every=25,
            sample_prompt=tuple("ROMEO:\n"),
            sample_tokens=200,
        ),
    ]
}


@dataclass
class Pretrained:
    """A loaded checkpoint: the model (eval mode, float32, on the CPU), its vocabulary and manifest."""

    model: nn.Module
    vocab: Vocabulary
    manifest: dict[str, Any]
    recipe: Recipe = field(repr=False)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``."""
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"no pretrained recipe {name!r}; the recipes are: {', '.join(RECIPES)}") from None


def resolve_checkpoint_dir(checkpoint_dir: str | os.PathLike[str] | None = None) -> Path:
    """``checkpoint_dir``, else ``$COURSE_LIB_CHECKPOINTS``, else the repository's ``checkpoints/``."""
    if checkpoint_dir is not None:
        return Path(checkpoint_dir)
    return Path(os.environ.get(CHECKPOINT_DIR_ENV_VAR) or DEFAULT_CHECKPOINT_DIR)


def build_model(recipe: Recipe, vocab_size: int) -> nn.Module:
    """The untrained model of ``recipe`` for a vocabulary of ``vocab_size`` tokens."""
    if recipe.model == "deep":
        return DeepRecurrentLM(vocab_size, **recipe.architecture)
    if recipe.model == "fixed_window":
        return FixedWindowLM(vocab_size, **recipe.architecture)
    raise ValueError(f"recipe {recipe.name!r} names an unknown model kind {recipe.model!r}")


def corpus_data(recipe: Recipe) -> tuple[Vocabulary, dict[str, torch.Tensor]]:
    """The vocabulary of the recipe's corpus and its splits as id streams (``"train"``, ``"valid"``, …)."""
    if recipe.corpus == "ptb":
        vocab = ptb_vocabulary()
        return vocab, ptb_streams(vocab)
    if recipe.corpus == "tinyshakespeare":
        text = load_tinyshakespeare()
        vocab = Vocabulary(sorted(set(text)), specials=())
        cut = int(SHAKESPEARE_TRAIN_FRACTION * len(text))
        ids = torch.tensor(vocab.encode(text), dtype=torch.long)
        return vocab, {"train": ids[:cut], "valid": ids[cut:]}
    raise ValueError(f"recipe {recipe.name!r} names an unknown corpus {recipe.corpus!r}")


def corpus_sha256(recipe: Recipe) -> dict[str, str]:
    """The sha256 of every file the recipe's corpus is read from."""
    entries = PTB_SPLITS.values() if recipe.corpus == "ptb" else [TINY_SHAKESPEARE]
    return {entry.path: REGISTRY[entry.name].sha256 for entry in entries}


def _make_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr)
    raise ValueError(f"recipe {recipe.name!r} names an unknown optimizer {recipe.optimizer!r}")


def evaluate(model: nn.Module, stream: torch.Tensor) -> float:
    """Mean NLL in nats per token of ``stream``, in float32, B = 10 columns read 35 tokens at a time."""
    return evaluate_language_model(
        model, stream, batch_size=EVAL_BATCH_SIZE, seq_len=EVAL_SEQ_LEN, mixed_precision=False
    )


def _sample(model: nn.Module, vocab: Vocabulary, recipe: Recipe) -> str:
    tokens = generate(
        model, vocab, list(recipe.sample_prompt), max_tokens=recipe.sample_tokens, seed=0, stop_token=None
    )
    separator = "" if recipe.corpus == "tinyshakespeare" else " "
    return separator.join([*recipe.sample_prompt, *tokens]) if separator == "" else separator.join(tokens)


def _half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict in float16 on the CPU; tensors the model shares (tied weights) stay shared."""
    halves: dict[int, torch.Tensor] = {}
    result = {}
    for key, tensor in model.state_dict().items():
        pointer = tensor.data_ptr()
        if pointer not in halves:
            halves[pointer] = tensor.detach().to("cpu", torch.float16)
        result[key] = halves[pointer]
    return result


def _hardware(device: torch.device) -> dict[str, Any]:
    record = {
        "device": device.type,
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomically(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass
class _Progress:
    """What an interrupted run needs to go on: saved to ``.NAME.resume.pt`` every minute."""

    epoch: int = 0
    batch: int = 0
    elapsed_s: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    best_valid_loss: float = math.inf
    window_loss: float = 0.0
    window_batches: int = 0


def train(
    name: str,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    max_batches: int | None = None,
    restart: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train recipe ``name`` and write its checkpoint and manifest; returns the manifest.

    Args:
        name: a key of :data:`RECIPES`.
        checkpoint_dir: where to write (see :func:`resolve_checkpoint_dir`).
        device: where to train; ``get_device()`` by default (the GPU when there is one).
        max_batches: stop after this many batches of the first epoch and write nothing: a short
            run that gives the first points of the learning curve (the manifest is returned).
        restart: ignore a saved unfinished run and start again.
        progress: show a progress bar.
    """
    recipe = get_recipe(name)
    directory = resolve_checkpoint_dir(checkpoint_dir)
    device = torch.device(device) if device is not None else get_device()
    vocab, streams = corpus_data(recipe)
    seed_everything(recipe.seed)
    model = build_model(recipe, len(vocab)).to(device)
    optimizer = _make_optimizer(recipe, model)
    data = batchify(streams["train"].to(device), recipe.batch_size)
    batches_per_epoch = count_bptt_batches(data, recipe.seq_len)

    resume_path = directory / f".{name}.resume.pt"
    state, best_weights, run = None, None, _Progress()
    if max_batches is None and resume_path.is_file() and not restart:
        saved = torch.load(resume_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"].cpu())
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        state, best_weights, run = saved["state"], saved["best_weights"], saved["progress"]
        print(f"resuming {name} at epoch {run.epoch + 1}, batch {run.batch} of {batches_per_epoch}")
    if not run.samples:
        run.samples.append({"step": 0, "epoch": 0.0, "text": _sample(model, vocab, recipe)})

    def save_progress() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "state": state,
            "best_weights": best_weights,
            "progress": run,
        }
        _write_atomically(resume_path, lambda path: torch.save(payload, path))

    last_save = time.perf_counter()
    while run.epoch < recipe.epochs:
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(run.epoch)
        model.train()
        start = time.perf_counter()
        total = batches_per_epoch if max_batches is None else min(max_batches, batches_per_epoch)
        bar = tqdm(
            total=total,
            initial=run.batch,
            desc=f"{name} epoch {run.epoch + 1}/{recipe.epochs}",
            disable=not progress,
        )
        for index, (inputs, targets) in enumerate(bptt_batches(data, recipe.seq_len)):
            if index < run.batch:
                continue
            if index >= total:
                break
            loss, state = language_model_step(
                model, optimizer, inputs, targets, detach_state(state), recipe.clip_norm
            )
            run.batch += 1
            run.window_loss += loss
            run.window_batches += 1
            if run.window_batches == recipe.log_every:
                step = run.epoch * batches_per_epoch + run.batch
                run.curve.append(
                    {
                        "step": step,
                        "epoch": step / batches_per_epoch,
                        "train_loss": run.window_loss / run.window_batches,
                    }
                )
                run.window_loss, run.window_batches = 0.0, 0
                bar.set_postfix(loss=f"{run.curve[-1]['train_loss']:.3f}")
            bar.update()
            if max_batches is None and time.perf_counter() - last_save > SAVE_EVERY_S:
                run.elapsed_s += time.perf_counter() - start
                start = last_save = time.perf_counter()
                save_progress()
        bar.close()
        if max_batches is not None:
            return {"recipe": asdict(recipe), "curve": run.curve}
        valid_loss = evaluate(model, streams["valid"])
        run.elapsed_s += time.perf_counter() - start
        run.epochs.append(
            {
                "epoch": run.epoch + 1,
                "lr": recipe.learning_rate(run.epoch),
                "valid_loss": valid_loss,
                "elapsed_s": run.elapsed_s,
            }
        )
        run.samples.append(
            {
                "step": (run.epoch + 1) * batches_per_epoch,
                "epoch": float(run.epoch + 1),
                "text": _sample(model, vocab, recipe),
            }
        )
        if valid_loss < run.best_valid_loss:
            run.best_valid_loss, best_weights = valid_loss, copy.deepcopy(model.state_dict())
        print(
            f"{name} epoch {run.epoch + 1}: validation loss {valid_loss:.4f} "
            f"(perplexity {math.exp(valid_loss):.2f}), {run.elapsed_s / 60:.1f} min so far"
        )
        run.epoch, run.batch, state = run.epoch + 1, 0, None
        start = last_save = time.perf_counter()
        save_progress()

    model.load_state_dict(best_weights)
    manifest = _finish(recipe, model, vocab, streams, directory, device, run)
    resume_path.unlink(missing_ok=True)
    return manifest


def _finish(
    recipe: Recipe,
    model: nn.Module,
    vocab: Vocabulary,
    streams: dict[str, torch.Tensor],
    directory: Path,
    device: torch.device,
    run: _Progress,
) -> dict[str, Any]:
    """Round the weights to float16, measure the metrics on them, write the checkpoint and manifest."""
    weights = _half_state_dict(model)
    rounded = build_model(recipe, len(vocab))
    rounded.load_state_dict({key: value.float() for key, value in weights.items()})
    rounded.eval()
    metrics: dict[str, float] = {}
    for split in streams:
        if split != "train":
            loss = evaluate(rounded, streams[split])
            metrics[f"{split}_loss"], metrics[f"{split}_perplexity"] = loss, math.exp(loss)
    checkpoint = directory / f"{recipe.name}.pt"
    payload = {
        "recipe": recipe.name,
        "weights": weights,
        "vocab": {"specials": list(vocab.specials), "tokens": vocab.id_to_token[len(vocab.specials) :]},
    }
    _write_atomically(checkpoint, lambda path: torch.save(payload, path))
    manifest = {
        "name": recipe.name,
        "summary": recipe.summary,
        "recipe": asdict(recipe),
        "parameters": sum(p.numel() for p in rounded.parameters()),
        "data_sha256": corpus_sha256(recipe),
        "library_version": course_lib.__version__,
        "git_commit": _git_commit(),
        "command": f"python -m course_lib.pretrained train {recipe.name}",
        "argv": shlex.join(sys.argv),
        "hardware": _hardware(device),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": run.elapsed_s,
        "curve": run.curve,
        "epochs": run.epochs,
        "metrics": metrics,
        "samples": run.samples,
        "checkpoint": {
            "file": checkpoint.name,
            "bytes": checkpoint.stat().st_size,
            "sha256": _sha256(checkpoint),
        },
    }
    _write_atomically(
        directory / f"{recipe.name}.json",
        lambda path: path.write_text(
            json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        ),
    )
    return manifest


def read_manifest(name: str, checkpoint_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The manifest of checkpoint ``name`` (no weights are read)."""
    recipe = get_recipe(name)
    path = resolve_checkpoint_dir(checkpoint_dir) / f"{name}.json"
    if not path.is_file():
        raise PretrainedError(f"no manifest {path}: the model was never trained here. {_retrain(recipe)}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PretrainedError(
            f"the manifest {path} is not valid JSON ({error}). {_retrain(recipe)}"
        ) from None


def _retrain(recipe: Recipe) -> str:
    return (
        f"Retrain it with `python -m course_lib.pretrained train {recipe.name}` "
        f"(about the recorded wall time on a comparable machine), which rewrites both files."
    )


def load_pretrained(name: str, checkpoint_dir: str | os.PathLike[str] | None = None) -> Pretrained:
    """Load checkpoint ``name`` after checking its sha256 and that it fits the recipe's architecture.

    Raises:
        PretrainedError: the files are missing, the weights' sha256 differs from the manifest's,
            or the recipe or its architecture changed since the model was trained.
    """
    recipe = get_recipe(name)
    manifest = read_manifest(name, checkpoint_dir)
    path = resolve_checkpoint_dir(checkpoint_dir) / manifest["checkpoint"]["file"]
    if not path.is_file():
        raise PretrainedError(f"the weights {path} named by the manifest are missing. {_retrain(recipe)}")
    digest = _sha256(path)
    if digest != manifest["checkpoint"]["sha256"]:
        raise PretrainedError(
            f"{path} has sha256 {digest}, but its manifest records {manifest['checkpoint']['sha256']}: "
            f"the file is damaged or from another run. {_retrain(recipe)}"
        )
    if manifest["recipe"] != json.loads(json.dumps(asdict(recipe))):
        changed = sorted(
            key
            for key, value in asdict(recipe).items()
            if json.loads(json.dumps(value)) != manifest["recipe"].get(key)
        )
        raise PretrainedError(
            f"the recipe {name!r} changed since {path.name} was trained (fields: {', '.join(changed)}). "
            f"{_retrain(recipe)}"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    vocab = Vocabulary(payload["vocab"]["tokens"], payload["vocab"]["specials"])
    model = build_model(recipe, len(vocab))
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in payload["weights"].items()}
    if expected != found:
        differences = sorted(set(expected.items()) ^ set(found.items()))[:4]
        raise PretrainedError(
            f"the weights in {path} do not fit the architecture the code builds for {name!r} "
            f"(first differences, name and shape: {differences}). {_retrain(recipe)}"
        )
    model.load_state_dict({key: value.float() for key, value in payload["weights"].items()})
    model.eval()
    return Pretrained(model=model, vocab=vocab, manifest=manifest, recipe=recipe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.pretrained", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train", help="train a recipe and write checkpoints/NAME.pt and NAME.json"
    )
    train_parser.add_argument("name", choices=sorted(RECIPES))
    train_parser.add_argument(
        "--checkpoint-dir", help=f"default: ${CHECKPOINT_DIR_ENV_VAR} or {DEFAULT_CHECKPOINT_DIR}"
    )
    train_parser.add_argument("--device", help="e.g. cpu or cuda; default: the GPU when there is one")
    train_parser.add_argument("--restart", action="store_true", help="ignore a saved unfinished run")
    commands.add_parser("list", help="the recipes, and which checkpoints exist")
    args = parser.parse_args(argv)
    if args.command == "list":
        directory = resolve_checkpoint_dir()
        for recipe in RECIPES.values():
            state = "trained" if (directory / f"{recipe.name}.json").is_file() else "not trained"
            print(f"{recipe.name:24} {state:12} {recipe.summary}")
        return 0
    manifest = train(args.name, args.checkpoint_dir, args.device, restart=args.restart)
    metrics = ", ".join(f"{key} {value:.4g}" for key, value in manifest["metrics"].items())
    print(
        f"wrote {manifest['checkpoint']['file']} ({manifest['checkpoint']['bytes'] / 1e6:.1f} MB): {metrics}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
