"""A grading worker: nbgrader's sanitising and execution of one hand-in, in a private scratch course.

The expensive part of autograding is running the student's notebook in a kernel. A worker
does it with nbgrader's ``Autograde`` converter in a scratch copy of the course: the
hand-in, the assignment's source files and a private SQLite gradebook holding the
assignments' definitions only. Its autograde step is cut down to ``Execute``, so the
notebook it leaves is exactly what ``nbgrader autograde`` would have had after executing;
the remaining steps, which write the scores, run in the recording process (``record``).
Workers never open the real gradebook.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from nbgrader.converters import Autograde, NbGraderException
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from traitlets.config import Config

from course_lib.grading.course import CourseFolder
from course_lib.grading.logs import captured


@dataclass(frozen=True)
class Job:
    """One hand-in to execute: everything a worker process needs, picklable."""

    course: CourseFolder
    assignment: str
    student: str
    template_db: Path  # the gradebook with the assignments' definitions, copied for this job
    scratch: Path  # a folder of this job's own, which the worker creates


@dataclass(frozen=True)
class Executed:
    """What a worker hands back: the folder of executed notebooks, or why there is none."""

    student: str
    folder: Path | None
    log: str
    error: str | None = None


def silence_output() -> None:
    """Send the worker's and its kernels' standard output and error to ``os.devnull``.

    Each hand-in's log is captured and handed back instead (``Executed.log``); this keeps
    the kernels' start-up chatter from breaking the progress bar.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def scratch_config(job: Job) -> Config:
    """The course's configuration, pointed at the scratch course and cut down to sanitise and execute."""
    overrides = Config()
    overrides.CourseDirectory.root = str(job.scratch)
    overrides.CourseDirectory.db_url = f"sqlite:///{job.scratch / 'gradebook.db'}"
    overrides.CourseDirectory.assignment_id = job.assignment
    overrides.CourseDirectory.student_id = job.student
    overrides.CourseDirectory.notebook_id = "*"
    overrides.Autograde.force = True
    overrides.Autograde.create_student = True  # the scratch gradebook has no class list
    overrides.Autograde.autograde_preprocessors = [Execute]
    config = job.course.configured(overrides)
    # The instructor's hooks run once per hand-in, in the recording process.
    for section in ("BaseConverter", "Autograde"):
        for hook in ("pre_convert_hook", "post_convert_hook"):
            config[section].pop(hook, None)
    return config


def prepare_scratch(job: Job, config: Config) -> None:
    """Copy the hand-in, the assignment's source files and the template gradebook into the scratch course."""
    scratch = CourseDirectory(config=config)
    course = job.course
    job.scratch.mkdir(parents=True)
    shutil.copy(job.template_db, job.scratch / "gradebook.db")
    shutil.copytree(
        course.folder("submitted", job.student, job.assignment),
        scratch.format_path(scratch.submitted_directory, job.student, job.assignment),
    )
    source = course.assignment_folder("source", job.assignment)
    if source.is_dir():
        shutil.copytree(
            source,
            scratch.format_path(scratch.source_directory, ".", job.assignment),
            ignore=shutil.ignore_patterns("*.ipynb"),  # nbgrader restores the cells from the gradebook
        )


def execute(job: Job) -> Executed:
    """Sanitise and execute one hand-in in its scratch course (run in a worker process)."""
    with captured("course_lib.grading.execute") as (log, stream):
        config = scratch_config(job)
        prepare_scratch(job, config)
        coursedir = CourseDirectory(config=config, log=log)
        try:
            Autograde(coursedir=coursedir, config=config, log=log).start()
        except NbGraderException:
            return Executed(job.student, None, stream.getvalue(), "nbgrader could not execute the notebook")
        folder = Path(coursedir.format_path(coursedir.autograded_directory, job.student, job.assignment))
        return Executed(job.student, folder, stream.getvalue())
