"""Recording a worker's executed notebook into the real gradebook, with nbgrader's own converter.

``nbgrader autograde`` runs two passes over each submitted notebook: it *sanitises* it
(clears the outputs, restores the locked cells and hidden tests from the gradebook) and
then runs ``Autograde.autograde_preprocessors``: ``Execute``, then the steps that clean
up the outputs and write the scores (``SaveAutoGrades``) and late penalties
(``AssignLatePenalties``) into the gradebook. A worker (``worker``) has already done the
sanitising and ``Execute``; :class:`RecordAutograde` is nbgrader's ``Autograde`` with the
sanitising pass replaced by reading the worker's notebook and with ``Execute`` disabled.
Everything else (creating the student and the submission with its timestamp, zero points
for a missing notebook, the hooks, the error handling, the autograded folder) is
nbgrader's code, run on the real gradebook, one hand-in after the other, in one process.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from nbconvert.exporters.exporter import ResourcesDict
from nbgrader import utils
from nbgrader.converters import Autograde, NbGraderException
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from sqlalchemy.exc import SAWarning
from traitlets import Unicode
from traitlets.config import Config

from course_lib.grading import GradingError
from course_lib.grading.course import CourseFolder
from course_lib.grading.files import write_atomically
from course_lib.grading.logs import captured


class RecordAutograde(Autograde):
    """nbgrader's ``Autograde`` for a notebook that was sanitised and executed elsewhere."""

    executed_directory = Unicode(
        help="The folder holding the worker's executed notebooks of this hand-in (empty if it failed)."
    ).tag(config=True)

    def init_notebooks(self) -> None:
        super().init_notebooks()
        # The worker may have graded a notebook under its expected name that the hand-in lacks or
        # misnamed (worker.repair_hand_in): the notebooks to record are the ones it executed.
        executed = sorted(Path(self.executed_directory).glob("*.ipynb")) if self.executed_directory else []
        if executed:
            for folder in self.assignments:
                self.assignments[folder] = [str(Path(folder) / path.name) for path in executed]

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        super().init_assignment(assignment_id, student_id)
        # Files the notebook wrote while it ran, as nbgrader leaves them in the autograded folder.
        if self.executed_directory and Path(self.executed_directory).is_dir():
            shutil.copytree(
                self.executed_directory,
                self._format_dest(assignment_id, student_id),
                symlinks=True,  # as the notebook left them: links stay links
                ignore=shutil.ignore_patterns("*.ipynb"),
                dirs_exist_ok=True,
            )

    def convert_single_notebook(self, notebook_filename: str) -> None:
        resources = self.init_single_notebook_resources(notebook_filename)
        executed = Path(self.executed_directory or ".") / Path(notebook_filename).name
        if not self.executed_directory or not executed.is_file():
            raise NbGraderException(f"no executed copy of {notebook_filename}: its execution failed")
        self.log.info("Recording the grades of %s", executed)
        self._sanitizing = False
        self._init_preprocessors()
        try:
            with utils.setenv(NBGRADER_EXECUTION="autograde"):
                output, resources = self.exporter.from_filename(str(executed), resources=resources)
            self.write_single_notebook(output, resources)
        finally:
            self._sanitizing = True

    def write_single_notebook(self, output: str, resources: ResourcesDict) -> None:
        # Written last, after the scores, and atomically: an autograded notebook on disk means
        # that its hand-in is fully recorded (which is how a later run knows it is graded).
        ids = resources["nbgrader"]
        folder = Path(self._format_dest(ids["assignment"], ids["student"]))
        write_atomically(folder / f"{resources['unique_key']}{self.exporter.file_extension}", output)


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording one hand-in: its log, and the error if nbgrader failed."""

    student: str
    log: str
    error: str | None = None


def check_configuration(course: CourseFolder) -> None:
    """Fail unless the course's autograde steps start with ``Execute``, as nbgrader's do.

    The workers run the steps up to ``Execute``; recording runs the whole list with
    ``Execute`` disabled.
    """
    preprocessors = course.config.get("Autograde", {}).get("autograde_preprocessors")
    if preprocessors and preprocessors[0] not in (Execute, "nbgrader.preprocessors.Execute"):
        raise GradingError(
            "Autograde.autograde_preprocessors in nbgrader_config.py must start with Execute for the "
            "parallel grader (it executes in the workers, then records with the rest of the list)"
        )


def recording_config(course: CourseFolder, assignment: str, student: str, executed: Path | None) -> Config:
    """The course's configuration for recording one hand-in, whatever ``autograded/`` holds already."""
    overrides = Config()
    overrides.CourseDirectory.assignment_id = assignment
    overrides.CourseDirectory.student_id = student
    overrides.CourseDirectory.notebook_id = "*"
    overrides.RecordAutograde.force = True  # the caller has decided that this hand-in is (re)graded
    overrides.RecordAutograde.executed_directory = str(executed) if executed else ""
    overrides.Execute.enabled = False
    return course.configured(overrides)


def record(course: CourseFolder, assignment: str, student: str, executed: Path | None) -> Recorded:
    """Write the grades of one executed hand-in into the course's gradebook and ``autograded/``.

    ``executed`` is the worker's folder of executed notebooks, or None when the worker failed:
    then nbgrader records the submission and reports the error, as ``nbgrader autograde``
    does when a notebook cannot be executed.
    """
    with captured("course_lib.grading.record") as (log, stream):
        config = recording_config(course, assignment, student, executed)
        converter = RecordAutograde(coursedir=CourseDirectory(config=config, log=log), config=config, log=log)
        with warnings.catch_warnings(record=True) as caught:
            # nbgrader's database layer warns when a hand-in fails half-way: into the log with them.
            warnings.simplefilter("always", SAWarning)
            try:
                converter.start()
                error = None
            except NbGraderException:
                error = "nbgrader could not record the grades"
        for warning in caught:
            log.warning("%s", warning.message)
        return Recorded(student, stream.getvalue(), error)
