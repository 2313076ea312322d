"""Pretrained models: named recipes, trained once with one command, loaded by the chapters.

Some results of the lectures need more training than a book build allows (an LSTM reaches
its Penn Treebank perplexity after a dozen passes over a million words). Each such model has a
named recipe in :data:`RECIPES` (architecture, corpus, schedule, seed;
:mod:`course_lib.pretrained.recipes`), and

    python -m course_lib.pretrained train ptb-lstm

trains it (on the GPU when there is one), with a progress bar, saving its progress every minute
so that an interrupted run resumes where it stopped (:mod:`course_lib.pretrained.training`). It
writes two files into ``checkpoints/``:

* ``ptb-lstm.pt``: the weights in half precision and the vocabulary (or vocabularies);
* ``ptb-lstm.json``, the manifest: the recipe, the data's sha256, the library version and the
  command, the hardware, the wall time, the learning curve (the mean training loss every
  ``log_every`` batches, and the validation loss after each epoch), the metrics, measured on
  the half-precision weights, and samples at several points of training.

:func:`load_pretrained` gives the model back, after checking the weights' sha256 against the
manifest and that they fit the architecture the recipe builds today; otherwise it fails and
says how to retrain.

    pretrained = load_pretrained("ptb-lstm")
    pretrained.model, pretrained.vocab, pretrained.manifest["metrics"]["test_perplexity"]
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from course_lib.pretrained.recipes import RECIPES, Recipe, get_recipe
from course_lib.pretrained.tasks import task_for, vocab_from_payload
from course_lib.pretrained.training import resolve_checkpoint_dir, sha256_of, train
from course_lib.vocab import Vocabulary

__all__ = [
    "RECIPES",
    "Pretrained",
    "PretrainedError",
    "Recipe",
    "get_recipe",
    "load_pretrained",
    "read_manifest",
    "resolve_checkpoint_dir",
    "train",
]


class PretrainedError(RuntimeError):
    """A checkpoint is missing, damaged, or does not fit the recipe; the message says how to retrain."""


@dataclass
class Pretrained:
    """A loaded checkpoint: the model (eval mode, float32, on the CPU), its vocabularies and manifest.

    ``vocab`` is a language model's vocabulary, or the source (letter) vocabulary of an
    encoder-decoder, whose target (phoneme) vocabulary is ``target_vocab``.
    """

    model: nn.Module
    vocab: Vocabulary
    manifest: dict[str, Any]
    recipe: Recipe = field(repr=False)
    target_vocab: Vocabulary | None = None


def _retrain(recipe: Recipe) -> str:
    return (
        f"Retrain it with `python -m course_lib.pretrained train {recipe.name}` "
        f"(about the recorded wall time on a comparable machine), which rewrites both files."
    )


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


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


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
    digest = sha256_of(path)
    if digest != manifest["checkpoint"]["sha256"]:
        raise PretrainedError(
            f"{path} has sha256 {digest}, but its manifest records {manifest['checkpoint']['sha256']}: "
            f"the file is damaged or from another run. {_retrain(recipe)}"
        )
    current = _as_json(asdict(recipe))
    if manifest["recipe"] != current:
        changed = sorted(key for key, value in current.items() if value != manifest["recipe"].get(key))
        raise PretrainedError(
            f"the recipe {name!r} changed since {path.name} was trained (fields: {', '.join(changed)}). "
            f"{_retrain(recipe)}"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    vocabs = {key: vocab_from_payload(payload[key]) for key in ("vocab", "target_vocab") if key in payload}
    model = task_for(recipe).build_model(recipe, vocabs)
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
    return Pretrained(model, vocabs["vocab"], manifest, recipe, vocabs.get("target_vocab"))
