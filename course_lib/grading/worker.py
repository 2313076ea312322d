"""A grading worker: nbgrader's sanitising and execution of one hand-in, in a private scratch course.

The expensive part of autograding is running the student's notebook in a kernel. A worker
does it with nbgrader's ``Autograde`` converter in a scratch copy of the course: the
hand-in, the assignment's source files and a private SQLite gradebook holding the
assignments' definitions only. Its autograde step is cut down to ``GradingExecute``
(nbgrader's ``Execute`` in the sandbox, see ``execute``), so the notebook it leaves is what
``nbgrader autograde`` would have had after executing; the remaining steps, which write the
scores, run in the recording process (``record``). Workers never open the real gradebook.

Before executing, the worker repairs what would stop nbgrader (``repair_hand_in``): an
unreadable notebook (not UTF-8, truncated, not JSON) and a missing one are graded as the
released notebook, untouched, which scores 0; a single notebook under another name is
graded as the one expected. Each repair is a note for the instructor, in ``NOTES_FILE``
beside the autograded notebooks together with the tampering findings.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde, NbGraderException
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from course_lib.grading import GradingError
from course_lib.grading.course import CourseFolder
from course_lib.grading.execute import FLAGS_SUFFIX, GradingExecute
from course_lib.grading.files import write_atomically
from course_lib.grading.logs import captured

NOTES_FILE = "grading-notes.json"  # beside the autograded notebooks: repairs and tampering findings
UNTOUCHED = "graded as the released notebook, untouched: 0 points"


@dataclass(frozen=True)
class Job:
    """One hand-in to execute: everything a worker process needs, picklable."""

    course: CourseFolder
    assignment: str
    student: str
    notebooks: tuple[str, ...]  # the assignment's notebook names, without .ipynb
    template_db: Path  # the gradebook with the assignments' definitions, copied for this job
    scratch: Path  # a folder of this job's own, which the worker creates
    sandboxed: bool = True


@dataclass(frozen=True)
class Executed:
    """What a worker hands back: the folder of executed notebooks, or why there is none."""

    student: str
    folder: Path | None
    log: str
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # what the worker repaired, for the instructor
    flags: list[dict] = field(default_factory=list)  # tampering findings: notebook, cell, line, reason


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
    overrides.Autograde.autograde_preprocessors = [GradingExecute]
    overrides.GradingExecute.sandboxed = job.sandboxed
    overrides.OverwriteCells.add_missing_cells = True  # deleted or unreadable cells come back, and fail
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


def unreadable(path: Path) -> str | None:
    """Why ``path`` is not a notebook nbgrader can read, or None if it is one."""
    try:
        nbformat.validate(nbformat.read(path, as_version=nbformat.NO_CONVERT))
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except Exception as error:  # nbformat raises JSON, validation and reader errors of several kinds
        return f"it is not a valid notebook ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    return None


def repair_hand_in(folder: Path, expected: tuple[str, ...], release: Path) -> list[str]:
    """Make the hand-in in ``folder`` gradable by nbgrader; return a note for each change.

    An unreadable notebook is replaced by the released one from ``release`` (the release
    folder of the assignment), and so is a missing one: both score 0. When exactly one
    expected notebook is missing and exactly one other notebook is there, that one is renamed.
    """
    notes = []
    present = {path.stem: path for path in sorted(folder.glob("*.ipynb"))}
    missing = [name for name in expected if name not in present]
    others = [name for name in present if name not in expected]
    if len(missing) == 1 and len(others) == 1:
        present[others[0]].rename(folder / f"{missing[0]}.ipynb")
        notes.append(f"{others[0]}.ipynb was graded as {missing[0]}.ipynb, the assignment's notebook")
        present[missing[0]] = folder / f"{missing[0]}.ipynb"
        missing = []
    for name in expected:
        path = folder / f"{name}.ipynb"
        reason = unreadable(path) if name in present else None
        if name in present and not reason:
            notes += keep_last_copies(path)
        if name in missing:
            found = ", ".join(f"{other}.ipynb" for other in others) or "no notebook"
            notes.append(f"{name}.ipynb is missing from the hand-in (found: {found}): {UNTOUCHED}")
        elif reason:
            notes.append(f"{name}.ipynb is not readable: {reason}; {UNTOUCHED}")
        if name in missing or reason:
            if not (release / f"{name}.ipynb").is_file():
                raise GradingError(f"{release / name}.ipynb is missing, so a missing or unreadable hand-in "
                                   "cannot be graded as the released notebook "
                                   "(run nbgrader generate_assignment)")
            shutil.copy(release / f"{name}.ipynb", path)
    return notes


def keep_last_copies(path: Path) -> list[str]:
    """Of cells that share an nbgrader ``grade_id``, only the last keeps its nbgrader metadata; notes.

    nbgrader does the same (``DeduplicateIds``) but leaves the others with empty metadata,
    on which its ``add_missing_cells`` fails; here the metadata is removed.
    """
    notebook = nbformat.read(path, as_version=4)
    copies = Counter(cell.metadata["nbgrader"].get("grade_id") for cell in notebook.cells
                     if cell.metadata.get("nbgrader", {}).get("grade_id"))
    duplicated = {grade_id: count for grade_id, count in copies.items() if count > 1}
    if not duplicated:
        return []
    seen: Counter[str] = Counter()
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in duplicated:
            seen[grade_id] += 1
            if seen[grade_id] < duplicated[grade_id]:
                del cell.metadata["nbgrader"]
    nbformat.write(notebook, path)
    return [f"{path.name}: the cell {grade_id} is there {count} times; the last copy is graded"
            for grade_id, count in sorted(duplicated.items())]


def collect_flags(folder: Path) -> list[dict]:
    """The tampering findings ``GradingExecute`` wrote beside each notebook (the files are removed)."""
    flags = []
    for path in sorted(folder.glob(f"*{FLAGS_SUFFIX}")):
        notebook = path.name[: -len(FLAGS_SUFFIX)]
        findings = json.loads(path.read_text(encoding="utf-8"))
        flags += [{"notebook": notebook, **finding} for finding in findings]
        path.unlink()
    return flags


def execute(job: Job) -> Executed:
    """Sanitise and execute one hand-in in its scratch course (run in a worker process)."""
    with captured("course_lib.grading.execute") as (log, stream):
        config = scratch_config(job)
        prepare_scratch(job, config)
        coursedir = CourseDirectory(config=config, log=log)
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, job.student, job.assignment))
        release = job.course.assignment_folder("release", job.assignment)
        notes = repair_hand_in(submitted, job.notebooks, release)
        try:
            Autograde(coursedir=coursedir, config=config, log=log).start()
        except NbGraderException:
            error = "nbgrader could not execute the notebook"
            return Executed(job.student, None, stream.getvalue(), error, notes)
        folder = Path(coursedir.format_path(coursedir.autograded_directory, job.student, job.assignment))
        flags = collect_flags(folder)
        write_atomically(folder / NOTES_FILE, json.dumps({"notes": notes, "flags": flags}, indent=1))
        return Executed(job.student, folder, stream.getvalue(), notes=notes, flags=flags)
