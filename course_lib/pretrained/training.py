"""The one training loop of every pretrained recipe: progress bar, resumption, curve, manifest.

:func:`train` runs a recipe's task (:mod:`course_lib.pretrained.tasks`) for its epochs. Every
``SAVE_EVERY_S`` seconds and after every epoch it saves what an interrupted run needs to go on
(weights, optimizer, random generators, the state carried between chunks, the position in the
epoch, the curve so far) to ``.NAME.resume.pt`` beside the checkpoints; run the same command
again and it resumes there, with the same batches and random draws as if it had never stopped.
At the end the weights of the best validation epoch are rounded to float16, the metrics are
measured on the rounded weights, and ``NAME.pt`` and ``NAME.json`` are written (each through a
temporary file, so no partial file is ever left); the resume file is then removed.
"""

from __future__ import annotations

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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

import course_lib
from course_lib.device import get_device, seed_everything
from course_lib.pretrained.recipes import Recipe, get_recipe
from course_lib.pretrained.tasks import task_for, vocab_payload

CHECKPOINT_DIR_ENV_VAR = "COURSE_LIB_CHECKPOINTS"
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
SAVE_EVERY_S = 60.0


def resolve_checkpoint_dir(checkpoint_dir: str | os.PathLike[str] | None = None) -> Path:
    """``checkpoint_dir``, else ``$COURSE_LIB_CHECKPOINTS``, else the repository's ``checkpoints/``."""
    if checkpoint_dir is not None:
        return Path(checkpoint_dir)
    return Path(os.environ.get(CHECKPOINT_DIR_ENV_VAR) or DEFAULT_CHECKPOINT_DIR)


def make_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """The recipe's optimizer over the model's parameters, at the rate of the first epoch."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr)
    raise ValueError(f"recipe {recipe.name!r} names an unknown optimizer {recipe.optimizer!r}")


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict in float16 on the CPU; tensors the model shares (tied weights) stay shared."""
    halves: dict[int, torch.Tensor] = {}
    result = {}
    for key, tensor in model.state_dict().items():
        if tensor.data_ptr() not in halves:
            halves[tensor.data_ptr()] = tensor.detach().to("cpu", torch.float16)
        result[key] = halves[tensor.data_ptr()]
    return result


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)``, then move the temporary file to ``path``; nothing is left on failure."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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


@dataclass
class _Progress:
    """Where a run stands: saved with the weights so that an interrupted run can go on."""

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
        name: a key of :data:`~course_lib.pretrained.recipes.RECIPES`.
        checkpoint_dir: where to write (see :func:`resolve_checkpoint_dir`).
        device: where to train; ``get_device()`` by default (the GPU when there is one).
        max_batches: stop after this many batches of the first epoch and write nothing: a short
            run that gives the first points of the learning curve (returned as ``{"curve": …}``).
        restart: ignore a saved unfinished run and start again.
        progress: show a progress bar.
    """
    recipe = get_recipe(name)
    directory = resolve_checkpoint_dir(checkpoint_dir)
    device = torch.device(device) if device is not None else get_device()
    task = task_for(recipe)(recipe)
    seed_everything(recipe.seed)
    model = task.build_model(recipe, task.vocabs).to(device)
    optimizer = make_optimizer(recipe, model)
    batches_per_epoch = task.batches_per_epoch(device)

    resume_path = directory / f".{name}.resume.pt"
    carry, best_weights, run = None, None, _Progress()
    if max_batches is None and resume_path.is_file() and not restart:
        saved = torch.load(resume_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"].cpu())
        if saved["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        carry, best_weights, run = saved["carry"], saved["best_weights"], saved["progress"]
        print(f"resuming {name} at epoch {run.epoch + 1}, batch {run.batch} of {batches_per_epoch}")
    if not run.samples:
        run.samples.append({"step": 0, "epoch": 0.0, "text": task.sample(model)})

    def save_progress() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "carry": carry,
            "best_weights": best_weights,
            "progress": run,
        }
        write_atomically(resume_path, lambda path: torch.save(payload, path))

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
        for index, batch in enumerate(task.batches(run.epoch, device)):
            if index < run.batch:
                continue
            if index >= total:
                break
            loss, carry = task.step(model, optimizer, batch, carry)
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
        valid_loss = task.validation_loss(model)
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
                "text": task.sample(model),
            }
        )
        if valid_loss < run.best_valid_loss:
            run.best_valid_loss, best_weights = valid_loss, copy.deepcopy(model.state_dict())
        print(
            f"{name} epoch {run.epoch + 1}: validation loss {valid_loss:.4f} "
            f"(exp: {math.exp(valid_loss):.2f}), {run.elapsed_s / 60:.1f} min so far"
        )
        run.epoch, run.batch, carry = run.epoch + 1, 0, None
        start = last_save = time.perf_counter()
        save_progress()

    model.load_state_dict(best_weights)
    manifest = _finish(recipe, task, model, directory, device, run)
    resume_path.unlink(missing_ok=True)
    return manifest


def _finish(recipe: Recipe, task, model: nn.Module, directory: Path, device: torch.device, run: _Progress):
    """Round the weights to float16, measure the metrics on them, write the checkpoint and manifest."""
    weights = half_state_dict(model)
    rounded = task.build_model(recipe, task.vocabs)
    rounded.load_state_dict({key: value.float() for key, value in weights.items()})
    rounded.eval()
    metrics = task.metrics(rounded)
    checkpoint = directory / f"{recipe.name}.pt"
    payload = {"recipe": recipe.name, "weights": weights}
    for key, vocab in task.vocabs.items():
        payload[key] = vocab_payload(vocab)
    write_atomically(checkpoint, lambda path: torch.save(payload, path))
    manifest = {
        "name": recipe.name,
        "summary": recipe.summary,
        "recipe": asdict(recipe),
        "parameters": sum(p.numel() for p in rounded.parameters()),
        "data_sha256": task.data_sha256(recipe),
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
            "sha256": sha256_of(checkpoint),
        },
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    write_atomically(directory / f"{recipe.name}.json", lambda path: path.write_text(text, encoding="utf-8"))
    return json.loads(text)
