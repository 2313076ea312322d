"""A wrong answer gets feedback the student can act on from the visible tests.

For every graded part of every assignment, the part's planted mistake
(``tests/wrong_answers/<assignment>.py``) is run in place of the solution, then the part's
visible test cell. The test must fail with a :class:`course_lib.checks.CheckFailed` whose
message names what it checked and says what it expected and what it got, never a bare
``AssertionError``. The notebook runs once per assignment, in one kernel, as the released
exercise would (hidden tests left out), with ``NBGRADER_EXECUTION`` set so training cells
are short; after each probe the solution is run again so that later parts see it.
"""

from __future__ import annotations

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from tests.nbgrader_course import REPO, assignments, cells_by_grade_id, notebook_name
from tests.wrong_answers import wrong_answers

pytestmark = pytest.mark.slow

# "<what was checked>: expected <…>, got <…>" (the checks' messages may span several lines).
ACTIONABLE = re.compile(r"^\S.*?: .*\bexpected\b.*\bgot\b", re.DOTALL)


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def visible_test_failures(assignment: str) -> dict[str, list[dict]]:
    """part → the error outputs of its visible test cell with the part's wrong answer in place."""
    notebook = nbformat.read(REPO / "solutions" / assignment / notebook_name(assignment), as_version=4)
    by_id = cells_by_grade_id(notebook)
    mistakes = wrong_answers(assignment)
    client = NotebookClient(notebook, timeout=600, allow_errors=False, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "solutions" / assignment)}})
    failures: dict[str, list[dict]] = {}
    previous = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or (grade_id(cell) or "").endswith("_test_hidden"):
                    continue
                part = (grade_id(cell) or "").removesuffix("_test_visible")
                if part in mistakes and grade_id(cell).endswith("_test_visible"):
                    client.execute_cell(new_code_cell(mistakes[part]), index)
                    probe = new_code_cell(cell.source)
                    client.allow_errors = True
                    client.execute_cell(probe, index)
                    client.allow_errors = False
                    failures[part] = [output for output in probe.outputs if output.output_type == "error"]
                    client.execute_cell(new_code_cell(by_id[part].source), index)
                client.execute_cell(cell, index)
    finally:
        if previous is None:
            del os.environ["NBGRADER_EXECUTION"]
        else:
            os.environ["NBGRADER_EXECUTION"] = previous
    return failures


@pytest.mark.parametrize("assignment", assignments())
def test_every_wrong_answer_fails_its_visible_test_with_what_expected_and_got(assignment):
    failures = visible_test_failures(assignment)
    assert set(failures) == set(wrong_answers(assignment)), "every part needs a visible test cell"
    problems = []
    for part, errors in failures.items():
        if not errors:
            problems.append(f"{part}: the visible tests pass with the planted mistake")
            continue
        error = errors[0]
        if error.ename != "CheckFailed" or not ACTIONABLE.match(error.evalue):
            problems.append(f"{part}: {error.ename}: {error.evalue!r} does not say what, expected and got")
    assert not problems, "\n".join(problems)
