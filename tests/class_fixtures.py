"""A made-up class of hand-ins, for the grading workflow's test and its throughput benchmark.

Each hand-in is the released notebook with some solution cells filled in:

* ``correct``: every solution (the hidden tests are not in it: it is the release);
* ``partial``: every solution but one part, which has a planted mistake from
  ``tests/wrong_answers/<assignment>.py``;
* ``blank``: the released notebook untouched;
* ``syntax``: every solution, one part's cell ending in a syntax error.

The functions take a :class:`tests.nbgrader_course.Course` whose assignment is generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from tests.nbgrader_course import Course, cells_by_grade_id, solution_ids
from tests.wrong_answers import wrong_answers

SYNTAX_ERROR = "\n\nthis line is not Python\n"


@dataclass(frozen=True)
class Student:
    """A student of the made-up class: what they hand in, and the part they get wrong (if one)."""

    name: str
    kind: str  # correct, partial, blank or syntax
    part: str | None = None

    def loses(self, parts: list[str]) -> set[str]:
        """The parts this hand-in gets no points for."""
        if self.kind == "blank":
            return set(parts)
        return {self.part} if self.part else set()


def solutions(course: Course) -> dict[str, str]:
    """grade_id → the solution's code, for every solution cell."""
    source = course.source()
    cells = cells_by_grade_id(source)
    return {grade_id: cells[grade_id].source for grade_id in solution_ids(source)}


def hand_in(course: Course, student: Student) -> nbformat.NotebookNode:
    """The notebook ``student`` hands in."""
    code = {} if student.kind == "blank" else solutions(course)
    if student.kind == "partial":
        code[student.part] = wrong_answers(course.assignment)[student.part]
    elif student.kind == "syntax":
        code[student.part] += SYNTAX_ERROR
    notebook = course.release()
    cells = cells_by_grade_id(notebook)
    for grade_id, source in code.items():
        cells[grade_id].source = source
    return notebook


def mixed_class(course: Course, size: int) -> list[Student]:
    """``size`` students, in every ten: 4 correct, 3 partial, 2 blank and 1 with a syntax error.

    The kinds alternate, so that a small class is mixed too; the partially correct ones and
    the syntax errors go through the parts in turn.
    """
    parts = solution_ids(course.source())
    kinds = ["correct", "partial", "blank", "correct", "partial", "syntax", "correct", "partial", "blank",
             "correct"]
    students = []
    for index in range(size):
        kind = kinds[index % len(kinds)]
        part = parts[index % len(parts)] if kind in ("partial", "syntax") else None
        students.append(Student(f"s{index:03d}", kind, part))
    return students


def submit_all(course: Course, students: list[Student]) -> None:
    """Put each student's hand-in in ``submitted/<student>/<assignment>/``."""
    for student in students:
        folder = course.root / "submitted" / student.name / course.assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(hand_in(course, student), folder / course.notebook)


def lms_file(folder: Path, name: str, notebook: nbformat.NotebookNode | bytes) -> Path:
    """Write a file of an LMS download: a notebook, or raw bytes (a broken file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(notebook, bytes):
        path.write_bytes(notebook)
    else:
        nbformat.write(notebook, path)
    return path
