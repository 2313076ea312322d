"""The benchmark suite's entry point runs end to end on a tiny configuration and writes complete records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import AUTOGRADE, BENCHMARKS
from benchmarks.common import MET, NO_GPU, NOT_MET, QUICK_ONLY, TINY, Context, interleaved_medians, judge

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data"
RECORD_KEYS = {
    "name", "title", "profile", "tiny", "date", "command", "wall_seconds",
    "hardware", "versions", "settings", "figures", "targets", "notes",
}  # fmt: skip
HARDWARE_KEYS = {"cpu_model", "cpu_cores", "usable_cores", "device", "gpu", "cuda"}
STATUSES = {MET, NOT_MET, NO_GPU, QUICK_ONLY, TINY}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    results = tmp_path_factory.mktemp("results")
    env = {**os.environ, "COURSE_LIB_DEVICE": "cpu"}
    if "COURSE_LIB_MIRROR" not in env and MIRROR.is_dir():
        env["COURSE_LIB_MIRROR"] = str(MIRROR)
    command = [sys.executable, "-m", "benchmarks", "--tiny", "--results-dir", str(results)]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return completed, results


def test_entry_point_succeeds(tiny_run):
    completed, _ = tiny_run
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_writes_a_complete_record(tiny_run, name):
    _, results = tiny_run
    record = json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
    assert RECORD_KEYS <= record.keys()
    assert record["name"] == name
    assert record["profile"] == "quick" and record["tiny"] is True
    assert HARDWARE_KEYS <= record["hardware"].keys()
    assert record["hardware"]["device"] == "cpu"
    assert "torch" in record["versions"] and "python" in record["versions"]
    assert record["command"].split()[1:5] == ["-m", "benchmarks", "--tiny", "--results-dir"]
    assert record["figures"]
    for target in record["targets"]:
        assert target["status"] in STATUSES
        assert target["status"] not in (MET, NOT_MET)  # a tiny run judges nothing


def test_no_partial_files_are_left(tiny_run):
    _, results = tiny_run
    names = {path.name for path in results.iterdir()}
    expected = {f"{name}.json" for name in BENCHMARKS}
    if (REPO / "benchmarks" / "results" / f"{AUTOGRADE}.json").exists():
        expected.add(f"{AUTOGRADE}.json")
    assert names == expected


def test_judge_marks_gpu_targets_as_not_measured_on_a_cpu():
    cpu = Context("full", tiny=False, device=torch.device("cpu"))
    assert judge(cpu, "fast", 1.0, 2.0).status == NO_GPU
    assert judge(cpu, "small", 1.0, 2.0, needs_gpu=False).status == MET
    assert judge(cpu, "large", 1.0, 2.0, comparison=">=", needs_gpu=False).status == NOT_MET
    quick = Context("quick", tiny=False, device=torch.device("cpu"))
    assert judge(quick, "budget", 1.0, 2.0, needs_gpu=False, needs_full=True).status == QUICK_ONLY


def test_interleaved_medians_times_every_function_each_round():
    calls = []
    medians = interleaved_medians(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, torch.device("cpu"), warmup=1
    )
    assert set(medians) == {"a", "b"}
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # the order rotates round by round
