"""Pretrained checkpoints: every committed one loads and reproduces its recorded metrics and curve;
training writes both files, resumes after an interruption, and bad files fail with a way out."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from course_lib.pretrained import (
    RECIPES,
    PretrainedError,
    Recipe,
    load_pretrained,
    read_manifest,
    resolve_checkpoint_dir,
    tasks,
    train,
    training,
)
from course_lib.pretrained.tasks import evaluate_stream, task_for
from course_lib.vocab import Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKPOINTS = resolve_checkpoint_dir()
TRAINED = sorted(name for name in RECIPES if (CHECKPOINTS / f"{name}.json").is_file())
CURVE_POINTS = 2
CURVE_TOLERANCE = 0.02
"""A short run's first curve points match the recorded ones within 2% (relative): the same
recipe and seed give the same first batches, but another machine sums in another order."""
ALL_CHECKPOINTS_MB = 40


def test_every_recipe_has_a_committed_checkpoint_within_the_size_budget():
    assert TRAINED == sorted(RECIPES), f"recipes without a checkpoint: {sorted(set(RECIPES) - set(TRAINED))}"
    total = sum((CHECKPOINTS / read_manifest(name)["checkpoint"]["file"]).stat().st_size for name in TRAINED)
    assert total <= ALL_CHECKPOINTS_MB * 1e6, f"checkpoints take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", TRAINED)
def test_checkpoint_reproduces_its_recorded_validation_metric(name):
    loaded = load_pretrained(name)
    task = task_for(loaded.recipe)(loaded.recipe)
    recorded = loaded.manifest["metrics"][task.validation_metric]
    measured = task.measure_validation_metric(loaded.model)
    assert abs(measured - recorded) / recorded <= 0.01, (
        f"{name}: {task.validation_metric} measured {measured:.4f}, recorded {recorded:.4f}"
    )
    assert loaded.manifest["data_sha256"] == task.data_sha256(loaded.recipe)
    assert all(value.dtype == torch.float32 for value in loaded.model.state_dict().values())


@pytest.mark.parametrize("name", TRAINED)
def test_a_short_run_reproduces_the_first_points_of_the_recorded_curve(name):
    manifest = read_manifest(name)
    recipe = RECIPES[name]
    short = train(name, device="cpu", max_batches=CURVE_POINTS * recipe.log_every, progress=False)
    recorded = manifest["curve"][:CURVE_POINTS]
    assert [point["step"] for point in short["curve"]] == [point["step"] for point in recorded]
    for ours, theirs in zip(short["curve"], recorded, strict=True):
        relative = abs(ours["train_loss"] - theirs["train_loss"]) / theirs["train_loss"]
        assert relative <= CURVE_TOLERANCE, f"{name} step {ours['step']}: {ours} against recorded {theirs}"


@pytest.mark.parametrize("name", TRAINED)
def test_manifest_records_what_reproduces_the_run(name):
    manifest = read_manifest(name)
    for key in [
        "data_sha256",
        "library_version",
        "command",
        "hardware",
        "wall_time_s",
        "curve",
        "epochs",
        "metrics",
        "samples",
        "parameters",
    ]:
        assert manifest[key], f"{name}: the manifest has no {key}"
    assert manifest["command"] == f"python -m course_lib.pretrained train {name}"
    assert len(manifest["samples"]) >= 3 and manifest["samples"][0]["step"] == 0
    assert len(manifest["epochs"]) == RECIPES[name].epochs


# ---------------------------------------------------------------- training, on a tiny corpus

TINY = Recipe(
    name="tiny-lstm",
    summary="a tiny tied LSTM for the tests",
    corpus="ptb",
    model="deep",
    architecture={
        "embedding_dim": 8,
        "hidden_size": 8,
        "cell": "lstm",
        "num_layers": 2,
        "dropout": 0.1,
        "tie_weights": True,
        "init_range": 0.1,
    },
    epochs=2,
    batch_size=4,
    seq_len=5,
    optimizer="sgd",
    lr=2.0,
    lr_decay=0.5,
    decay_after=1,
    log_every=3,
    sample_tokens=5,
)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """The tiny recipe on a made-up corpus of 20 words; checkpoints go to ``tmp_path``."""
    generator = torch.Generator().manual_seed(0)
    vocab = Vocabulary([f"w{i}" for i in range(18)], specials=("<unk>", "</s>"))
    streams = {
        split: torch.randint(0, 20, (size,), generator=generator)
        for split, size in [("train", 300), ("valid", 80), ("test", 80)]
    }
    monkeypatch.setitem(RECIPES, TINY.name, TINY)
    monkeypatch.setattr(tasks, "corpus_data", lambda recipe: (vocab, streams))
    monkeypatch.setenv(training.CHECKPOINT_DIR_ENV_VAR, str(tmp_path))
    return tmp_path


def test_training_writes_half_precision_weights_and_a_manifest_that_load_back(tiny):
    manifest = train(TINY.name, device="cpu", progress=False)
    assert sorted(path.name for path in tiny.iterdir()) == ["tiny-lstm.json", "tiny-lstm.pt"]
    payload = torch.load(tiny / "tiny-lstm.pt", weights_only=True)
    assert all(value.dtype == torch.float16 for value in payload["weights"].values())
    loaded = load_pretrained(TINY.name)
    assert loaded.model.output.weight is loaded.model.embedding.weight
    _, streams = tasks.corpus_data(TINY)
    assert evaluate_stream(loaded.model, streams["test"]) == pytest.approx(
        manifest["metrics"]["test_loss"], rel=1e-6
    )
    assert [epoch["lr"] for epoch in manifest["epochs"]] == [2.0, 1.0]
    assert len(manifest["curve"]) == 2 * 15 // 3
    assert json.loads((tiny / "tiny-lstm.json").read_text()) == manifest


def test_an_interrupted_run_resumes_where_it_stopped_and_ends_as_an_uninterrupted_one(tiny, monkeypatch):
    straight = train(TINY.name, device="cpu", progress=False)
    for path in tiny.iterdir():
        path.unlink()
    monkeypatch.setattr(training, "SAVE_EVERY_S", 0.0)
    real_step, calls = tasks.language_model_step, []

    def interrupted_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 20:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(tasks, "language_model_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        train(TINY.name, device="cpu", progress=False)
    assert [path.name for path in tiny.iterdir()] == [".tiny-lstm.resume.pt"]
    monkeypatch.setattr(tasks, "language_model_step", real_step)
    resumed = train(TINY.name, device="cpu", progress=False)
    assert resumed["curve"] == straight["curve"]
    assert resumed["metrics"] == straight["metrics"]
    assert resumed["checkpoint"]["sha256"] == straight["checkpoint"]["sha256"]
    assert not (tiny / ".tiny-lstm.resume.pt").exists()


@pytest.fixture
def trained_tiny(tiny):
    train(TINY.name, device="cpu", progress=False)
    return tiny


def test_a_damaged_checkpoint_fails_with_its_sha256_and_how_to_retrain(trained_tiny):
    path = trained_tiny / "tiny-lstm.pt"
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(PretrainedError, match=r"sha256 .* `python -m course_lib.pretrained train tiny-lstm`"):
        load_pretrained(TINY.name)


def test_a_changed_recipe_fails_and_names_the_changed_fields(trained_tiny, monkeypatch):
    changed = Recipe(
        **{**TINY.__dict__, "architecture": {**TINY.architecture, "hidden_size": 16, "embedding_dim": 16}}
    )
    monkeypatch.setitem(RECIPES, TINY.name, changed)
    with pytest.raises(PretrainedError, match=r"recipe 'tiny-lstm' changed .*architecture.*Retrain"):
        load_pretrained(TINY.name)


def test_weights_that_do_not_fit_the_code_fail_with_the_differences(trained_tiny, monkeypatch):
    real_build = tasks.LanguageModelTask.build_model
    monkeypatch.setattr(
        tasks.LanguageModelTask,
        "build_model",
        staticmethod(
            lambda recipe, vocabs: real_build(
                Recipe(**{**recipe.__dict__, "architecture": {**recipe.architecture, "num_layers": 1}}),
                vocabs,
            )
        ),
    )
    with pytest.raises(PretrainedError, match=r"do not fit the architecture.*layers\.1.*Retrain"):
        load_pretrained(TINY.name)


def test_missing_files_fail_with_how_to_train(trained_tiny):
    (trained_tiny / "tiny-lstm.pt").unlink()
    with pytest.raises(PretrainedError, match=r"weights .* are missing"):
        load_pretrained(TINY.name)
    shutil.rmtree(trained_tiny)
    with pytest.raises(PretrainedError, match=r"never trained here.*train tiny-lstm"):
        load_pretrained(TINY.name)


def test_an_unknown_recipe_lists_the_known_ones():
    with pytest.raises(KeyError, match="ptb-lstm"):
        load_pretrained("no-such-model")
