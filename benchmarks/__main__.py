"""Run the benchmark suite and write one JSON record per benchmark.

    python -m benchmarks --profile quick                  # CPU-sized, a few minutes in all
    python -m benchmarks --profile full                   # the GPU targets (run on a GPU)
    python -m benchmarks --profile quick --only cells g2p # some benchmarks only
    python -m benchmarks --tiny --results-dir /tmp/r      # seconds each: checks that everything runs

The device is ``course_lib.device.get_device()`` (set ``COURSE_LIB_DEVICE`` to choose). On a
CPU, torch runs on one thread: the networks are small, and on a machine shared with other work
several threads mostly wait for each other, which makes timings erratic. Each
benchmark writes ``<results dir>/<name>.json`` (see :func:`benchmarks.common.record`); a
benchmark that fails writes nothing, the others still run, and the exit status is 1. The JSON
of ``benchmarks/autograde_throughput.py``, a separate script, is collected into the results
folder when it exists.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmarks.common import DEFAULT_RESULTS_DIR, PROFILES, Context, command_line, record, write_json
from course_lib.device import get_device

BENCHMARKS = ("cells", "batching", "char_lm", "g2p", "language_models", "ngram_speed")
AUTOGRADE = "autograde_throughput"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="quick", help="quick (CPU) or full (GPU)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*BENCHMARKS, AUTOGRADE],
        metavar="NAME",
        help="run only these benchmarks",
    )
    parser.add_argument("--tiny", action="store_true", help="a tiny configuration of seconds per benchmark")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where the JSON goes")
    return parser.parse_args(argv)


def collect_autograde(results_dir: Path) -> None:
    """Copy the autograding script's JSON into ``results_dir``, if it exists and lies elsewhere."""
    source = DEFAULT_RESULTS_DIR / f"{AUTOGRADE}.json"
    if not source.exists():
        print(f"{AUTOGRADE}: no {source.name} yet (run benchmarks/{AUTOGRADE}.py)")
        return
    target = results_dir / source.name
    if target.resolve() != source.resolve():
        write_json(target, json.loads(source.read_text(encoding="utf-8")))
    print(f"{AUTOGRADE}: collected {target}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    context = Context(profile=args.profile, tiny=args.tiny, device=get_device())
    if not context.on_gpu:
        torch.set_num_threads(1)
    command = command_line(argv)
    names = args.only or [*BENCHMARKS, AUTOGRADE]
    tiny = " (tiny)" if args.tiny else ""
    print(f"profile {args.profile}{tiny} on {context.device}; results in {args.results_dir}")
    failed = []
    for name in names:
        if name == AUTOGRADE:
            collect_autograde(args.results_dir)
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        start = time.perf_counter()
        try:
            outcome = module.run(context)
        except Exception:
            traceback.print_exc()
            print(f"{name}: FAILED, no results written")
            failed.append(name)
            continue
        seconds = time.perf_counter() - start
        path = args.results_dir / f"{module.NAME}.json"
        write_json(path, record(module.NAME, module.TITLE, outcome, context, command, seconds))
        statuses = ", ".join(target.status for target in outcome.targets) or "no targets"
        print(f"{name}: {seconds:.1f} s, targets: {statuses} -> {path}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
