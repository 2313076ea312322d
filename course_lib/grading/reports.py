"""The class's grades for an assignment: a CSV file, a per-part summary table and histograms.

* ``grades.csv``: one row per student of the gradebook, the columns of ``nbgrader export``,
  the hand-in's status and one column of points per part (``part:<name>``);
* ``parts.csv``: per part, over the graded hand-ins: the mean points, the share of full marks and
  the share of zero points, which show the part the class struggled with;
* ``parts.png``: a histogram of the points of each part and of the total.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import nbformat
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from course_lib.grading import gradebook
from course_lib.grading.course import CourseFolder
from course_lib.grading.feedback import generate_feedback
from course_lib.grading.files import write_atomically
from course_lib.grading.gradebook import AssignmentGrades, Part, StudentGrades

REPORTS_FOLDER = "reports"  # in the course's root: reports/<assignment>/

# nbgrader export's columns, then the hand-in's status; the parts' columns follow.
GRADE_COLUMNS = [
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
    "late_submission_penalty", "score", "max_score", "status",
]
SUMMARY_COLUMNS = ["part", "max_points", "hand_ins", "mean_points", "mean_share", "share_full", "share_zero"]


def graded(grades: AssignmentGrades) -> list[StudentGrades]:
    """The students whose hand-in is graded: those the summary and the histograms count."""
    return [student for student in grades.students if student.status == "graded"]


def part_points(part: Part, student: StudentGrades) -> float:
    """A student's points in one part: the sum over its grade cells."""
    return sum(student.cells.get(cell, 0.0) for cell in part.cells)


def _csv(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def grade_rows(grades: AssignmentGrades) -> list[dict]:
    """One row per student: ``nbgrader export``'s columns and the points of each part."""
    rows = []
    for student in grades.students:
        row = {
            "assignment": grades.assignment,
            "duedate": grades.duedate or "",
            "timestamp": student.timestamp or "",
            "student_id": student.student_id,
            "last_name": student.last_name or "",
            "first_name": student.first_name or "",
            "email": student.email or "",
            "raw_score": student.raw_score,
            "late_submission_penalty": student.late_penalty,
            "score": student.score,
            "max_score": grades.max_score,
            "status": student.status,
        }
        row.update({f"part:{part.name}": part_points(part, student) for part in grades.parts})
        rows.append(row)
    return rows


@dataclass(frozen=True)
class PartSummary:
    """How the class did in one part (or in the whole assignment: part ``total``)."""

    part: str
    max_points: float
    hand_ins: int
    mean_points: float
    share_full: float
    share_zero: float

    @property
    def mean_share(self) -> float:
        return self.mean_points / self.max_points if self.max_points else math.nan


def _summary(name: str, max_points: float, points: list[float]) -> PartSummary:
    n = len(points)
    if n == 0:
        return PartSummary(name, max_points, 0, math.nan, math.nan, math.nan)
    return PartSummary(
        name, max_points, n,
        mean_points=sum(points) / n,
        share_full=sum(p >= max_points for p in points) / n,
        share_zero=sum(p <= 0 for p in points) / n,
    )


def part_summaries(grades: AssignmentGrades) -> list[PartSummary]:
    """Per part, then for the total: the statistics over the graded hand-ins."""
    handed_in = graded(grades)
    summaries = [
        _summary(part.name, part.max_score, [part_points(part, student) for student in handed_in])
        for part in grades.parts
    ]
    summaries.append(_summary("total", grades.max_score, [student.raw_score for student in handed_in]))
    return summaries


def summary_rows(summaries: list[PartSummary]) -> list[dict]:
    return [
        {
            "part": s.part, "max_points": s.max_points, "hand_ins": s.hand_ins,
            "mean_points": round(s.mean_points, 3), "mean_share": round(s.mean_share, 3),
            "share_full": round(s.share_full, 3), "share_zero": round(s.share_zero, 3),
        }
        for s in summaries
    ]


def summary_table(summaries: list[PartSummary]) -> str:
    """The summary as a text table for the terminal."""
    lines = [f"{'part':<24}{'points':>8}{'mean':>8}{'mean %':>8}{'full %':>8}{'zero %':>8}"]
    for s in summaries:
        lines.append(
            f"{s.part:<24}{s.max_points:>8g}{s.mean_points:>8.2f}{100 * s.mean_share:>8.0f}"
            f"{100 * s.share_full:>8.0f}{100 * s.share_zero:>8.0f}"
        )
    return "\n".join(lines)


def _bins(max_points: float, points: list[float]) -> list[float]:
    """One bin per whole point when every score is whole, else ten equal bins over [0, max]."""
    if float(max_points).is_integer() and all(float(p).is_integer() for p in points):
        return [k - 0.5 for k in range(int(max_points) + 2)]
    return [max_points * k / 10 for k in range(11)]


def histogram_figure(grades: AssignmentGrades) -> Figure:
    """One histogram per part and one of the total: number of hand-ins against points."""
    handed_in = graded(grades)
    panels = [(part.name, part.max_score, [part_points(part, s) for s in handed_in]) for part in grades.parts]
    panels.append(("total", grades.max_score, [s.raw_score for s in handed_in]))
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, max_points, points) in zip(axes, panels, strict=False):
        ax.hist(points, bins=_bins(max_points, points), color="tab:blue", edgecolor="white")
        mean = sum(points) / len(points) if points else math.nan
        ax.set_title(f"{name} (mean {mean:.2f} of {max_points:g})", fontsize=9)
        ax.set_xlabel("points")
        ax.set_ylabel("hand-ins")
        ax.set_xlim(-0.5, max_points + 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.suptitle(f"{grades.assignment}: points per part, {len(handed_in)} graded hand-ins")
    return figure


@dataclass(frozen=True)
class Reports:
    grades_csv: Path
    parts_csv: Path
    histogram: Path
    summaries: list[PartSummary]


def write_reports(grades: AssignmentGrades, folder: Path) -> Reports:
    """Write ``grades.csv``, ``parts.csv`` and ``parts.png`` for one assignment into ``folder``."""
    columns = GRADE_COLUMNS + [f"part:{part.name}" for part in grades.parts]
    summaries = part_summaries(grades)
    reports = Reports(folder / "grades.csv", folder / "parts.csv", folder / "parts.png", summaries)
    write_atomically(reports.grades_csv, _csv(grade_rows(grades), columns))
    write_atomically(reports.parts_csv, _csv(summary_rows(summaries), SUMMARY_COLUMNS))
    image = io.BytesIO()
    histogram_figure(grades).savefig(image, format="png", dpi=120)
    write_atomically(reports.histogram, image.getvalue())
    return reports


def release_cell_order(course: CourseFolder, assignment: str) -> list[str]:
    """The grade ids of the released notebooks in notebook order (qualified when there are several)."""
    notebooks = sorted(course.assignment_folder("release", assignment).glob("*.ipynb"))
    order = []
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id:
                order.append(f"{path.stem}/{grade_id}" if len(notebooks) > 1 else grade_id)
    return order


def reports_folder(course: CourseFolder) -> Path:
    """The course's ``reports/`` folder, with the ``.gitignore`` that keeps its student data out of git."""
    folder = course.root / REPORTS_FOLDER
    if not (folder / ".gitignore").exists():
        write_atomically(folder / ".gitignore", "# Grades and other student data: kept out of git.\n*\n")
    return folder


def make_reports(course: CourseFolder, assignment: str, *,
                 feedback: bool = True) -> tuple[Reports, list[Path]]:
    """Feedback pages (unless ``feedback`` is false) and the reports of ``reports/<assignment>/``.

    Returns the reports and the assignment's feedback pages. The ``reports`` folder gets a
    ``.gitignore`` that keeps its student data out of git.
    """
    with course.lock():
        pages = generate_feedback(course, assignment) if feedback else []
        grades = gradebook.assignment_grades(
            course.db_url, course.course_id, assignment, release_cell_order(course, assignment)
        )
        return write_reports(grades, reports_folder(course) / assignment), pages
