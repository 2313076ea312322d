"""Recurrent layers: tokens per second of a forward and backward pass, four implementations side by side.

* ``scratch``: :class:`course_lib.models.lstm.LSTM` / ``GRU``, the layers students write, two
  matrix products per step in a Python loop over time;
* ``fused``: :class:`course_lib.models.fast_recurrent.FusedLSTM` / ``FusedGRU``, the input
  projection of all T steps in one product before the loop, one (B, H) × (H, G·H) product per step;
* ``fused+compile``: the same with the element-wise part of each step through ``torch.compile``;
* ``torch.nn``: ``torch.nn.LSTM`` / ``GRU`` (cuDNN's kernel on an NVIDIA GPU, a native kernel on a CPU).

One pass is ``layer(x)`` on x (T, B, H) and the backward pass of the mean squared output; it
processes T · B tokens. For each cell, batch size B, hidden size H and precision (fp32, and
bf16 autocast on a GPU), the four run side by side (:func:`benchmarks.common.interleaved_medians`)
and each is reported as its time relative to ``torch.nn``'s, the *slowdown* (1 = as fast, 2 =
half as fast). The target: the optimised layer within 2× of cuDNN at B = 64 on a GPU.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from benchmarks.common import Context, Outcome, interleaved_medians, judge, rounded
from course_lib.device import seed_everything
from course_lib.models.fast_recurrent import FusedGRU, FusedLSTM
from course_lib.models.lstm import GRU, LSTM

NAME = "cells"
TITLE = "Recurrent layers: from scratch, fused, compiled and torch.nn (cuDNN)"
LAYERS = {"lstm": (LSTM, FusedLSTM, nn.LSTM), "gru": (GRU, FusedGRU, nn.GRU)}
REFERENCE = "torch.nn"
TARGET_BATCH, TARGET_SLOWDOWN = 64, 2.0


def make_layers(cell: str, hidden: int, compile_step: bool, device: torch.device) -> dict[str, nn.Module]:
    """The implementations of one cell with input and hidden size H, all with the same weights."""
    scratch_class, fused_class, torch_class = LAYERS[cell]
    layers = {"scratch": scratch_class(hidden, hidden), "fused": fused_class(hidden, hidden)}
    if compile_step:
        layers["fused+compile"] = fused_class(hidden, hidden, compile_step=True)
    layers[REFERENCE] = torch_class(hidden, hidden)
    for layer in layers.values():
        layer.load_state_dict(layers["scratch"].state_dict())
        layer.to(device)
    return layers


def training_pass(layer: nn.Module, x: torch.Tensor, precision: str):
    """A function of no arguments: one forward and backward pass of ``layer`` on ``x``."""
    autocast = (
        torch.autocast(x.device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )

    def run() -> None:
        layer.zero_grad(set_to_none=True)
        with autocast:
            output, _ = layer(x)
        output.float().pow(2).mean().backward()

    return run


def run(context: Context) -> Outcome:
    settings = {
        "steps_T": context.pick(8, 32, 64),
        "batch_sizes": context.pick([4], [16, 64], [16, 64, 256]),
        "hidden_sizes": context.pick([16], [128, 256], [256, 1024]),
        "precisions": ["fp32", "bf16"] if context.on_gpu else ["fp32"],
        "compile": context.pick(False, True, True),
        "rounds": context.pick(2, 15, 20),
    }
    rows = []
    compile_fell_back = False
    for cell in LAYERS:
        for hidden in settings["hidden_sizes"]:
            seed_everything(0)
            layers = make_layers(cell, hidden, settings["compile"], context.device)
            for batch in settings["batch_sizes"]:
                x = torch.randn(settings["steps_T"], batch, hidden, device=context.device)
                for precision in settings["precisions"]:
                    passes = {name: training_pass(layer, x, precision) for name, layer in layers.items()}
                    seconds = interleaved_medians(passes, settings["rounds"], context.device, warmup=2)
                    tokens = settings["steps_T"] * batch
                    for name, time_s in seconds.items():
                        row = {
                            "cell": cell,
                            "hidden": hidden,
                            "batch": batch,
                            "precision": precision,
                            "implementation": name,
                            "slowdown_vs_torch_nn": rounded(time_s / seconds[REFERENCE]),
                        }
                        if context.quote_times:
                            row["tokens_per_s"] = rounded(tokens / time_s)
                        rows.append(row)
            compiled = layers.get("fused+compile")
            compile_fell_back |= compiled is not None and not compiled.pointwise.compiled
    outcome = Outcome(settings=settings, figures={"rows": rows})
    outcome.figures["compile_helped"] = compile_verdicts(rows)
    for cell in LAYERS:
        outcome.targets.append(
            judge(
                context,
                f"optimised {cell.upper()} within {TARGET_SLOWDOWN:g}× of cuDNN at batch {TARGET_BATCH} "
                "(fp32, worst hidden size)",
                optimised_slowdown(rows, cell),
                TARGET_SLOWDOWN,
            )
        )
    verdicts = outcome.figures["compile_helped"]
    if verdicts:
        helped = sum(verdict["helped"] for verdict in verdicts)
        outcome.notes.append(
            f"torch.compile of the step made the fused layer faster (by more than 5%) in {helped} of "
            f"{len(verdicts)} settings (see compile_helped)"
        )
    if compile_fell_back:
        outcome.notes.append("torch.compile failed here: the fused+compile rows ran uncompiled")
    return outcome


def optimised_slowdown(rows: list[dict], cell: str) -> float | None:
    """The target's figure: at B = 64 in fp32, the better of fused and fused+compile, at the worst H."""
    best: dict[int, float] = {}
    for row in rows:
        if (row["cell"], row["batch"], row["precision"]) != (cell, TARGET_BATCH, "fp32"):
            continue
        if row["implementation"] in ("fused", "fused+compile"):
            best[row["hidden"]] = min(best.get(row["hidden"], float("inf")), row["slowdown_vs_torch_nn"])
    return max(best.values()) if best else None


def compile_verdicts(rows: list[dict]) -> list[dict]:
    """For each setting, whether compiling the step made the fused layer faster, and by how much."""
    verdicts = []
    for row in rows:
        if row["implementation"] != "fused+compile":
            continue
        key = {k: row[k] for k in ("cell", "hidden", "batch", "precision")}
        eager = next(
            r for r in rows if r["implementation"] == "fused" and all(r[k] == v for k, v in key.items())
        )
        speedup = eager["slowdown_vs_torch_nn"] / row["slowdown_vs_torch_nn"]
        verdicts.append({**key, "compile_speedup": rounded(speedup), "helped": speedup > 1.05})
    return verdicts
