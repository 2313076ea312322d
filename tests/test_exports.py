"""The gradebook's grades exported for Canvas, Moodle and Gradescope, read back from the files.

A small class of Assignment 1 in a real nbgrader gradebook, graded by ``nbgrader autograde``:
alice hands in every part correct, bob gets ``counting`` wrong, carol hands in nothing, and
mallory is in the gradebook but in no class list. The gradebook has a second assignment
(``a0_intro``) that no one handed in. The tests check the points against ``nbgrader
export``, the empty cells, one column per assignment, Canvas's Points Possible row, Moodle's
identifying column, the tests of Gradescope's ``results.json``, the report of students that
do not match, and that a bad class list gives an error naming the column and writes no file.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_lib.grading import GradingError
from course_lib.grading.course import CourseFolder
from course_lib.grading.exports import canvas_export, moodle_export
from tests.class_fixtures import Student, hand_in
from tests.nbgrader_course import NBGRADER, Course

pytestmark = pytest.mark.slow

ASSIGNMENT = "a1_ngrams"  # among the cheapest assignments to grade: no PyTorch
OTHER = "a0_intro"  # in the gradebook, without notebooks or hand-ins
COURSE_ID = "rnn-language-models"
GRADED = [Student("alice", "correct"), Student("bob", "partial", "counting")]
EMAILS = {"alice": "alice@uni.example", "bob": "bob@uni.example", "carol": "carol@uni.example",
          "mallory": "mallory@uni.example"}
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Quiz 1 (101)", "Current Score",
                 "Unposted Final Score"]
CANVAS_ROWS = [
    ["    Points Possible", "", "", "", "", "10", "(read only)", "(read only)"],
    ["", "", "", "", "", "Manual Posting", "", ""],
    ["Liddell, Alice", "11", "1001", "alice", "Sec 1", "8", "80", "80"],
    ["Builder, Bob", "12", "1002", "bob", "Sec 1", "9", "90", "90"],
    ["Carroll, Carol", "13", "1003", "carol", "Sec 1", "", "", ""],
    ["Student, Test", "14", "", "test_student", "Sec 1", "", "", ""],
]
MOODLE_PARTICIPANTS = [
    ["First name", "Last name", "ID number", "Email address", "Roles", "Groups"],
    ["Alice", "Liddell", "alice", "alice@uni.example", "Student", ""],
    ["Bob", "Builder", "bob", "BOB@uni.example", "Student", ""],
    ["Carol", "Carroll", "carol", "carol@uni.example", "Student", ""],
    ["Tess", "Teacher", "", "tess@uni.example", "Non-editing teacher", ""],
]


def grading(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m course_lib.grading ARGS`` in ``cwd``, with the environment's tools on the PATH."""
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "course_lib.grading", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    """The class, graded by ``nbgrader autograde``."""
    course = Course.create(tmp_path_factory.mktemp("exports") / "course", ASSIGNMENT)
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}", COURSE_ID) as gradebook:
        for name, email in EMAILS.items():
            gradebook.add_student(name, email=email)
        gradebook.add_assignment(OTHER)
    for student in GRADED:
        folder = course.root / "submitted" / student.name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(hand_in(course, student), folder / course.notebook)
    course.autograde()
    return course


@pytest.fixture(scope="module")
def exported(course) -> dict[str, float]:
    """student → score of Assignment 1, from ``nbgrader export`` (0 without a hand-in)."""
    course.nbgrader("export", "--to", "grades.csv")
    with open(course.root / "grades.csv", newline="") as file:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(file)
                if row["assignment"] == ASSIGNMENT}


@pytest.fixture(scope="module")
def max_score(course) -> float:
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}", COURSE_ID) as gradebook:
        return gradebook.find_assignment(ASSIGNMENT).max_score


def test_the_class_is_graded_as_planned(exported, max_score):
    assert exported["alice"] == max_score
    assert 0 < exported["bob"] < max_score
    assert exported["carol"] == exported["mallory"] == 0


def test_canvas_file_fills_the_class_list(course, exported, max_score, tmp_path):
    class_list = write_csv(tmp_path / "canvas_export.csv", [CANVAS_HEADER, *CANVAS_ROWS])
    result = grading("export", "canvas", "--class-list", str(class_list), cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr

    header, *rows = read_csv(course.root / "reports" / "canvas-grades.csv")
    # Canvas's columns kept, one new column per assignment of the gradebook, before the totals.
    assert header == [*CANVAS_HEADER[:6], OTHER, ASSIGNMENT, *CANVAS_HEADER[6:]]
    points_possible, manual_posting, *students = rows
    assert points_possible[header.index(ASSIGNMENT)] == f"{max_score:g}"
    assert points_possible[header.index(OTHER)] == "0"
    assert manual_posting == [*CANVAS_ROWS[1][:6], "", "", *CANVAS_ROWS[1][6:]]
    cells = {row[3]: row[header.index(ASSIGNMENT)] for row in students}
    assert float(cells["alice"]) == exported["alice"]
    assert float(cells["bob"]) == exported["bob"]
    assert cells["carol"] == "" and cells["test_student"] == ""  # no hand-in: empty, not 0
    assert all(row[header.index(OTHER)] == "" for row in students)
    # The other columns are as Canvas exported them.
    kept = [i for i, name in enumerate(header) if name not in (OTHER, ASSIGNMENT)]
    assert [[row[i] for i in kept] for row in students] == CANVAS_ROWS[2:]
    lines = result.stdout.splitlines()
    assert any("NOT in the class list" in line and "mallory" in line for line in lines), result.stdout
    assert any("Student, Test" in line and "test_student" in line for line in lines), result.stdout


def test_canvas_file_fills_canvas_own_column_matched_by_sis_user_id(course, exported, max_score, tmp_path):
    header = [*CANVAS_HEADER[:6], f"{ASSIGNMENT} (555)", *CANVAS_HEADER[6:]]
    rows = [row[:6] + [value] + row[6:] for row, value in
            zip(CANVAS_ROWS, ["20", "", "5", "", "7", ""], strict=True)]
    for row in rows[2:]:  # nbgrader's ids are the SIS User IDs here
        row[2], row[3] = row[3] if row[2] else "", row[2]
    class_list = write_csv(tmp_path / "canvas_export.csv", [header, *rows])
    output = tmp_path / "for_canvas.csv"
    folder = CourseFolder.load(course.root)
    report = canvas_export(folder, class_list, output, match="sis_id", assignments=[ASSIGNMENT])

    written_header, *written = read_csv(output)
    assert written_header == header  # Canvas's column "a1_ngrams (555)" is filled, none added
    cells = {row[2]: row[6] for row in written}
    assert float(cells["alice"]) == exported["alice"] and float(cells["bob"]) == exported["bob"]
    assert cells["carol"] == "7"  # no hand-in: the grade Canvas has (entered by hand) is kept
    assert written[0][6] == "20"  # Canvas's Points Possible, with a note that nbgrader's differ
    assert report.match_column == "SIS User ID" and report.students == 3
    assert report.graded == {ASSIGNMENT: 2} and report.no_hand_in == {ASSIGNMENT: ["carol"]}
    assert report.not_in_class_list == ["mallory"]
    assert report.not_in_gradebook == ["Student, Test (no SIS User ID)"]
    assert any("20 points" in note and f"{max_score:g}" in note for note in report.notes), report.notes


def test_canvas_matching_by_email_in_the_sis_login_id(course, exported, tmp_path):
    rows = [list(row) for row in CANVAS_ROWS]
    for row in rows[2:5]:
        row[3] = EMAILS[row[3]].upper() if row[3] == "bob" else EMAILS[row[3]]
    class_list = write_csv(tmp_path / "canvas_export.csv", [CANVAS_HEADER, *rows])
    output = tmp_path / "for_canvas.csv"
    canvas_export(CourseFolder.load(course.root), class_list, output, match="email", assignments=[ASSIGNMENT])
    header, *written = read_csv(output)
    cells = {row[0]: row[header.index(ASSIGNMENT)] for row in written}
    assert float(cells["Liddell, Alice"]) == exported["alice"]
    assert float(cells["Builder, Bob"]) == exported["bob"]
    assert cells["Carroll, Carol"] == ""


def test_moodle_file_has_the_identifier_and_one_column_per_assignment(course, exported, tmp_path):
    participants = write_csv(tmp_path / "participants.csv", MOODLE_PARTICIPANTS)
    output = tmp_path / "moodle.csv"
    result = grading("export", "moodle", "--class-list", str(participants), "--output", str(output),
                     cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    header, *rows = read_csv(output)
    assert header == ["Email address", OTHER, ASSIGNMENT]
    assert [row[0] for row in rows] == ["alice@uni.example", "BOB@uni.example", "carol@uni.example"]
    points = {row[0].casefold(): row[2] for row in rows}
    assert float(points["alice@uni.example"]) == exported["alice"]
    assert float(points["bob@uni.example"]) == exported["bob"]
    assert points["carol@uni.example"] == ""
    assert all(row[1] == "" for row in rows)
    assert "Tess Teacher (Email address tess@uni.example)" in result.stdout
    assert "mallory" in result.stdout

    report = moodle_export(CourseFolder.load(course.root), participants, output, match="idnumber",
                           assignments=[ASSIGNMENT])
    header, *rows = read_csv(output)
    assert header == ["ID number", ASSIGNMENT]
    assert {row[0]: row[1] for row in rows} == {
        "alice": f"{exported['alice']:g}", "bob": f"{exported['bob']:g}", "carol": ""
    }
    assert report.not_in_gradebook == ["Tess Teacher (no ID number)"]


def test_a_class_list_without_the_column_is_an_error_and_writes_nothing(course, tmp_path):
    rows = [CANVAS_HEADER, *CANVAS_ROWS]
    without_sis = write_csv(tmp_path / "canvas_export.csv", [row[:2] + row[3:] for row in rows])
    output = tmp_path / "for_canvas.csv"
    result = grading("export", "canvas", "--class-list", str(without_sis), "--match", "sis_id",
                     "--output", str(output), cwd=course.root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no column 'SIS User ID'" in result.stderr and "--match" in result.stderr
    assert not output.exists() and not list(tmp_path.glob(".*.tmp"))

    folder = CourseFolder.load(course.root)
    not_canvas = write_csv(tmp_path / "students.csv", [["name", "email"], ["Alice", "alice@uni.example"]])
    with pytest.raises(GradingError, match="not a gradebook exported by Canvas"):
        canvas_export(folder, not_canvas, output)
    no_email = write_csv(tmp_path / "participants.csv", [row[:3] for row in MOODLE_PARTICIPANTS])
    with pytest.raises(GradingError, match="no column 'Email address'.*--match"):
        moodle_export(folder, no_email, output)
    participants = write_csv(tmp_path / "ok.csv", MOODLE_PARTICIPANTS)
    with pytest.raises(GradingError, match="no assignment 'a9_missing'"):
        moodle_export(folder, participants, output, assignments=["a9_missing"])
    assert not output.exists()


def test_gradescope_results_have_one_test_per_grade_cell(course, exported):
    result = grading("export", "gradescope", ASSIGNMENT, cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no hand-in, no file: carol, mallory" in result.stdout
    folder = course.root / "reports" / ASSIGNMENT / "gradescope"
    assert sorted(path.name for path in folder.iterdir()) == ["alice", "bob"]
    for student in GRADED:
        results = json.loads((folder / student.name / "results.json").read_text())
        scores = course.scores(student.name)  # grade id → (score, max score), from the gradebook
        tests = {test["name"]: test for test in results["tests"]}
        assert results["score"] == exported[student.name]
        assert sum(test["score"] for test in results["tests"]) == pytest.approx(results["score"])
        assert {name: (test["score"], test["max_score"]) for name, test in tests.items()} == scores
        for name, test in tests.items():
            assert test["visibility"] == ("after_published" if name.endswith("_hidden") else "visible"), name
            assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed"), name
        failed = sorted(name for name, test in tests.items() if test["status"] == "failed")
        if student.part is None:
            assert failed == []
            continue
        assert failed == [f"{student.part}_test_hidden", f"{student.part}_test_visible"]
        notebook = nbformat.read(course.root / "autograded" / student.name / ASSIGNMENT / course.notebook, 4)
        cells = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in notebook.cells}
        for name in failed:
            cell = cells[name]
            (error,) = [output for output in cell.outputs if output.output_type == "error"]
            assert error.ename in tests[name]["output"] and error.evalue in tests[name]["output"]
            assert "Traceback" in tests[name]["output"] or "Error" in tests[name]["output"]
            assert "\x1b[" not in tests[name]["output"]
