"""Autograding throughput: plain sequential ``nbgrader autograde`` against the parallel grader.

Makes a class of hand-ins of one assignment (in every ten: 4 correct, 3 partially correct,
2 blank, 1 with a syntax error; see ``tests/class_fixtures.py``), copies the course folder,
and grades the same class twice: with ``nbgrader autograde`` (one hand-in after the other)
and with ``python -m course_lib.grading autograde`` (a pool of workers, by default one per
CPU core, each kernel in the sandbox and under the tampering guard). Both are timed from the
command's start to its end, start-up included, with the machine's busy CPU time over each
run (kernels included). It checks that both gradebooks hold the same rows, prints hand-ins per minute for
both and the ratio, and writes the figures, the target (``speed_up_target``), the machine
(cores, CPU model, load average), the library versions, the command and the date to
``benchmarks/results/autograde_throughput.json``.

    .venv/bin/python benchmarks/autograde_throughput.py                 # 100 hand-ins
    .venv/bin/python benchmarks/autograde_throughput.py --students 10   # a quick run

The load average is recorded before, between and after the grading runs: other work on the
machine slows both runs down, the parallel one more (it needs the idle cores). The CPU
seconds per hand-in hardly depend on that load: about equal figures for both runs mean that
the parallel grader adds little work, so that on an idle machine its speed-up approaches
the number of workers.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ holds the made-up class

from benchmarks.common import MET, NOT_MET, Target  # noqa: E402
from course_lib.grading.autograde import default_workers  # noqa: E402
from course_lib.grading.files import write_atomically  # noqa: E402
from course_lib.grading.gradebook import recorded_rows  # noqa: E402
from tests.class_fixtures import Student, mixed_class, submit_all  # noqa: E402
from tests.nbgrader_course import NBGRADER, Course  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "autograde_throughput.json"
COURSE_ID = "rnn-language-models"
SPEED_UP_PER_WORKER = 0.9  # the aim: 1.8x with 2 workers on 2 cores, near-linear in the cores
LIBRARIES = ["nbgrader", "nbconvert", "nbclient", "jupyter_client", "ipykernel", "SQLAlchemy", "tqdm"]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores: user, system, interrupts), from /proc/stat.

    Machine-wide, because the sandboxed kernels are not the grader's children once their
    sandbox ends (they are not reaped through it), so the grader's own usage would miss them;
    on a quiet machine, the difference over a run is the run's CPU time.
    """
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_timed(command: list[str], cwd: Path, hand_ins: int) -> dict:
    """Run ``command`` in ``cwd`` (the environment's tools on the PATH): its wall-clock and CPU figures.

    The CPU time is the machine's busy time during the run (see :func:`cpu_seconds`).
    """
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start, start_cpu = time.perf_counter(), cpu_seconds()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
    if result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        raise SystemExit(f"{shlex.join(command)} failed ({result.returncode}):\n{output}")
    return {
        "seconds": round(seconds, 2),
        "hand_ins_per_minute": round(60 * hand_ins / seconds, 2),
        "cpu_seconds": round(cpu, 1),
        "cpu_seconds_per_hand_in": round(cpu / hand_ins, 2),
    }


def load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def gradebook_rows(course: Course) -> dict:
    return recorded_rows(f"sqlite:///{course.root / 'gradebook.db'}", COURSE_ID, course.assignment)


def grade_both(sequential: Course, students: list[Student], workers: int) -> dict:
    """Grade the class with nbgrader in ``sequential`` and with the parallel grader in a copy of it.

    Returns the figures of both runs, whether their gradebooks are equal and the load average.
    """
    assignment = sequential.assignment
    submit_all(sequential, students)
    parallel = Course(sequential.root.parent / "parallel", assignment)
    shutil.copytree(sequential.root, parallel.root)

    loads = {"before": load_average()}
    print(f"grading {len(students)} hand-ins of {assignment}: nbgrader autograde ...", flush=True)
    runs = {"sequential": run_timed([str(NBGRADER), "autograde", assignment], sequential.root, len(students))}
    loads["between"] = load_average()
    print(f"grading them with the parallel grader, {workers} workers ...", flush=True)
    command = [sys.executable, "-m", "course_lib.grading", "autograde", assignment, "--quiet",
               "--workers", str(workers)]
    runs["parallel"] = run_timed(command, parallel.root, len(students))
    loads["after"] = load_average()
    return {**runs, "gradebooks_identical": gradebook_rows(sequential) == gradebook_rows(parallel),
            "load_average_1_5_15_min": loads}


def speed_up_target(speed_up: float, workers: int) -> Target:
    """The aim: ``SPEED_UP_PER_WORKER`` × workers the hand-ins per minute of ``nbgrader autograde``."""
    threshold = round(SPEED_UP_PER_WORKER * workers, 2)
    description = (f"parallel grader (sandboxed) at least {threshold}x the hand-ins per minute of nbgrader "
                   f"autograde, with {workers} workers on {default_workers()} cores")
    return Target(description, threshold, ">=", round(speed_up, 3), MET if speed_up >= threshold else NOT_MET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=100, help="hand-ins in the class (default: 100)")
    parser.add_argument("--assignment", default="a1_ngrams", help="the assignment (default: a1_ngrams)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help=f"the parallel grader's workers (default: the CPU cores, {default_workers()})")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="autograde-throughput-") as folder:
        sequential = Course.create(Path(folder) / "sequential", args.assignment)
        students = mixed_class(sequential, args.students)
        measured = grade_both(sequential, students, args.workers)

    speed_up = measured["sequential"]["seconds"] / measured["parallel"]["seconds"]
    labels = {"sequential": "nbgrader autograde", "parallel": f"parallel, {args.workers} workers"}
    for name, label in labels.items():
        run = measured[name]
        print(f"{label:<22} {run['seconds']:8.1f} s {run['hand_ins_per_minute']:8.1f} hand-ins/min "
              f"{run['cpu_seconds_per_hand_in']:6.2f} CPU s/hand-in")
    loads = measured.pop("load_average_1_5_15_min")
    print(f"speed-up: {speed_up:.2f}x; gradebooks identical: {measured['gradebooks_identical']}; "
          f"load average (1, 5, 15 min): {loads}")

    results = {
        "assignment": args.assignment,
        "hand_ins": len(students),
        "mix": {kind: sum(student.kind == kind for student in students)
                for kind in ("correct", "partial", "blank", "syntax")},
        "workers": args.workers,
        **measured,
        "speed_up": round(speed_up, 3),
        "targets": [asdict(speed_up_target(speed_up, args.workers))],
        "hardware": {
            "cpu_cores": os.cpu_count(),
            "usable_cores": default_workers(),
            "cpu_model": cpu_model(),
            "load_average_1_5_15_min": loads,
        },
        "versions": {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}},
        "command": shlex.join(sys.orig_argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_atomically(RESULTS, json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    if not measured["gradebooks_identical"]:
        raise SystemExit("the gradebooks differ: the parallel grader did not record what nbgrader records")


if __name__ == "__main__":
    main()
