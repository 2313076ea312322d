"""Each assignment is graded by the real nbgrader pipeline, as an instructor would run it.

For every assignment in ``solutions/``:

* the committed ``exercises/`` notebook is exactly what ``nbgrader generate_assignment`` makes;
* ``nbgrader validate`` passes on the solution;
* autograding gives the solution full marks, the untouched exercise zero (without crashing),
  and a submission with exactly one part wrong loses exactly that part's points.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.nbgrader_course import REPO, Course, assignments, cells_by_grade_id, notebook_name, solution_ids
from tests.wrong_answers import wrong_answers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=assignments())
def course(request, tmp_path_factory) -> Course:
    return Course.create(tmp_path_factory.mktemp(request.param), request.param)


def _comparable(notebook: nbformat.NotebookNode) -> list[tuple]:
    return [
        (cell.cell_type, cell.source, json.dumps(cell.metadata, sort_keys=True)) for cell in notebook.cells
    ]


def test_released_exercise_is_in_sync_with_the_solution(course):
    committed = nbformat.read(REPO / "exercises" / course.assignment / course.notebook, as_version=4)
    assert _comparable(committed) == _comparable(course.release()), (
        f"exercises/{course.assignment} is out of date: run `make exercises` and commit the result"
    )


def test_release_hides_solutions_and_hidden_tests(course):
    text = (course.root / "exercises" / course.assignment / course.notebook).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text


def test_solution_validates(course):
    output = course.nbgrader("validate", str(course.root / "solutions" / course.assignment / course.notebook))
    assert "Success! Your notebook passes all the tests." in output


def test_every_part_has_a_planted_mistake(course):
    assert set(wrong_answers(course.assignment)) == set(solution_ids(course.source()))


def test_autograde_scores(course):
    source = course.source()
    solutions = {grade_id: cells_by_grade_id(source)[grade_id].source for grade_id in solution_ids(source)}
    mistakes = wrong_answers(course.assignment)
    course.submit("solution", solutions)
    course.submit("untouched", {})
    for part, wrong_code in mistakes.items():
        course.submit(f"wrong-{part}", {**solutions, part: wrong_code})
    course.autograde()

    full = course.scores("solution")
    maximum = sum(max_score for _, max_score in full.values())
    assert maximum > 0
    assert all(score == max_score for score, max_score in full.values()), full
    assert all(score == 0 for score, _ in course.scores("untouched").values())

    for part in mistakes:
        scores = course.scores(f"wrong-{part}")
        lost = {grade_id for grade_id, (score, max_score) in scores.items() if score < max_score}
        part_tests = {grade_id for grade_id in scores if grade_id.startswith(f"{part}_test")}
        assert part_tests, f"part {part!r} has no test cells named {part}_test..."
        assert lost == part_tests, f"a mistake in {part!r} lost points in {sorted(lost)}"
        assert all(scores[grade_id][0] == 0 for grade_id in part_tests)

    totals = course.export()
    assert totals["solution"] == maximum
    assert totals["untouched"] == 0
    for part in mistakes:
        part_points = sum(max_score for g, (_, max_score) in full.items() if g.startswith(f"{part}_test"))
        assert totals[f"wrong-{part}"] == pytest.approx(maximum - part_points)


def test_notebook_names_match_assignment_folders():
    for assignment in assignments():
        assert notebook_name(assignment) == f"{assignment}.ipynb"
