"""The class workflow with a PostgreSQL gradebook, on a throwaway server (``tests/postgres_server.py``).

nbgrader's gradebook can live on a PostgreSQL server (``CourseDirectory.db_url``). The
parallel grader copies the assignments' definitions out of it for its workers and records
into it with nbgrader's converter; the reports read it. A made-up class is graded in a
course whose gradebook is on the server and in one with the default SQLite gradebook; the
tests check that

* both gradebooks record the same rows, and each hand-in's total is what its planted
  mistakes predict;
* a second run finds everyone graded;
* ``grades.csv`` agrees with the PostgreSQL gradebook.

The tests are skipped where there is no PostgreSQL server (``apt-get install postgresql``)
or no ``psycopg2`` (``pip install -r requirements.txt``).
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_lib.grading.gradebook import add_students, recorded_rows
from tests.class_fixtures import Student, mixed_class, submit_all
from tests.nbgrader_course import Course, cells_by_grade_id, solution_ids
from tests.postgres_server import PostgresServer, postgres_server, server_binaries_or_skip
from tests.test_class_workflow import grading

pytestmark = pytest.mark.slow

ASSIGNMENT = "a1_ngrams"  # among the cheapest assignments to grade: no PyTorch
COURSE_ID = "rnn-language-models"  # nbgrader_config.py's CourseDirectory.course_id
CLASS_SIZE = 6


@dataclass(frozen=True)
class GradedCourse:
    """A course whose class was graded by the parallel grader, and the grader's output."""

    course: Course
    db_url: str
    autograded: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server(server_binaries_or_skip()) as server:
        yield server


def course_on(root: Path, db_url: str) -> Course:
    """A course whose gradebook is at ``db_url``, with the assignment generated into it."""
    return Course.create(root, ASSIGNMENT, extra_config=f"\nc.CourseDirectory.db_url = {db_url!r}\n")


def grade_class(course: Course, db_url: str, students: list[Student]) -> GradedCourse:
    """Hand in every student's notebook and grade them with 2 workers."""
    add_students(db_url, COURSE_ID, {student.name for student in students})
    submit_all(course, students)
    result = grading("autograde", ASSIGNMENT, "--workers", "2", cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    return GradedCourse(course, db_url, result)


@pytest.fixture(scope="module")
def sqlite_course(tmp_path_factory) -> Course:
    return Course.create(tmp_path_factory.mktemp("sqlite") / "course", ASSIGNMENT)


@pytest.fixture(scope="module")
def students(sqlite_course) -> list[Student]:
    return mixed_class(sqlite_course, CLASS_SIZE)


@pytest.fixture(scope="module")
def on_sqlite(sqlite_course, students) -> GradedCourse:
    return grade_class(sqlite_course, f"sqlite:///{sqlite_course.root / 'gradebook.db'}", students)


@pytest.fixture(scope="module")
def on_postgres(postgres, tmp_path_factory, students) -> GradedCourse:
    db_url = postgres.create_database("gradebook")
    course = course_on(tmp_path_factory.mktemp("postgres") / "course", db_url)
    return grade_class(course, db_url, students)


def points(course: Course) -> dict[str, float]:
    """grade_id → points, for every grade cell of the assignment's source notebook."""
    return {
        grade_id: cell.metadata["nbgrader"]["points"]
        for grade_id, cell in cells_by_grade_id(course.source()).items()
        if cell.metadata["nbgrader"].get("grade")
    }


def in_part(grade_id: str, part: str) -> bool:
    """Whether a grade cell tests a part: the cells of part ``counting`` are named ``counting_…``."""
    return grade_id.startswith(f"{part}_")


def gradebook_scores(db_url: str, student: str) -> tuple[float, dict[str, float]]:
    """A student's total and their points per grade cell, as nbgrader's API reads them from ``db_url``."""
    with Gradebook(db_url, COURSE_ID) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        (notebook,) = submission.notebooks
        return submission.score, {grade.name: grade.score for grade in notebook.grades}


def test_both_gradebooks_grade_the_whole_class(on_postgres, on_sqlite):
    for graded in (on_postgres, on_sqlite):
        assert f"{CLASS_SIZE} graded, 0 already graded" in graded.autograded.stdout
        assert ", 0 failed," in graded.autograded.stdout
    assert not (on_postgres.course.root / "gradebook.db").exists()  # nbgrader made no SQLite one


def test_postgres_records_the_same_rows_as_sqlite(on_postgres, on_sqlite, students):
    on_server = recorded_rows(on_postgres.db_url, COURSE_ID, ASSIGNMENT)
    assert sorted(on_server) == sorted(student.name for student in students)
    assert on_server == recorded_rows(on_sqlite.db_url, COURSE_ID, ASSIGNMENT)


def test_each_total_is_what_the_planted_mistakes_predict(on_postgres, students):
    course = on_postgres.course
    parts, cell_points = solution_ids(course.source()), points(course)
    for student in students:
        lost = student.loses(parts)
        expected = sum(value for grade_id, value in cell_points.items()
                       if not any(in_part(grade_id, part) for part in lost))
        total, _ = gradebook_scores(on_postgres.db_url, student.name)
        assert total == expected, student


def test_a_second_run_skips_everyone(on_postgres):
    again = grading("autograde", ASSIGNMENT, "--workers", "2", "--quiet", cwd=on_postgres.course.root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"0 graded, {CLASS_SIZE} already graded" in again.stdout


def test_grades_csv_matches_the_postgres_gradebook(on_postgres, students):
    course = on_postgres.course
    result = grading("report", ASSIGNMENT, cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(course.root / "reports" / ASSIGNMENT / "grades.csv", newline="") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    assert sorted(rows) == sorted(student.name for student in students)
    parts, max_score = solution_ids(course.source()), sum(points(course).values())
    for student in students:
        total, cells = gradebook_scores(on_postgres.db_url, student.name)
        row = rows[student.name]
        assert (row["status"], float(row["score"]), float(row["max_score"])) == ("graded", total, max_score)
        for part in parts:
            part_score = sum(score for grade_id, score in cells.items() if in_part(grade_id, part))
            assert float(row[f"part:{part}"]) == part_score, (student, part)

