"""The gradebook's grades in the files that learning platforms import: Canvas, Moodle, Gradescope.

* ``canvas_export``: the gradebook CSV that Canvas exports (Grades > Export), with one column
  of points per assignment filled in, for Canvas's Grades > Import;
* ``moodle_export``: a CSV of one identifying column (e-mail address or ID number) and one
  column of points per assignment, for Moodle's Grades > Import > CSV file;
* ``gradescope_export``: per graded hand-in, a ``results.json`` in the format of Gradescope's
  autograders, one test per grade cell, with the error of each failed test.

The points are those of ``nbgrader export`` (the score after the late penalty). The class
list is the one the platform exports; its students are matched to nbgrader's student ids by
one of its columns. A student of the class list without a graded hand-in gets an empty cell,
not 0: a missing hand-in is not a grade, and the platform's own rules for missing work apply
(and in a Canvas file, a cell that already holds a grade keeps it). Students of the gradebook
that the class list lacks, and rows of the class list that match no student of the gradebook,
are listed in the report. Every file is written whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests

from course_lib.grading import GradingError, gradebook
from course_lib.grading.course import CourseFolder
from course_lib.grading.files import write_atomically
from course_lib.grading.gradebook import AssignmentGrades, StudentGrades
from course_lib.grading.reports import release_cell_order, reports_folder

# --match → (the class list's column, what of nbgrader's student it holds: "id" or "email").
CANVAS_MATCHES = {
    "sis_login": ("SIS Login ID", "id"),
    "sis_id": ("SIS User ID", "id"),
    "email": ("SIS Login ID", "email"),
}
MOODLE_MATCHES = {
    "email": ("Email address", "email"),
    "idnumber": ("ID number", "id"),
}
# The other spellings of Moodle's columns, compared without case, spaces, hyphens and underscores.
MOODLE_COLUMN_NAMES = {"Email address": {"emailaddress", "email"}, "ID number": {"idnumber"}}
CANVAS_EXPORT = "Canvas's Grades page, Export > Export Entire Gradebook"
MOODLE_EXPORT = "Moodle's Grades > Export > Plain text file (it has both 'ID number' and 'Email address')"
# Canvas's computed columns, which its import ignores (also with "Unposted" before them).
CANVAS_TOTALS = re.compile(
    r"Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade|Override Score|"
    r"Override Grade|Override Status"
)
# The rows of Canvas's export that are no student: its notes on muted or manually posted assignments.
CANVAS_NO_STUDENT = re.compile(r"\s*(Muted|Manual Posting.*)?\s*", re.IGNORECASE)
CANVAS_COLUMN_ID = re.compile(r"(?P<title>.*?)\s*\((?P<id>\d+)\)")  # "a1_ngrams (1234)"
VISIBLE, HIDDEN = "visible", "after_published"  # Gradescope's visibility of visible and hidden tests
MAX_OUTPUT = 10_000  # characters of a failed test's error kept in results.json (the end of it)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class ExportReport:
    """What an export wrote, and what the instructor should look at."""

    output: Path
    assignments: list[str]
    match_column: str
    students: int = 0  # rows of students written
    graded: dict[str, int] = field(default_factory=dict)  # assignment → cells of points written
    no_hand_in: dict[str, list[str]] = field(default_factory=dict)  # assignment → students (empty cell)
    not_graded: dict[str, list[str]] = field(default_factory=dict)  # assignment → students (empty cell)
    not_in_class_list: list[str] = field(default_factory=list)  # nbgrader students missing from the file
    not_in_gradebook: list[str] = field(default_factory=list)  # rows of the class list matching no one
    rows_kept: bool = False  # whether those rows are in the file, as they were (Canvas), or left out
    notes: list[str] = field(default_factory=list)


@dataclass
class GradescopeReport:
    """The ``results.json`` files written for an assignment, and the hand-ins without one."""

    assignment: str
    folder: Path
    written: list[str] = field(default_factory=list)  # students
    no_hand_in: list[str] = field(default_factory=list)
    not_graded: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # student → why no file was written


@dataclass(frozen=True)
class ClassList:
    """A CSV file of the platform's students: its header, its rows (padded to the header) and delimiter."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    delimiter: str

    def column(self, name: str, within: int | None = None, names: set[str] | None = None) -> int:
        """The index of the column ``name`` (or of one of ``names``, compared as ``_normal``).

        ``within`` limits the search to the first columns. Raises ``ColumnMissing``.
        """
        candidates = names or {_normal(name)}
        for index, header in enumerate(self.header[:within]):
            if _normal(header) in candidates:
                return index
        raise ColumnMissing(name)


class ColumnMissing(Exception):
    """A class list lacks a column (turned into a ``GradingError`` that says how to get it)."""


def _normal(header: str) -> str:
    return re.sub(r"[\s_-]+", "", header).casefold()


def points_text(points: float) -> str:
    """Points as the CSV files hold them: ``7``, ``6.5`` (no trailing ``.0``, no rounding noise)."""
    value = round(float(points), 6)
    return str(int(value)) if value.is_integer() else repr(value)


def read_class_list(path: Path) -> ClassList:
    """Read a class list CSV (UTF-8, with or without a byte-order mark; comma, semicolon or tab)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GradingError(f"there is no class list {path}") from None
    except UnicodeDecodeError:
        raise GradingError(f"the class list {path} is not UTF-8 text: save it as CSV UTF-8") from None
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(map(str.strip, row))]
    if not rows:
        raise GradingError(f"the class list {path} is empty")
    header = [cell.strip() for cell in rows[0]]
    return ClassList(path, header, [row + [""] * (len(header) - len(row)) for row in rows[1:]], delimiter)


def _csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def class_grades(course: CourseFolder, assignments: list[str] | None = None) -> list[AssignmentGrades]:
    """Every student's grades of the named assignments, else of all the gradebook's (in its order)."""
    names = assignments or list(gradebook.notebooks(course.db_url, course.course_id))
    if not names:
        raise GradingError("the gradebook has no assignments: run `nbgrader generate_assignment` first")
    return [gradebook.assignment_grades(course.db_url, course.course_id, name) for name in names]


def _student_keys(grades: list[AssignmentGrades], holds: str) -> dict[str, str]:
    """The class list's value (case-folded) → the nbgrader student id it stands for.

    ``holds`` is ``id`` (the value is the student id) or ``email`` (the e-mail address the
    gradebook has for the student, or the student id where the ids are e-mail addresses).
    """
    keys: dict[str, str] = {}
    for student in grades[0].students:
        values = {student.student_id} if holds == "id" else {student.email or "", student.student_id}
        for value in {value.strip().casefold() for value in values} - {""}:
            if holds == "email" and "@" not in value:
                continue
            other = keys.setdefault(value, student.student_id)
            if other != student.student_id:
                raise GradingError(f"students {other} and {student.student_id} of the gradebook both have "
                                   f"{value!r}: give them different e-mail addresses, or use another --match")
    return keys


def _match_rows(class_list: ClassList, key_column: int, keys: dict[str, str], rows: list[int],
                describe: list[int]) -> tuple[dict[int, str], list[str]]:
    """The rows (indices into ``class_list.rows``) of students of the gradebook → their student ids.

    Also returns the rows that match no student, described by the columns ``describe``.
    """
    matched: dict[int, str] = {}
    seen: dict[str, int] = {}
    unmatched = []
    column = class_list.header[key_column]
    for index in rows:
        row = class_list.rows[index]
        value = row[key_column].strip()
        who = " ".join(row[i].strip() for i in describe if row[i].strip())
        if not value:
            unmatched.append(f"{who or f'row {index + 2}'} (no {column})")
            continue
        if value.casefold() in seen:
            raise GradingError(f"the class list {class_list.path} has {column} {value!r} in two rows "
                               f"(lines {seen[value.casefold()] + 2} and {index + 2}): remove one")
        seen[value.casefold()] = index
        if value.casefold() in keys:
            matched[index] = keys[value.casefold()]
        else:
            unmatched.append(f"{who} ({column} {value})" if who else f"{column} {value}")
    return matched, unmatched


def _fill_report(report: ExportReport, grades: list[AssignmentGrades], matched: dict[int, str],
                 unmatched: list[str]) -> None:
    report.students = len(matched)
    report.not_in_gradebook = unmatched
    in_class_list = set(matched.values())
    report.not_in_class_list = [s.student_id for s in grades[0].students if s.student_id not in in_class_list]
    for assignment in grades:
        name = assignment.assignment
        students = [s for s in assignment.students if s.student_id in in_class_list]
        report.graded[name] = sum(s.status == "graded" for s in students)
        report.no_hand_in[name] = [s.student_id for s in students if s.status == "no hand-in"]
        report.not_graded[name] = [s.student_id for s in students if s.status == "not graded"]


def _by_student(assignment: AssignmentGrades) -> dict[str, StudentGrades]:
    return {student.student_id: student for student in assignment.students}


def _graded_points(student: StudentGrades | None) -> str | None:
    """The points to write for a student, or None where the cell stays empty (no graded hand-in)."""
    return points_text(student.score) if student is not None and student.status == "graded" else None


def _missing_column(class_list: ClassList, column: str, how: str) -> GradingError:
    return GradingError(f"the class list {class_list.path} has no column {column!r}: {how}")


def canvas_export(course: CourseFolder, class_list_path: Path, output: Path, *, match: str = "sis_login",
                  assignments: list[str] | None = None) -> ExportReport:
    """Write Canvas's gradebook export ``class_list_path`` to ``output`` with the assignments' points.

    Each assignment fills the column Canvas names after it (``a1_ngrams (1234)``), else a new
    column named after it, placed before Canvas's totals, with its maximum score in the
    ``Points Possible`` row (a row that is added if the file lacks it). Every other column and
    row is kept as it is. ``match`` chooses the column that identifies the students
    (``CANVAS_MATCHES``).
    """
    column, holds = CANVAS_MATCHES[match]
    class_list = read_class_list(class_list_path)
    header = class_list.header
    if len(header) < 3 or "Student" not in header[0] or "ID" not in header[1]:
        raise GradingError(f"{class_list.path} is not a gradebook exported by Canvas: its first row must "
                           f"start with Student, ID, … Section (download it from {CANVAS_EXPORT})")
    try:
        section = class_list.column("Section")
        key_column = class_list.column(column, within=section)
    except ColumnMissing as missing:
        how = (f"download the class list from {CANVAS_EXPORT}" if str(missing) == "Section" else
               f"Canvas exports it to users allowed to see SIS data; or choose another --match "
               f"({', '.join(other for other in CANVAS_MATCHES if other != match)})")
        raise _missing_column(class_list, str(missing), how) from None
    if resolved(output) == resolved(class_list.path):
        raise GradingError(f"the output {output} is the class list itself: write to another file (--output)")

    with course.lock():
        grades = class_grades(course, assignments)
    keys = _student_keys(grades, holds)
    points_row = next((i for i, row in enumerate(class_list.rows) if "Points Possible" in row[0]), None)
    student_rows = [i for i, row in enumerate(class_list.rows)
                    if i != points_row and not all(CANVAS_NO_STUDENT.fullmatch(cell) for cell in row)]
    matched, unmatched = _match_rows(class_list, key_column, keys, student_rows, [0])
    rows = [list(row) for row in class_list.rows]
    if points_row is None:  # Canvas's export has one; a file made by hand may not
        rows.insert(0, ["Points Possible"] + [""] * (len(header) - 1))
        points_row = 0
        matched = {index + 1: student for index, student in matched.items()}
    header = list(header)
    report = ExportReport(output, [a.assignment for a in grades], column, rows_kept=True)
    for assignment in grades:
        index = _canvas_column(header, rows[points_row], section, assignment.assignment)
        if index is None:
            totals = [i for i in range(section + 1, len(header))
                      if CANVAS_TOTALS.search(header[i]) or "read only" in rows[points_row][i]]
            index = totals[0] if totals else len(header)
            header.insert(index, assignment.assignment)
            for row in rows:
                row.insert(index, "")
            rows[points_row][index] = points_text(assignment.max_score)
        else:
            _check_points_possible(report, header[index], rows[points_row][index], assignment)
        students = _by_student(assignment)
        for row_index, student_id in matched.items():
            points = _graded_points(students.get(student_id))
            if points is not None:
                rows[row_index][index] = points
    _fill_report(report, grades, matched, unmatched)
    write_atomically(output, _csv_text([header, *rows], class_list.delimiter))
    return report


def resolved(path: Path) -> Path:
    """``path`` made absolute, with links followed (to compare two paths)."""
    return Path(path).expanduser().resolve()


def _canvas_column(header: list[str], points: list[str], section: int, assignment: str) -> int | None:
    """The index of the column of Canvas's assignment named ``assignment``, or None."""
    found = []
    for index in range(section + 1, len(header)):
        named = CANVAS_COLUMN_ID.fullmatch(header[index])
        title = named["title"] if named else header[index]
        if title.casefold() == assignment.casefold() and "read only" not in points[index]:
            found.append(index)
    if len(found) > 1:
        raise GradingError(f"the class list has {len(found)} columns of an assignment {assignment!r} "
                           f"({', '.join(header[i] for i in found)}): rename all but one in Canvas")
    return found[0] if found else None


def _check_points_possible(report: ExportReport, column: str, points: str, grades: AssignmentGrades) -> None:
    try:
        canvas = float(points.replace(",", "."))
    except ValueError:
        return
    if abs(canvas - grades.max_score) > 1e-9:
        report.notes.append(f"Canvas's {column} is worth {points_text(canvas)} points and nbgrader's "
                            f"{grades.assignment} {points_text(grades.max_score)}: the points are "
                            "nbgrader's, so set the assignment's points in Canvas to match")


def moodle_export(course: CourseFolder, class_list_path: Path, output: Path, *, match: str = "email",
                  assignments: list[str] | None = None) -> ExportReport:
    """Write the CSV of Moodle's grade import: the identifying column, then one column per assignment.

    The rows are the students of the class list (a CSV that Moodle exports: the participants or
    the grades) who are in the gradebook, in the class list's order; ``match`` chooses the
    identifying column (``MOODLE_MATCHES``). Rows that match no student are left out (Moodle
    stops an import at a row whose user it does not find).
    """
    column, holds = MOODLE_MATCHES[match]
    class_list = read_class_list(class_list_path)
    try:
        key_column = class_list.column(column, names=MOODLE_COLUMN_NAMES[column])
    except ColumnMissing:
        others = ", ".join(other for other in MOODLE_MATCHES if other != match)
        raise _missing_column(class_list, column, f"download the class list from {MOODLE_EXPORT}, "
                              f"or choose another --match ({others})") from None
    if resolved(output) == resolved(class_list.path):
        raise GradingError(f"the output {output} is the class list itself: write to another file (--output)")
    names = [i for i, name in enumerate(class_list.header)
             if _normal(name) in {"firstname", "lastname", "fullname"}]

    with course.lock():
        grades = class_grades(course, assignments)
    keys = _student_keys(grades, holds)
    matched, unmatched = _match_rows(class_list, key_column, keys, list(range(len(class_list.rows))), names)
    by_student = [_by_student(assignment) for assignment in grades]
    table = [[column, *(assignment.assignment for assignment in grades)]]
    for row_index, student_id in matched.items():
        cells = [_graded_points(students.get(student_id)) or "" for students in by_student]
        table.append([class_list.rows[row_index][key_column].strip(), *cells])
    report = ExportReport(output, [a.assignment for a in grades], column)
    _fill_report(report, grades, matched, unmatched)
    write_atomically(output, _csv_text(table))
    return report


def _error_text(cell: nbformat.NotebookNode) -> str:
    """The errors a cell raised (and what it wrote to stderr), without the terminal's colour codes."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            parts.append("\n".join(output.get("traceback", [])) or f"{output.ename}: {output.evalue}")
        elif output.output_type == "stream" and output.name == "stderr":
            parts.append(output.text)
    text = ANSI.sub("", "\n".join(parts)).strip()
    if len(text) > MAX_OUTPUT:
        text = f"… ({len(text) - MAX_OUTPUT} characters left out)\n" + text[-MAX_OUTPUT:]
    return text


def _grade_cells(course: CourseFolder, grades: AssignmentGrades, student: str,
                 notebooks: list[str]) -> dict[str, nbformat.NotebookNode]:
    """(Qualified) grade id → the grade cell of the student's autograded notebooks."""
    folder = course.folder("autograded", student, grades.assignment)
    cells = {}
    for notebook in notebooks:
        path = folder / f"{notebook}.ipynb"
        if not path.is_file():
            raise GradingError(f"there is no autograded notebook {path}: grade the hand-in again "
                               f"(autograde {grades.assignment} --student {student} --force)")
        for cell in nbformat.read(path, as_version=4).cells:
            metadata = cell.metadata.get("nbgrader", {})
            if metadata.get("grade") and metadata.get("grade_id"):
                name = metadata["grade_id"]
                cells[f"{notebook}/{name}" if len(notebooks) > 1 else name] = cell
    return cells


def gradescope_results(course: CourseFolder, grades: AssignmentGrades, student: StudentGrades,
                       notebooks: list[str], cell_order: list[str]) -> dict:
    """The results of one graded hand-in in Gradescope's ``results.json`` format.

    One test per grade cell, in notebook order: its points (from the gradebook), its maximum,
    ``status``, the error of a failed test as ``output``, and the visibility ``visible``, or
    ``after_published`` for a cell with hidden tests. The top-level ``score`` is nbgrader's
    score after the late penalty.
    """
    hidden = ClearHiddenTests(config=course.config).begin_test_delimeter
    cells = _grade_cells(course, grades, student.student_id, notebooks)
    position = {name: index for index, name in enumerate(cell_order)}
    tests = []
    for name in sorted(student.cells, key=lambda name: (position.get(name, len(position)), name)):
        cell = cells.get(name)
        if cell is None:
            raise GradingError(f"the autograded notebook has no grade cell {name}: grade it again "
                               f"(autograde {grades.assignment} --student {student.student_id} --force)")
        score, max_score = student.cells[name], float(cell.metadata["nbgrader"]["points"])
        test = {
            "name": name,
            "score": score,
            "max_score": max_score,
            "status": "passed" if score >= max_score else "failed",
            "visibility": HIDDEN if hidden in cell.source else VISIBLE,
        }
        if score < max_score:
            test["output"] = _error_text(cell) or "no points (no error message was recorded)"
        tests.append(test)
    results: dict = {"score": student.score, "tests": tests}
    if student.late_penalty:
        results["output"] = (f"Handed in late: {points_text(student.late_penalty)} of the "
                             f"{points_text(student.raw_score)} points taken off.")
    return results


def gradescope_export(course: CourseFolder, assignment: str,
                      students: list[str] | None = None) -> GradescopeReport:
    """Write ``reports/<assignment>/gradescope/<student>/results.json`` for every graded hand-in.

    ``students`` limits the export to these students. A hand-in whose autograded notebook is
    missing or out of date gets no file; the report says why.
    """
    order = release_cell_order(course, assignment)
    with course.lock():
        grades = gradebook.assignment_grades(course.db_url, course.course_id, assignment, order)
        notebooks = gradebook.notebooks(course.db_url, course.course_id)[assignment]
    known = {student.student_id for student in grades.students}
    unknown = sorted(set(students or []) - known)
    if unknown:
        raise GradingError(f"the gradebook has no student {', '.join(unknown)}")
    report = GradescopeReport(assignment, reports_folder(course) / assignment / "gradescope")
    for student in grades.students:
        if students and student.student_id not in students:
            continue
        if student.status == "no hand-in":
            report.no_hand_in.append(student.student_id)
            continue
        if student.status == "not graded":
            report.not_graded.append(student.student_id)
            continue
        try:
            results = gradescope_results(course, grades, student, notebooks, order)
        except GradingError as error:
            report.problems[student.student_id] = str(error)
            continue
        path = report.folder / student.student_id / "results.json"
        write_atomically(path, json.dumps(results, indent=2) + "\n")
        report.written.append(student.student_id)
    return report
