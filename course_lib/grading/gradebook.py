"""Every access of this package to nbgrader's gradebook, through nbgrader's API and its tables.

The gradebook is any database nbgrader supports (``CourseDirectory.db_url``: SQLite by
default, PostgreSQL for a shared server). Scores are written only by nbgrader's own
converters (see ``record``); this module reads them, manages the class list, and copies the
assignments' definitions into the private gradebook of a grading worker.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Assignment, Base, Gradebook, MissingEntry, Student, SubmittedAssignment
from sqlalchemy import create_engine, insert, select
from sqlalchemy.engine import make_url

from course_lib.grading import GradingError

# The tables that define the assignments (no student data): what a worker's gradebook needs.
ASSIGNMENT_TABLES = (
    "course", "assignment", "notebook", "base_cell", "source_cell", "grade_cells", "solution_cells",
    "task_cells",
)


def unknown_assignment(assignment: str) -> GradingError:
    """The error for an assignment that the gradebook does not have, with the command that adds it."""
    return GradingError(
        f"the gradebook has no assignment {assignment!r}: run "
        f"`nbgrader generate_assignment {assignment}` (or `make exercises`) first"
    )


@contextmanager
def opened(db_url: str, course_id: str) -> Iterator[Gradebook]:
    """nbgrader's gradebook at ``db_url``, closed at the end of the block.

    An SQLite gradebook must exist: nbgrader would create an empty one.
    """
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        raise GradingError(
            f"there is no gradebook at {url.database}: run `make exercises` (nbgrader generate_assignment) "
            "in the course folder first, or pass --course FOLDER"
        )
    with Gradebook(db_url, course_id) as gradebook:
        yield gradebook


def class_list(db_url: str, course_id: str) -> set[str]:
    """The ids of the students in the gradebook."""
    with opened(db_url, course_id) as gradebook:
        return {student.id for student in gradebook.students}


def add_students(db_url: str, course_id: str, students: set[str]) -> None:
    """Add students (by id, without names) to the gradebook's class list."""
    with opened(db_url, course_id) as gradebook:
        for student in sorted(students):
            gradebook.update_or_create_student(student)


def notebooks(db_url: str, course_id: str) -> dict[str, list[str]]:
    """assignment → the names of its notebooks (without ``.ipynb``), for every assignment of the gradebook."""
    with opened(db_url, course_id) as gradebook:
        return {
            assignment.name: [notebook.name for notebook in assignment.notebooks]
            for assignment in gradebook.assignments
        }


def copy_assignment_definitions(db_url: str, target_url: str) -> None:
    """Create the gradebook ``target_url`` holding the assignments of ``db_url`` and no student data.

    Rows are copied as they are (ids, checksums and the locked cells' source included), so
    nbgrader restores the same cells from either gradebook.
    """
    Gradebook(target_url).close()  # nbgrader creates the tables and records their version
    source, target = create_engine(db_url), create_engine(target_url)
    try:
        with source.connect() as reading, target.begin() as writing:
            for name in ASSIGNMENT_TABLES:
                table = Base.metadata.tables[name]
                present = set(writing.execute(select(table.c.id)).scalars())
                rows = [dict(row._mapping) for row in reading.execute(select(table))]
                missing = [row for row in rows if row["id"] not in present]
                if missing:
                    writing.execute(insert(table), missing)
    finally:
        source.dispose()
        target.dispose()


@dataclass(frozen=True)
class Part:
    """A graded part of an assignment: a solution cell and the test cells named after it."""

    name: str
    max_score: float
    cells: tuple[str, ...]  # the grade cells, as (qualified) grade ids


@dataclass
class StudentGrades:
    """One student's grades for one assignment (zero everywhere when nothing was handed in).

    ``status`` is ``graded``, ``not graded`` (handed in, but a grade cell has no score: its
    grading failed) or ``no hand-in``.
    """

    student_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    status: str
    timestamp: datetime.datetime | None
    raw_score: float
    late_penalty: float
    cells: dict[str, float] = field(default_factory=dict)  # grade id → points

    @property
    def score(self) -> float:
        """The score after the late penalty, never below zero (as ``nbgrader export`` computes it)."""
        return max(0.0, self.raw_score - self.late_penalty)


@dataclass(frozen=True)
class AssignmentGrades:
    """Every student's grades for an assignment, and the assignment's parts."""

    assignment: str
    duedate: datetime.datetime | None
    max_score: float
    parts: list[Part]
    students: list[StudentGrades]


def part_of(cell: str, solutions: list[str]) -> str:
    """The part a grade cell belongs to: the longest solution-cell name ``s`` with ``cell`` = ``s_…``.

    A grade cell named after no solution cell (``counting_test_hidden`` belongs to ``counting``)
    is a part of its own.
    """
    owners = [solution for solution in solutions if cell.startswith(f"{solution}_")]
    return max(owners, key=len) if owners else cell


def _parts(definition: Assignment, qualified: Callable[[str, str], str],
           position: dict[str, int]) -> list[Part]:
    """The parts of an assignment, in the order of their first grade cell in ``position``."""
    cells: dict[str, list[tuple[str, float]]] = {}
    for notebook in definition.notebooks:
        solutions = [cell.name for cell in notebook.solution_cells]
        for cell in notebook.grade_cells:
            part = qualified(notebook.name, part_of(cell.name, solutions))
            cells.setdefault(part, []).append((qualified(notebook.name, cell.name), cell.max_score))
    parts = [
        Part(name, sum(points for _, points in members), tuple(sorted(cell for cell, _ in members)))
        for name, members in cells.items()
    ]
    return sorted(parts, key=lambda part: (min(position.get(cell, len(position)) for cell in part.cells),
                                           part.name))


def _student_grades(student: Student, submission: SubmittedAssignment | None,
                    qualified: Callable[[str, str], str]) -> StudentGrades:
    grades = StudentGrades(student.id, student.first_name, student.last_name, student.email,
                           status="no hand-in", timestamp=None, raw_score=0.0, late_penalty=0.0)
    if submission is None:
        return grades
    grades.timestamp = submission.timestamp
    grades.raw_score = submission.score
    grades.late_penalty = submission.late_submission_penalty or 0.0
    scored = True
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            if grade.cell.type == "GradeCell":
                grades.cells[qualified(notebook.name, grade.cell.name)] = grade.score
                scored = scored and not (grade.auto_score is None and grade.manual_score is None)
    grades.status = "graded" if scored else "not graded"
    return grades


def assignment_grades(db_url: str, course_id: str, assignment: str,
                      cell_order: list[str] | None = None) -> AssignmentGrades:
    """Every student's points per grade cell of ``assignment``, and its parts.

    Grade ids are qualified by the notebook (``notebook/grade_id``) when the assignment has
    several notebooks. The parts come in the order of their first grade cell in
    ``cell_order`` (the gradebook does not record the cells' order), else by name. Students
    of the class list without a hand-in get zero points.
    """
    with opened(db_url, course_id) as gradebook:
        try:
            definition = gradebook.find_assignment(assignment)
        except MissingEntry:
            raise unknown_assignment(assignment) from None
        several = len(definition.notebooks) > 1

        def qualified(notebook: str, name: str) -> str:
            return f"{notebook}/{name}" if several else name

        submissions = {submission.student_id: submission for submission in definition.submissions}
        students = [
            _student_grades(student, submissions.get(student.id), qualified)
            for student in sorted(gradebook.students, key=lambda student: student.id)
        ]
        position = {cell: index for index, cell in enumerate(cell_order or [])}
        parts = _parts(definition, qualified, position)
        return AssignmentGrades(assignment, definition.duedate, definition.max_score, parts, students)


def recorded_rows(db_url: str, course_id: str, assignment: str) -> dict[str, dict]:
    """Everything the gradebook records about the hand-ins of ``assignment``, without database ids.

    student → its name fields, the submission's timestamp and extension, and per notebook the
    late penalty, the flag, and every grade and comment row. Two gradebooks that graded the
    same hand-ins the same way give equal results.
    """
    with opened(db_url, course_id) as gradebook:
        rows = {}
        for submission in gradebook.assignment_submissions(assignment):
            student = submission.student
            rows[student.id] = {
                "student": (student.first_name, student.last_name, student.email, student.lms_user_id),
                "timestamp": submission.timestamp,
                "extension": submission.extension,
                "notebooks": {
                    notebook.name: {
                        "late_submission_penalty": notebook.late_submission_penalty,
                        "flagged": notebook.flagged,
                        "grades": {
                            grade.cell.name: (
                                grade.auto_score, grade.manual_score, grade.extra_credit,
                                grade.needs_manual_grade,
                            )
                            for grade in notebook.grades
                        },
                        "comments": {
                            comment.cell.name: (comment.auto_comment, comment.manual_comment)
                            for comment in notebook.comments
                        },
                    }
                    for notebook in submission.notebooks
                },
            }
        return rows
