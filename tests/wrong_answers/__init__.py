"""Plausible mistakes, one per graded part, planted to check that grading is independent.

``tests/wrong_answers/<assignment>.py`` defines ``WRONG_ANSWERS``: for every solution cell
(by nbgrader grade_id) the code of that cell with a typical bug. A submission with that one
cell wrong must lose exactly that part's points.
"""

import importlib


def wrong_answers(assignment: str) -> dict[str, str]:
    """grade_id → wrong code for every solution cell of ``assignment``."""
    return importlib.import_module(f"tests.wrong_answers.{assignment}").WRONG_ANSWERS
