"""Runs the real nbgrader pipeline in a temporary course folder.

The course folder mirrors the repository's: ``nbgrader_config.py`` at its root, the source
assignment in ``solutions/``, the release in ``exercises/``, submissions in
``submitted/<student>/<assignment>/``, and an SQLite gradebook.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

REPO = Path(__file__).resolve().parents[1]
NBGRADER = Path(sys.executable).parent / "nbgrader"


def assignments() -> list[str]:
    """The assignments in ``solutions/``, in name order."""
    return sorted(path.name for path in (REPO / "solutions").iterdir() if path.is_dir())


def notebook_name(assignment: str) -> str:
    """The assignment's notebook file name (one notebook per assignment)."""
    notebooks = sorted((REPO / "solutions" / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise AssertionError(f"solutions/{assignment} must hold exactly one notebook, found {notebooks}")
    return notebooks[0].name


def cells_by_grade_id(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell for cell in notebook.cells if "nbgrader" in cell.metadata
    }


def solution_ids(notebook: nbformat.NotebookNode) -> list[str]:
    """grade_ids of the cells students write code in, in notebook order."""
    return [
        grade_id
        for grade_id, cell in cells_by_grade_id(notebook).items()
        if cell.metadata["nbgrader"].get("solution") and cell.cell_type == "code"
    ]


@dataclass
class Course:
    """A temporary nbgrader course folder holding one assignment."""

    root: Path
    assignment: str

    @classmethod
    def create(cls, root: Path, assignment: str, extra_config: str = "") -> Course:
        """The course with ``assignment`` generated; ``extra_config`` is added to its nbgrader_config.py."""
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "nbgrader_config.py", root)
        with open(root / "nbgrader_config.py", "a", encoding="utf-8") as config:
            config.write(extra_config)
        shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
        course = cls(root, assignment)
        course.nbgrader("generate_assignment", assignment, "--force")
        return course

    def nbgrader(self, *args: str) -> str:
        env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        result = subprocess.run(
            [str(NBGRADER), *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=900
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise AssertionError(f"nbgrader {' '.join(args)} failed ({result.returncode}):\n{output}")
        return output

    @property
    def notebook(self) -> str:
        return notebook_name(self.assignment)

    def source(self) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "solutions" / self.assignment / self.notebook, as_version=4)

    def release(self) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "exercises" / self.assignment / self.notebook, as_version=4)

    def submit(self, student: str, replacements: dict[str, str]) -> None:
        """Hand in the released notebook with the given solution cells (grade_id → code)."""
        notebook = self.release()
        cells = cells_by_grade_id(notebook)
        for grade_id, code in replacements.items():
            cells[grade_id].source = code
        folder = self.root / "submitted" / student / self.assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / self.notebook)

    def autograde(self) -> None:
        self.nbgrader("autograde", self.assignment)

    def scores(self, student: str) -> dict[str, tuple[float, float]]:
        """grade_id → (score, max score) for every graded cell of a student's submission."""
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gradebook:
            name = self.notebook.removesuffix(".ipynb")
            notebook = gradebook.find_submission_notebook(name, self.assignment, student)
            return {grade.name: (grade.score, grade.max_score) for grade in notebook.grades}

    def export(self) -> dict[str, float]:
        """student → total score, from ``nbgrader export``'s CSV."""
        self.nbgrader("export", "--to", "grades.csv")
        with open(self.root / "grades.csv", newline="") as file:
            return {row["student_id"]: float(row["score"]) for row in csv.DictReader(file)}
