"""A character-level LSTM language model on tiny-shakespeare, trained against the clock.

The text (``course_lib.data.download.load_tinyshakespeare``; set ``COURSE_LIB_MIRROR`` to read
it from a mirror) is split as nanoGPT splits it: the first 90% of the characters train, the
last 10% validate. The vocabulary is every character of the text (65). The model is
``course_lib.models.lstm.RecurrentLM`` (embedding → one LSTM layer → output layer) with
``torch.nn.LSTM`` inside (cuDNN on a GPU), trained with truncated backpropagation through time
(B columns of the stream read L characters at a time, the state carried, detached) and Adam,
bf16 autocast on a GPU, for a fixed budget of training seconds. Every ``eval_every`` steps the
clock stops while the validation loss (nats per character, the mean over the validation
stream, or its first ``val_chars`` characters in the quick profile) is measured; the learning
curve, the best validation loss, when the target was first reached and samples from the model
go into the results.

Target (full profile, one H100): validation loss ≤ 1.47 nats/char within 3 minutes of training.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Context, Outcome, judge, rounded, synchronize
from course_lib.data.batching import batchify, bptt_batches
from course_lib.data.download import load_tinyshakespeare
from course_lib.device import seed_everything
from course_lib.generation import generate
from course_lib.models.lstm import RecurrentLM
from course_lib.training import detach_state, evaluate_language_model
from course_lib.vocab import Vocabulary

NAME = "char_lm"
TITLE = "Character-level LSTM language model on tiny-shakespeare"
TRAIN_FRACTION = 0.9
TARGET_LOSS, TARGET_SECONDS = 1.47, 180.0


def split_text(text: str) -> tuple[str, str]:
    """nanoGPT's split: the first 90% of the characters, and the last 10%."""
    cut = int(TRAIN_FRACTION * len(text))
    return text[:cut], text[cut:]


def train_for(
    model: nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    settings: dict,
    context: Context,
) -> list[dict]:
    """Train ``model`` for ``settings["seconds"]`` of training time; the learning curve.

    The stream is read in passes, B columns × L steps per chunk, for as long as the budget
    lasts. Returns one point per evaluation: step, training seconds so far, mean training loss
    since the last point, validation loss.
    """
    device = context.device
    data = batchify(train_ids.to(device), settings["batch_size"])
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if context.on_gpu else contextlib.nullcontext()
    curve, step, trained_s, total, count = [], 0, 0.0, 0.0, 0
    model.train()
    while trained_s < settings["seconds"]:
        state = None
        for inputs, targets in bptt_batches(data, settings["seq_len"]):
            start = time.perf_counter()
            state = detach_state(state)
            with autocast:
                logits, state = model(inputs, state)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings["clip_norm"])
            optimizer.step()
            total, count, step = total + loss.item(), count + 1, step + 1
            synchronize(device)
            trained_s += time.perf_counter() - start
            if step % settings["eval_every"] == 0 or trained_s >= settings["seconds"]:
                val_loss = evaluate_language_model(
                    model, val_ids, batch_size=settings["eval_batch_size"], seq_len=256, device=device
                )
                model.train()
                curve.append(
                    {
                        "step": step,
                        "seconds": round(trained_s, 1),
                        "train_loss": total / count,
                        "val_loss": val_loss,
                    }
                )
                total, count = 0.0, 0
            if trained_s >= settings["seconds"]:
                break
    return curve


def curve_point(point: dict, with_seconds: bool) -> dict:
    """A point of the learning curve for the results: losses rounded, seconds only if quoted."""
    kept = {key: value for key, value in point.items() if with_seconds or key != "seconds"}
    return {key: value if isinstance(value, int) else rounded(value, 4) for key, value in kept.items()}


def run(context: Context) -> Outcome:
    settings = {
        "seconds": context.pick(3.0, 60.0, TARGET_SECONDS),
        "embedding_dim": context.pick(16, 32, 64),
        "hidden_size": context.pick(32, 256, 1024),
        "batch_size": context.pick(8, 32, 128),
        "seq_len": context.pick(32, 64, 128),
        "lr": context.pick(3e-3, 3e-3, 2e-3),
        "clip_norm": 1.0,
        "eval_every": context.pick(20, 100, 200),
        "eval_batch_size": context.pick(8, 16, 64),
        "val_chars": context.pick(5_000, 30_000, None),
        "sample_chars": context.pick(40, 300, 500),
    }
    seed_everything(0)
    text = load_tinyshakespeare()
    train_text, val_text = split_text(text)
    if settings["val_chars"] is not None:
        val_text = val_text[: settings["val_chars"]]
    vocab = Vocabulary.build([list(text)], specials=())
    train_ids = torch.tensor(vocab.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(vocab.encode(val_text), dtype=torch.long)
    model = RecurrentLM(
        len(vocab), settings["embedding_dim"], settings["hidden_size"], cell="lstm", implementation="cudnn"
    ).to(context.device)
    curve = train_for(model, train_ids, val_ids, settings, context)
    best = min(point["val_loss"] for point in curve)
    reached = next((point for point in curve if point["val_loss"] <= TARGET_LOSS), None)
    samples = {
        prompt: "".join(
            generate(
                model,
                vocab,
                list(prompt),
                settings["sample_chars"],
                temperature=0.8,
                seed=seed,
                stop_token=None,
            )
        )
        for seed, prompt in enumerate(("ROMEO:\n", "\n"))
    }
    figures = {
        "characters": {"train": len(train_text), "validation": len(val_text), "vocabulary": len(vocab)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": curve[-1]["step"],
        "train_characters_seen": curve[-1]["step"] * settings["batch_size"] * settings["seq_len"],
        "best_val_loss": rounded(best, 4),
        "best_val_bits_per_char": rounded(best / math.log(2), 4),
        "learning_curve": [curve_point(point, context.quote_times) for point in curve],
        "samples": samples,
        "sampling": "temperature 0.8, after the prompt; seeds 0 and 1",
    }
    if context.quote_times:
        figures["target_reached_at_seconds"] = None if reached is None else reached["seconds"]
    outcome = Outcome(settings=settings, figures=figures)
    value = best if curve[-1]["seconds"] <= TARGET_SECONDS + 1 else None
    outcome.targets.append(
        judge(
            context,
            f"validation loss ≤ {TARGET_LOSS} nats/char within {TARGET_SECONDS / 60:g} minutes on one H100",
            value,
            TARGET_LOSS,
            needs_full=True,
        )
    )
    if not context.on_gpu:
        outcome.notes.append(
            "CPU run: a smaller model and budget than the target's; the loss shows the pipeline works, "
            "not what the target measures"
        )
    return outcome
