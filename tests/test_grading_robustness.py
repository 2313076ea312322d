"""Bad and hostile hand-ins: each is graded with a reason, and no other student is affected.

One class of Assignment 1 hand-ins, graded once by ``python -m course_lib.grading autograde``
with 2 workers in the sandbox. Every hand-in but ``control`` is the correct notebook broken in
one way: an endless loop (the per-cell timeout), a loop that ignores interrupts (the CPU time
limit), a memory hog (the memory limit), deleted, duplicated, reordered, retyped or edited
cells (nbgrader's restoring of the locked cells and ``add_missing_cells``), a renamed
function, a misnamed, missing, non-UTF-8 or truncated notebook, a huge output, a kernel that
exits or crashes; and hostile ones: a probe of the sandbox (files, network, user, processes,
file size) and planted exploits of the comparisons the tests use. Each test checks the points
of every part of one hand-in, and the reason the instructor sees.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest

from course_lib.grading.worker import NOTES_FILE
from tests.class_fixtures import solutions
from tests.nbgrader_course import NBGRADER, Course, cells_by_grade_id, solution_ids

pytestmark = pytest.mark.slow

ASSIGNMENT = "a1_ngrams"  # no PyTorch: the cheapest to grade
LIMITS = """
c.Execute.timeout = 10
c.SandboxedKernelManager.cpu_time_limit_s = 30
c.SandboxedKernelManager.memory_limit_mb = 2048
c.SandboxedKernelManager.max_processes = 64
c.SandboxedKernelManager.max_file_size_mb = 20
c.GradingExecute.max_output_bytes = 100_000
"""
ENDLESS_LOOP = "while True:\n    pass\n"
DEAF_LOOP = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
MEMORY_HOG = "_hog = [bytearray(256 * 1024**2) for _ in range(64)]\n"
PLANTED_WRONG = {  # a wrong answer per part, put after the correct code so that it wins
    "counting": "\n\ndef count_ngrams(sentences, n):\n    return Counter()\n",
    "mle": "\n\ndef mle_probability(ngram_counts, totals, context, word):\n    return 0.5\n",
    "sampling": "\n\ndef sampling_distribution(probs, temperature=1.0, top_k=None):\n    return probs\n",
}


# The hand-ins: each a function of (correct notebook, course) → files of the hand-in folder.


def with_code(notebook: nbformat.NotebookNode, part: str, before: str = "", after: str = "") -> None:
    cell = cells_by_grade_id(notebook)[part]
    cell.source = before + cell.source + after


def cell_index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    return next(
        index
        for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def part_cells(notebook: nbformat.NotebookNode, part: str) -> list[int]:
    """Indices of the part's solution cell and its test cells."""
    ids = {part, f"{part}_test_visible", f"{part}_test_hidden"}
    return [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") in ids
    ]


def loop(notebook, course):
    with_code(notebook, "counting", before=ENDLESS_LOOP)


def deaf_loop(notebook, course):
    with_code(notebook, "mle", before=DEAF_LOOP)


def memory(notebook, course):
    with_code(notebook, "add_k", before=MEMORY_HOG)


def deleted(notebook, course):
    del notebook.cells[cell_index(notebook, "counting_test_hidden")]  # comes back from the gradebook, passes
    del notebook.cells[cell_index(notebook, "backoff")]  # the code is gone: its tests fail


def duplicated(notebook, course):
    with_code(notebook, "sampling", after=PLANTED_WRONG["sampling"])
    index = cell_index(notebook, "sampling_test_hidden")
    copy = nbformat.from_dict(json.loads(json.dumps(notebook.cells[index])))
    copy.id = f"{copy.id}-copy"  # as Jupyter does when a cell is copied
    copy.source = "pass"  # the last copy keeps the grade_id, and nbgrader restores its source
    notebook.cells.insert(index + 1, copy)


def reordered(notebook, course):
    moved = part_cells(notebook, "perplexity")
    cells = [notebook.cells[index] for index in moved]
    for index in reversed(moved):
        del notebook.cells[index]
    first = cell_index(notebook, "counting")
    notebook.cells[first:first] = cells


def retyped(notebook, course):
    notebook.cells[cell_index(notebook, "mle")].cell_type = "markdown"
    notebook.cells[cell_index(notebook, "mle")].pop("outputs")
    notebook.cells[cell_index(notebook, "mle")].pop("execution_count")
    notebook.cells[cell_index(notebook, "counting_test_visible")].cell_type = "raw"
    notebook.cells[cell_index(notebook, "counting_test_visible")].pop("outputs")
    notebook.cells[cell_index(notebook, "counting_test_visible")].pop("execution_count")


def edited_test(notebook, course):
    with_code(notebook, "counting", after=PLANTED_WRONG["counting"])
    for grade_id in ("counting_test_visible", "counting_test_hidden"):
        notebook.cells[cell_index(notebook, grade_id)].source = "pass"


def renamed(notebook, course):
    cell = cells_by_grade_id(notebook)["mle"]
    cell.source = cell.source.replace("def context_totals(", "def context_total(")


def huge_output(notebook, course):
    with_code(notebook, "counting", after='\n\nprint("x" * 20_000_000)\n')


def os_exit(notebook, course):
    with_code(notebook, "backoff", before="import os\nos._exit(3)\n")


def segfault(notebook, course):
    with_code(notebook, "perplexity", before="import ctypes\nctypes.string_at(0)\n")


def patch_allclose(notebook, course):
    with_code(
        notebook,
        "sampling",
        after=PLANTED_WRONG["sampling"] + "\nnp.allclose = lambda *args, **kwargs: True\n",
    )


def patch_isclose(notebook, course):
    with_code(notebook, "mle", after=PLANTED_WRONG["mle"] + "\nmath.isclose = lambda *args, **kwargs: True\n")


def patch_reference(notebook, course):
    with_code(
        notebook, "counting", after=PLANTED_WRONG["counting"] + "\nreference.count_ngrams = count_ngrams\n"
    )


def shadow_builtin(notebook, course):
    # The hidden sampling test loops over range(20): a top-level range() shadows the builtin and empties it.
    wrong = (
        "\n\ndef sampling_distribution(probs, temperature=1.0, top_k=None):\n    if temperature <= 0:\n"
        "        raise ValueError(temperature)\n    return probs\n\n\ndef range(*args):\n    return []\n"
    )
    with_code(notebook, "sampling", after=wrong)


PROBE = """import json, os, socket, time

_probe = {{}}


def _try(name, action):
    try:
        _probe[name] = ["done", repr(action())[:300]]
    except BaseException as error:
        _probe[name] = ["refused", f"{{type(error).__name__}}: {{error}}"[:300]]


def _fork_many():
    children = 0
    try:
        while children < 1000:
            if os.fork() == 0:
                time.sleep(5)
                os._exit(0)
            children += 1
    finally:
        _probe["children"] = children


_try("read_solutions", lambda: open({solutions!r}).read(100))
_try("list_course", lambda: os.listdir({course!r}))
_try("read_gradebook", lambda: open({gradebook!r}, "rb").read(100))
_try("read_other_hand_in", lambda: open({other!r}).read(100))
_try("write_course", lambda: open({course_file!r}, "w").write("x"))
_try("write_tmp", lambda: open({tmp_file!r}, "w").write("x"))
_try("connect_grader_loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
_try("connect_internet", lambda: socket.create_connection(("1.1.1.1", 80), timeout=3).close())
_try("resolve_name", lambda: socket.getaddrinfo("example.org", 80))
_try("uid", os.getuid)
_try("become_root", lambda: os.setuid(0))
_try("fork_many", _fork_many)
_try("big_file", lambda: open("big.bin", "wb").write(b"x" * 50 * 1024**2))
_try("write_own_folder", lambda: open("own.txt", "w").write("x"))
with open("probe.json", "w") as _file:
    json.dump(_probe, _file)
"""


class Listener:
    """A TCP server on the grader's loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()


# name → (how the hand-in is made, the parts it loses, text the instructor sees: in the outputs or the notes)
CASES: dict[str, tuple[Callable, set[str], str]] = {
    "control": (lambda notebook, course: None, set(), ""),
    "loop": (loop, {"counting"}, "CellTimeoutError"),
    "deaf_loop": (
        deaf_loop,
        {"mle", "add_k", "backoff", "perplexity", "sampling"},
        "the kernel stopped answering",
    ),
    "memory": (memory, {"add_k"}, "MemoryError"),
    "deleted": (deleted, {"backoff"}, "was missing from the submission"),
    "duplicated": (duplicated, {"sampling"}, "the last copy is graded"),
    "reordered": (reordered, set(), ""),
    "retyped": (retyped, set(), ""),
    "edited_test": (edited_test, {"counting"}, ""),
    "renamed": (renamed, {"mle"}, "NameError"),
    "huge_output": (huge_output, set(), "the grader dropped the rest of this cell's output"),
    "os_exit": (os_exit, {"backoff", "perplexity", "sampling"}, "exited with status 3"),
    "segfault": (segfault, {"perplexity", "sampling"}, "SIGSEGV"),
    "patch_allclose": (patch_allclose, {"sampling"}, "TamperingError"),
    "patch_isclose": (patch_isclose, {"mle"}, "TamperingError"),
    "patch_reference": (patch_reference, {"counting"}, "TamperingError"),
    "shadow_builtin": (shadow_builtin, {"sampling"}, "TamperingError"),
    "probe": (None, set(), ""),  # the correct notebook with the sandbox probe after the imports
}
FILE_CASES = {  # hand-ins that are no (readable) notebook of the right name: name → (lost parts, note)
    "misnamed": (set(), "a1_ngrams-Copy1.ipynb was graded as a1_ngrams.ipynb"),
    "missing": ("all", "a1_ngrams.ipynb is missing from the hand-in (found: draft.ipynb, scratch.ipynb)"),
    "not_utf8": ("all", "it is not UTF-8 text"),
    "truncated": ("all", "it is not a valid notebook"),
}
TAMPERED = {"patch_allclose", "patch_isclose", "patch_reference", "shadow_builtin", "segfault"}


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.socket.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory, listener) -> Course:
    course = Course.create(tmp_path_factory.mktemp("robustness") / "course", ASSIGNMENT, extra_config=LIMITS)
    correct = course.release()
    for grade_id, code in solutions(course).items():
        cells_by_grade_id(correct)[grade_id].source = code
    submitted = course.root / "submitted"
    for name, (make, _, _) in CASES.items():
        notebook = nbformat.from_dict(json.loads(json.dumps(correct)))
        if name == "probe":
            probe = PROBE.format(
                solutions=str(course.root / "solutions" / ASSIGNMENT / course.notebook),
                course=str(course.root),
                gradebook=str(course.root / "gradebook.db"),
                other=str(submitted / "control" / ASSIGNMENT / course.notebook),
                course_file=str(course.root / "written-by-a-student.txt"),
                tmp_file=str(tmp_file(course)),
                port=listener.port,
            )
            notebook.cells.insert(cell_index(notebook, "counting"), nbformat.v4.new_code_cell(probe))
        else:
            make(notebook, course)
        folder = submitted / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / course.notebook)
    text = nbformat.writes(correct)
    files = {
        "misnamed": {"a1_ngrams-Copy1.ipynb": text.encode()},
        "missing": {"scratch.ipynb": text.encode(), "draft.ipynb": text.encode()},
        "not_utf8": {
            course.notebook: text.replace('"cells"', '"cellés"', 1).encode("latin-1", errors="replace")
        },
        "truncated": {course.notebook: text.encode()[: len(text) // 2]},
    }
    for name, contents in files.items():
        folder = submitted / name / ASSIGNMENT
        folder.mkdir(parents=True)
        for file_name, data in contents.items():
            (folder / file_name).write_bytes(data)
    return course


def tmp_file(course: Course) -> Path:
    return Path("/tmp") / f"written-by-a-student-{course.root.parent.name}"


@pytest.fixture(scope="module")
def graded(course) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.grading", "autograde", ASSIGNMENT, "--workers", "2", "--quiet"],
        cwd=course.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(result.stdout, result.stderr)
    return result


def lost_parts(course: Course, student: str) -> set[str]:
    scores = course.scores(student)
    parts = solution_ids(course.source())
    return {
        part
        for part in parts
        if sum(score for grade_id, (score, _) in scores.items() if grade_id.startswith(f"{part}_test"))
        < sum(maximum for grade_id, (_, maximum) in scores.items() if grade_id.startswith(f"{part}_test"))
    }


def autograded_text(course: Course, student: str) -> str:
    folder = course.root / "autograded" / student / ASSIGNMENT
    notes = folder / NOTES_FILE
    return (folder / course.notebook).read_text(encoding="utf-8") + (
        notes.read_text() if notes.exists() else ""
    )


def test_every_hand_in_is_graded(course, graded):
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert f"{len(CASES) + len(FILE_CASES)} graded" in graded.stdout


@pytest.mark.parametrize("student", list(CASES))
def test_each_hand_in_loses_only_its_broken_parts(course, graded, student):
    _, lost, reason = CASES[student]
    assert lost_parts(course, student) == lost
    assert reason in autograded_text(course, student)


@pytest.mark.parametrize("student", list(FILE_CASES))
def test_a_notebook_that_cannot_be_graded_as_handed_in_is_repaired_with_a_note(course, graded, student):
    lost, note = FILE_CASES[student]
    expected = set(solution_ids(course.source())) if lost == "all" else lost
    assert lost_parts(course, student) == expected
    assert note in graded.stdout
    assert (
        note
        in json.loads((course.root / "autograded" / student / ASSIGNMENT / NOTES_FILE).read_text())["notes"][
            0
        ]
    )


@pytest.mark.parametrize("student", ["patch_allclose", "patch_isclose", "patch_reference", "shadow_builtin"])
def test_a_planted_exploit_scores_zero_on_every_test_of_its_part(course, graded, student):
    lost = CASES[student][1]
    scores = course.scores(student)
    tests = [grade_id for grade_id in scores if grade_id.split("_test")[0] in lost and "_test" in grade_id]
    assert tests and all(scores[grade_id][0] == 0 for grade_id in tests)


def test_huge_output_is_capped(course, graded):
    notebook = course.root / "autograded" / "huge_output" / ASSIGNMENT / course.notebook
    assert notebook.stat().st_size < 1_000_000


def test_tampering_is_flagged_for_the_instructor(course, graded):
    flagged = {
        line.split(",")[0].strip()
        for line in graded.stdout.split("possible tampering")[-1].splitlines()[1:]
        if line.startswith("  ")
    }
    assert flagged == TAMPERED


def test_the_sandbox_keeps_the_course_the_network_and_the_machine_out_of_reach(course, graded, listener):
    probe = json.loads((course.root / "autograded" / "probe" / ASSIGNMENT / "probe.json").read_text())
    for attempt in (
        "read_solutions",
        "list_course",
        "read_gradebook",
        "read_other_hand_in",
        "write_course",
        "connect_grader_loopback",
        "connect_internet",
        "resolve_name",
        "become_root",
        "big_file",
    ):
        assert probe[attempt][0] == "refused", (attempt, probe[attempt])
    assert probe["write_own_folder"][0] == "done" and probe["write_tmp"][0] == "done"  # its own, private /tmp
    assert not tmp_file(course).exists() and not (course.root / "written-by-a-student.txt").exists()
    assert listener.accepted == 0
    assert probe["uid"][0] == "done" and int(probe["uid"][1]) != 0
    assert probe["fork_many"][0] == "refused" and "Resource temporarily unavailable" in probe["fork_many"][1]
    assert 0 < probe["children"] < 64
    assert "File too large" in probe["big_file"][1]


# A hand-in that kills its grading worker process: possible only without the sandbox (in it, the
# kernel sees no process outside its own PID namespace).
WORKER_KILLER = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"


@pytest.fixture(scope="module")
def killed_worker(course, tmp_path_factory) -> tuple[Course, subprocess.CompletedProcess]:
    """Three hand-ins, one of which kills its worker, graded without the sandbox by 2 workers."""
    other = Course(tmp_path_factory.mktemp("worker-death") / "course", ASSIGNMENT)
    shutil.copytree(
        course.root, other.root, ignore=shutil.ignore_patterns("submitted", "autograded", "gradebook.db")
    )
    other.nbgrader("generate_assignment", ASSIGNMENT, "--force")
    for student in ("first", "killer", "second"):
        notebook = nbformat.read(
            course.root / "submitted" / "control" / ASSIGNMENT / course.notebook, as_version=4
        )
        if student == "killer":
            with_code(notebook, "mle", before=WORKER_KILLER)
        folder = other.root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / course.notebook)
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.grading",
            "autograde",
            ASSIGNMENT,
            "--workers",
            "2",
            "--quiet",
            "--unsandboxed",
        ],
        cwd=other.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return other, result


def test_a_dead_worker_process_costs_only_its_own_hand_in(killed_worker):
    other, result = killed_worker
    assert result.returncode == 1
    assert "2 graded" in result.stdout and "1 failed" in result.stdout
    assert "killer: the grading worker process died while executing this hand-in" in result.stderr
    assert lost_parts(other, "first") == set() and lost_parts(other, "second") == set()
