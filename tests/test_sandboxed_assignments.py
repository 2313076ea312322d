"""Every assignment's solutions get full marks from the parallel grader, in the sandbox and under the guard.

The sandbox (``course_lib/grading/sandbox.py``: no network, a private file system, memory,
CPU, process and file-size limits) and the tampering guard (``guard.py``) must not cost an
honest student a point: PyTorch's threads, its memory and the course's data all have to fit.
The hand-in is the released notebook with every solution filled in.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from course_lib.grading.worker import NOTES_FILE
from tests.class_fixtures import Student, hand_in
from tests.nbgrader_course import NBGRADER, Course, assignments

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("assignment", assignments())
def test_the_solutions_get_full_marks_in_the_sandbox(tmp_path, assignment):
    course = Course.create(tmp_path / "course", assignment)
    folder = course.root / "submitted" / "honest" / assignment
    folder.mkdir(parents=True)
    nbformat.write(hand_in(course, Student("honest", "correct")), folder / course.notebook)
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "course_lib.grading", "autograde", assignment, "--quiet"],
                            cwd=course.root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    scores = course.scores("honest")
    assert scores and all(score == maximum for score, maximum in scores.values()), scores
    notes = (course.root / "autograded" / "honest" / assignment / NOTES_FILE).read_text(encoding="utf-8")
    assert '"flags": []' in notes and '"notes": []' in notes
