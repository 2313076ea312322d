"""The instructor's workflow for a whole class: collect, parallel autograde, feedback and reports.

A made-up class hands in Assignment 1 through an LMS-style download: correct, partially
correct (one planted mistake), blank and broken hand-ins (a syntax error), a student with
no hand-in, a misnamed file, a file of a student not in the class list, a corrupt file and a
file that is no notebook. The tests check that

* ``collect`` imports the matching notebooks and reports every other file with its reason;
* the parallel grader (2 workers) writes exactly the gradebook rows that plain sequential
  ``nbgrader autograde`` writes for the same class, and the same autograded notebooks;
* a second run grades nothing, and ``--force`` grades again;
* the feedback pages, the grades CSV and the per-part summary agree with the gradebook,
  and each partially correct student loses exactly the planted part.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_lib.grading.collect import collect
from course_lib.grading.course import CourseFolder
from course_lib.grading.gradebook import recorded_rows
from tests.class_fixtures import Student, hand_in, lms_file
from tests.nbgrader_course import NBGRADER, Course, solution_ids

pytestmark = pytest.mark.slow

ASSIGNMENT = "a1_ngrams"  # among the cheapest assignments to grade: no PyTorch
COURSE_ID = "rnn-language-models"  # nbgrader_config.py's CourseDirectory.course_id
GRADED = [
    Student("alice", "correct"),
    Student("bob", "partial", "counting"),
    Student("carol", "partial", "sampling"),
    Student("dan", "blank"),
    Student("erin", "syntax", "mle"),
]
# On the class list, without a usable hand-in: no file, a misnamed file, a corrupt file.
ABSENT = ["frank", "grace", "ivan"]
NOT_COLLECTED = {
    "grace_a1_ngram.ipynb": "is not a notebook of the assignments",
    "mallory_a1_ngrams.ipynb": "not in the gradebook's class list",
    "ivan_a1_ngrams.ipynb": "not a readable notebook",
    "notes.txt": "not a notebook",
}


def grading(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m course_lib.grading ARGS`` in ``cwd``, with the environment's tools on the PATH."""
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "course_lib.grading", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def comparable(notebook: nbformat.NotebookNode) -> list[tuple]:
    """A notebook's cells without the execution times, with each run of stream output joined.

    How a kernel splits printed text into stream outputs depends on timing, not on the code.
    """
    cells = []
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and outputs and outputs[-1][:2] == ("stream", output.name):
                outputs[-1] = ("stream", output.name, outputs[-1][2] + output.text)
            elif output.output_type == "stream":
                outputs.append(("stream", output.name, output.text))
            else:
                fields = {key: value for key, value in output.items() if key != "metadata"}
                outputs.append((output.output_type, repr(fields)))
        metadata = {key: value for key, value in cell.metadata.items() if key != "execution"}
        cells.append((cell.cell_type, cell.source, repr(metadata), outputs))
    return cells


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    """The course with the class list, after collecting the LMS download."""
    course = Course.create(tmp_path_factory.mktemp("class") / "course", ASSIGNMENT)
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}", COURSE_ID) as gradebook:
        for name in [student.name for student in GRADED] + ABSENT:
            gradebook.add_student(name)
    download = course.root.parent / "download"
    for student in GRADED:
        lms_file(download, f"{student.name}_{ASSIGNMENT}.ipynb", hand_in(course, student))
    correct = hand_in(course, GRADED[0])
    lms_file(download, "grace_a1_ngram.ipynb", correct)
    lms_file(download, "mallory_a1_ngrams.ipynb", correct)
    lms_file(download, "ivan_a1_ngrams.ipynb", b'{"cells": [')
    lms_file(download, "notes.txt", b"late hand-ins by e-mail\n")
    return course


@pytest.fixture(scope="module")
def collected(course) -> subprocess.CompletedProcess:
    download = course.root.parent / "download"
    result = grading("collect", str(download), "--assignment", ASSIGNMENT, cwd=course.root)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def baseline(course, collected) -> Course:
    """A copy of the collected course, graded by plain sequential ``nbgrader autograde``."""
    copy = Course(course.root.parent / "baseline", ASSIGNMENT)
    shutil.copytree(course.root, copy.root)
    copy.autograde()
    return copy


@pytest.fixture(scope="module")
def graded(course, collected, baseline) -> subprocess.CompletedProcess:
    """The collected course graded in parallel by 2 workers, with the progress bar on."""
    result = grading("autograde", ASSIGNMENT, "--workers", "2", cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def gradebook_rows(course: Course) -> dict:
    return recorded_rows(f"sqlite:///{course.root / 'gradebook.db'}", COURSE_ID, ASSIGNMENT)


def autograded(course: Course, student: str) -> Path:
    return course.root / "autograded" / student / ASSIGNMENT / course.notebook


def graded_times(course: Course) -> dict[str, int]:
    """student → modification time of the autograded notebook (ns)."""
    return {student.name: autograded(course, student.name).stat().st_mtime_ns for student in GRADED}


def part_points(scores: dict[str, tuple[float, float]], part: str) -> tuple[float, float]:
    """(points, maximum) of one part, from ``Course.scores``: its test cells are named ``<part>_test…``."""
    cells = [value for grade_id, value in scores.items() if grade_id.startswith(f"{part}_test")]
    return sum(score for score, _ in cells), sum(max_score for _, max_score in cells)


def test_collect_imports_the_hand_ins_and_reports_every_other_file(course, collected):
    submitted = sorted(path.parent.parent.name for path in (course.root / "submitted").glob("*/*/*.ipynb"))
    assert submitted == sorted(student.name for student in GRADED)
    lines = [line.strip() for line in collected.stdout.splitlines()]
    for file, reason in NOT_COLLECTED.items():
        assert any(line.startswith(f"{file}:") and reason in line for line in lines), (
            f"{file} is not reported as {reason!r}:\n{collected.stdout}"
        )
    assert f"{len(NOT_COLLECTED)} files were NOT collected" in collected.stdout
    assert f"students of the class list: {', '.join(ABSENT)}" in collected.stdout


def test_collecting_the_same_download_again_changes_nothing(course, collected, tmp_path):
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        for path in sorted((course.root.parent / "download").iterdir()):
            zip_file.write(path, path.name)
    report = collect(CourseFolder.load(course.root), archive, assignment=ASSIGNMENT)
    assert len(report.unchanged) == len(GRADED) and not report.new and not report.updated
    assert sorted(unmatched.file for unmatched in report.unmatched) == sorted(NOT_COLLECTED)


def test_collect_keeps_the_newest_copy_and_can_add_students(course, collected, tmp_path):
    copy = tmp_path / "course"
    shutil.copytree(course.root, copy)
    download = tmp_path / "timestamped"
    blank, correct = hand_in(course, GRADED[3]), hand_in(course, GRADED[0])
    older = lms_file(download, "mallory_20260301T100000_a1_ngrams.ipynb", blank)
    newer = lms_file(download, "mallory_20260302T100000_a1_ngrams.ipynb", correct)
    pattern = r"(?P<student_id>[^_]+)_(?P<timestamp>[0-9T]+)_(?P<file_id>.+\.ipynb)"
    report = collect(CourseFolder.load(copy), download, assignment=ASSIGNMENT, pattern=pattern,
                     add_students=True)
    assert report.added_students == ["mallory"] and [item.file for item in report.new] == [newer.name]
    assert [(unmatched.file, unmatched.reason) for unmatched in report.unmatched] == [
        (older.name, f"an older copy of {newer.name}")
    ]
    submitted = copy / "submitted" / "mallory" / ASSIGNMENT
    assert (submitted / "a1_ngrams.ipynb").read_bytes() == newer.read_bytes()
    assert (submitted / "timestamp.txt").read_text() == "2026-03-02 10:00:00"


def test_parallel_grading_reports_progress_and_grades_everyone(graded):
    assert f"{len(GRADED)} graded, 0 already graded" in graded.stdout
    assert f"{len(GRADED)}/{len(GRADED)}" in graded.stderr  # the progress bar


def test_gradebook_equals_sequential_nbgrader(course, baseline, graded):
    parallel, sequential = gradebook_rows(course), gradebook_rows(baseline)
    assert sorted(parallel) == sorted(student.name for student in GRADED)
    assert parallel == sequential


def test_autograded_notebooks_equal_sequential_nbgrader(course, baseline, graded):
    for student in GRADED:
        parallel = nbformat.read(autograded(course, student.name), as_version=4)
        sequential = nbformat.read(autograded(baseline, student.name), as_version=4)
        assert comparable(parallel) == comparable(sequential), student.name


def test_each_hand_in_loses_exactly_the_planted_parts(course, graded):
    parts = solution_ids(course.source())
    for student in GRADED:
        scores = course.scores(student.name)
        lost = {part for part in parts if part_points(scores, part)[0] < part_points(scores, part)[1]}
        assert lost == student.loses(parts), student.name
        assert all(part_points(scores, part)[0] == 0 for part in lost), student.name
        assert all(score in (0, max_score) for score, max_score in scores.values()), student.name


def test_a_second_run_skips_everything_and_force_grades_again(course, baseline, graded):
    before = graded_times(course)
    again = grading("autograde", ASSIGNMENT, "--quiet", cwd=course.root)
    assert again.returncode == 0, again.stderr
    assert f"0 graded, {len(GRADED)} already graded" in again.stdout
    assert "hand-in/s" not in again.stderr  # --quiet: no progress bar
    assert graded_times(course) == before

    forced = grading("autograde", ASSIGNMENT, "--force", "--student", "bob", "--quiet", cwd=course.root)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "1 graded, 0 already graded" in forced.stdout
    after = graded_times(course)
    assert after.pop("bob") > before.pop("bob")
    assert after == before
    assert gradebook_rows(course) == gradebook_rows(baseline)


def test_reports_agree_with_the_gradebook(course, graded):
    result = grading("report", ASSIGNMENT, cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    for student in GRADED:
        page = course.root / "feedback" / student.name / ASSIGNMENT / "a1_ngrams.html"
        assert page.is_file() and page.stat().st_size > 0, page

    parts = solution_ids(course.source())
    reports = course.root / "reports" / ASSIGNMENT
    with open(reports / "grades.csv", newline="") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    assert sorted(rows) == sorted([student.name for student in GRADED] + ABSENT)
    for student in GRADED:
        scores = course.scores(student.name)
        row = rows[student.name]
        assert row["status"] == "graded"
        assert float(row["score"]) == sum(score for score, _ in scores.values())
        for part in parts:
            assert float(row[f"part:{part}"]) == part_points(scores, part)[0]
    for name in ABSENT:
        assert rows[name]["status"] == "no hand-in" and float(rows[name]["score"]) == 0

    with open(reports / "parts.csv", newline="") as file:
        summary = {row["part"]: row for row in csv.DictReader(file)}
    assert list(summary) == [*parts, "total"]
    full = course.scores("alice")
    for part in parts:
        max_points = part_points(full, part)[1]
        losers = sum(part in student.loses(parts) for student in GRADED)
        row = summary[part]
        assert int(row["hand_ins"]) == len(GRADED)
        assert float(row["share_zero"]) == pytest.approx(losers / len(GRADED), abs=1e-3)
        assert float(row["share_full"]) == pytest.approx(1 - losers / len(GRADED), abs=1e-3)
        assert float(row["mean_points"]) == pytest.approx(max_points * (1 - losers / len(GRADED)), abs=1e-3)
    assert (reports / "parts.png").read_bytes().startswith(b"\x89PNG")
    assert (course.root / "reports" / ".gitignore").read_text().splitlines()[-1] == "*"
