"""The course folder as nbgrader sees it: its configuration, its folders and its gradebook's URL."""

from __future__ import annotations

import copy
import fcntl
import glob
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nbgrader.apps.baseapp import NbGrader
from nbgrader.coursedir import CourseDirectory
from sqlalchemy.engine import make_url
from traitlets.config import Config

from course_lib.grading import GradingError


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run the body with ``path`` as the current directory."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def resolve_db_url(db_url: str, root: Path) -> str:
    """The gradebook URL with a relative SQLite path made absolute (nbgrader reads it from ``root``).

    Other databases (PostgreSQL, say) are returned unchanged.
    """
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(url.database)
        if not database.is_absolute():
            return url.set(database=str(root / database)).render_as_string(hide_password=False)
    return db_url


@dataclass(frozen=True)
class CourseFolder:
    """An nbgrader course folder and the configuration ``nbgrader`` reads when run in it.

    ``config`` is nbgrader's merged configuration (the user's and the course's
    ``nbgrader_config.py``) with the course root and an absolute gradebook URL filled in, so
    the converters built from it behave as the ``nbgrader`` commands run in ``root``.
    """

    root: Path
    config: Config

    @classmethod
    def load(cls, root: Path | str = ".") -> CourseFolder:
        """Read the configuration of the course folder ``root`` as ``nbgrader`` would there."""
        root = Path(root).resolve()
        if not (root / "nbgrader_config.py").is_file():
            raise GradingError(
                f"{root} is not an nbgrader course folder: it has no nbgrader_config.py "
                "(run the command in the repository's root, or pass --course FOLDER)"
            )
        app = NbGrader()
        with working_directory(root):
            app.initialize([])
        config = copy.deepcopy(app.config)
        config.CourseDirectory.root = str(root)
        config.CourseDirectory.db_url = resolve_db_url(CourseDirectory(config=config).db_url, root)
        return cls(root, config)

    def configured(self, overrides: Config) -> Config:
        """A copy of the course's configuration with ``overrides`` merged in."""
        config = copy.deepcopy(self.config)
        config.merge(overrides)
        return config

    @property
    def coursedir(self) -> CourseDirectory:
        return CourseDirectory(config=self.config)

    @property
    def db_url(self) -> str:
        return self.config.CourseDirectory.db_url

    @property
    def course_id(self) -> str:
        return self.coursedir.course_id

    def folder(self, step: str, student: str, assignment: str) -> Path:
        """The folder of one student's assignment at a step: ``submitted``, ``autograded``, ``feedback``."""
        coursedir = self.coursedir
        return Path(coursedir.format_path(getattr(coursedir, f"{step}_directory"), student, assignment))

    def assignment_folder(self, step: str, assignment: str) -> Path:
        """The instructor's folder of an assignment at a step: ``source`` or ``release``."""
        return self.folder(step, ".", assignment)

    def students_with_folder(self, step: str, assignment: str) -> list[str]:
        """The students that have a folder of ``assignment`` at ``step`` (``submitted``, say), sorted."""
        coursedir = self.coursedir
        directory = getattr(coursedir, f"{step}_directory")
        pattern = re.compile(
            coursedir.format_path(directory, "(?P<student>[^/]+)", re.escape(assignment), escape=True)
        )
        students = []
        for path in glob.glob(coursedir.format_path(directory, "*", glob.escape(assignment))):
            match = pattern.fullmatch(path)
            if match and os.path.isdir(path):
                students.append(match["student"])
        return sorted(students)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the course's grading lock: one collect, autograde or report run at a time.

        The lock is an advisory ``flock`` on the course's root folder, released by the system
        if the process dies, so it works with any gradebook database.
        """
        descriptor = os.open(self.root, os.O_RDONLY)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise GradingError(
                    f"another collect, autograde or report run is working in {self.root}: wait until it ends"
                ) from None
            yield
        finally:
            os.close(descriptor)
