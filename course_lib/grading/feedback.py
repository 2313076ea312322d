"""nbgrader's HTML feedback page for every graded hand-in, kept up to date with the grades."""

from __future__ import annotations

from pathlib import Path

from nbgrader.converters import GenerateFeedback, NbGraderException
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from course_lib.grading import GradingError
from course_lib.grading.course import CourseFolder
from course_lib.grading.logs import captured


def stale_feedback(course: CourseFolder, assignment: str) -> list[str]:
    """The graded students whose feedback pages are missing or older than their autograded notebooks."""
    stale = []
    for student in course.students_with_folder("autograded", assignment):
        feedback = course.folder("feedback", student, assignment)
        for notebook in course.folder("autograded", student, assignment).glob("*.ipynb"):
            page = feedback / f"{notebook.stem}.html"
            if not page.is_file() or page.stat().st_mtime < notebook.stat().st_mtime:
                stale.append(student)
                break
    return stale


def generate_feedback(course: CourseFolder, assignment: str) -> list[Path]:
    """Write ``feedback/<student>/<assignment>/<notebook>.html`` where it is missing or out of date.

    This is ``nbgrader generate_feedback`` (its converter and template), run for each such
    student with ``--force``, so a hand-in graded again gets a new page. Returns every
    feedback page of the assignment.
    """
    for student in stale_feedback(course, assignment):
        overrides = Config()
        overrides.CourseDirectory.assignment_id = assignment
        overrides.CourseDirectory.student_id = student
        overrides.CourseDirectory.notebook_id = "*"
        overrides.GenerateFeedback.force = True
        config = course.configured(overrides)
        with captured("course_lib.grading.feedback") as (log, stream):
            try:
                coursedir = CourseDirectory(config=config, log=log)
                GenerateFeedback(coursedir=coursedir, config=config, log=log).start()
            except NbGraderException:
                raise GradingError(
                    f"nbgrader could not write the feedback of {student} for {assignment}:\n"
                    f"{stream.getvalue()}"
                ) from None
    return sorted(
        page
        for student in course.students_with_folder("feedback", assignment)
        for page in course.folder("feedback", student, assignment).glob("*.html")
    )
