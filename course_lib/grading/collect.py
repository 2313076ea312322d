"""Importing the hand-ins that an LMS exports into ``submitted/<student>/<assignment>/``.

An LMS gives one file per student and notebook, in a folder or a zip file, with the
student's id in the file name (``jdoe_a1_ngrams.ipynb``). As ``nbgrader zip_collect``
does, a regular expression with the named groups ``student_id`` and ``file_id`` (and
optionally ``timestamp``) reads each file name: the ``FileNameCollectorPlugin.named_regexp``
of ``nbgrader_config.py`` if set, else :data:`DEFAULT_PATTERN`. Unlike ``zip_collect``, every
file that is not imported is reported with the reason:

* its name does not match the pattern, or it is not a notebook;
* the notebook is not one of the gradebook's assignments (a misnamed file);
* it is not a readable notebook (a broken download);
* the student is not in the gradebook's class list, when there is one (a typing error in
  the id, or a student not enrolled: add them with ``nbgrader db student add`` and collect
  again, or pass ``add_students``). With no class list, every id is accepted and
  ``autograde`` adds the students, as nbgrader does;
* two files are the same hand-in and no timestamps tell which is newer.

A hand-in identical to the one already in ``submitted/`` is left untouched; a different one
replaces it, and ``autograde`` grades it again.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

import nbformat
from nbgrader.utils import parse_utc

from course_lib.grading import GradingError, gradebook
from course_lib.grading.course import CourseFolder
from course_lib.grading.files import write_atomically

# "jdoe_a1_ngrams.ipynb": the student id up to the first underscore, then the notebook's name.
DEFAULT_PATTERN = r"(?P<student_id>[^_]+)_(?P<file_id>.+\.ipynb)"


@dataclass(frozen=True)
class Unmatched:
    """A file that was not imported, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class HandIn:
    """A notebook file matched to a student and an assignment."""

    file: str
    student: str
    assignment: str
    notebook: str  # the notebook's file name, as released
    content: bytes
    timestamp: datetime | None


@dataclass
class CollectReport:
    """What ``collect`` did: the imported notebooks (by status), the unmatched files, the absent students."""

    new: list[HandIn] = field(default_factory=list)
    updated: list[HandIn] = field(default_factory=list)
    unchanged: list[HandIn] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    added_students: list[str] = field(default_factory=list)
    # assignment → the students of the class list with no notebook of it in submitted/
    absent: dict[str, list[str]] = field(default_factory=dict)
    has_class_list: bool = False


def download_files(download: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the download, content) of every file of a folder or a zip file."""
    if download.is_dir():
        for path in sorted(download.rglob("*")):
            if path.is_file():
                yield path.relative_to(download).as_posix(), path.read_bytes()
    elif zipfile.is_zipfile(download):
        with zipfile.ZipFile(download) as archive:
            for info in sorted(archive.infolist(), key=lambda info: info.filename):
                if not info.is_dir():
                    yield info.filename, archive.read(info)
    else:
        raise GradingError(f"{download} is neither a folder nor a zip file: pass the LMS's download")


def collector_pattern(course: CourseFolder, pattern: str | None) -> re.Pattern:
    """The file-name pattern: ``pattern``, else nbgrader's configured one, else :data:`DEFAULT_PATTERN`."""
    text = pattern or course.config.get("FileNameCollectorPlugin", {}).get("named_regexp") or DEFAULT_PATTERN
    try:
        compiled = re.compile(text)
    except re.error as error:
        raise GradingError(f"the file-name pattern {text!r} is not a regular expression: {error}") from None
    if not {"student_id", "file_id"} <= set(compiled.groupindex):
        raise GradingError(
            f"the file-name pattern {text!r} needs the groups (?P<student_id>…) and (?P<file_id>…)"
        )
    return compiled


def match_file(name: str, content: bytes, pattern: re.Pattern, owners: dict[str, list[str]],
               students: set[str] | None) -> HandIn | Unmatched:
    """Match one downloaded file to a student's notebook of an assignment, or say why it does not.

    ``owners`` maps notebook file names to the assignments having them; ``students`` is the
    class list (None: accept any student id).
    """
    basename = PurePosixPath(name).name
    if not basename.endswith(".ipynb"):
        return Unmatched(name, "not a notebook (.ipynb)")
    found = pattern.match(basename)
    if not found:
        return Unmatched(name, f"its name does not match the pattern {pattern.pattern!r}")
    student = found["student_id"].strip()
    notebook = f"{PurePosixPath(found['file_id']).stem}.ipynb"
    if not student or student in (".", ".."):
        return Unmatched(name, f"{student!r} is not a student id")
    assignments = owners.get(notebook, [])
    if not assignments:
        expected = ", ".join(sorted(owners)) or "none"
        return Unmatched(name, f"{notebook} is not a notebook of the assignments (expected: {expected})")
    if len(assignments) > 1:
        several = ", ".join(assignments)
        return Unmatched(name, f"{notebook} is in several assignments ({several}): pass --assignment")
    if students is not None and student not in students:
        return Unmatched(
            name,
            f"student {student!r} is not in the gradebook's class list (fix the id, or add the student with "
            f"`nbgrader db student add {student}` or --add-students, and collect again)",
        )
    timestamp = None
    if found.groupdict().get("timestamp"):
        try:
            timestamp = parse_utc(found["timestamp"])
        except ValueError:
            return Unmatched(name, f"{found['timestamp']!r} is not a timestamp")
    try:
        nbformat.reads(content.decode("utf-8"), as_version=4)
    except Exception as error:  # any parse failure means the file is not a usable notebook
        first_line = (str(error).splitlines() or [""])[0][:120]
        return Unmatched(name, f"not a readable notebook ({type(error).__name__}: {first_line})")
    return HandIn(name, student, assignments[0], notebook, content, timestamp)


def newest(copies: list[HandIn]) -> tuple[HandIn | None, list[Unmatched]]:
    """The hand-in to keep among files of the same student and notebook, and the rejected ones."""
    if len(copies) == 1:
        return copies[0], []
    if any(copy.timestamp is None for copy in copies):
        files = ", ".join(copy.file for copy in copies)
        reason = f"one of {len(copies)} files of the same hand-in ({files}); no timestamps tell the newest"
        return None, [Unmatched(copy.file, reason) for copy in copies]
    kept = max(copies, key=lambda copy: copy.timestamp)
    older = [copy for copy in copies if copy is not kept]
    return kept, [Unmatched(copy.file, f"an older copy of {kept.file}") for copy in older]


def _save(course: CourseFolder, hand_ins: list[HandIn], report: CollectReport) -> None:
    """Write each student's hand-ins of an assignment into ``submitted/`` and sort them by status."""
    for hand_in in hand_ins:
        path = course.folder("submitted", hand_in.student, hand_in.assignment) / hand_in.notebook
        if path.is_file() and path.read_bytes() == hand_in.content:
            report.unchanged.append(hand_in)
            continue
        (report.updated if path.exists() else report.new).append(hand_in)
        write_atomically(path, hand_in.content)
    latest: dict[tuple[str, str], datetime] = {}
    for hand_in in hand_ins:
        if hand_in.timestamp is not None:
            key = (hand_in.student, hand_in.assignment)
            latest[key] = max(latest.get(key, hand_in.timestamp), hand_in.timestamp)
    for (student, assignment), timestamp in latest.items():
        path = course.folder("submitted", student, assignment) / "timestamp.txt"
        text = timestamp.isoformat(" ")
        if not path.is_file() or path.read_text(encoding="utf-8").strip() != text:
            write_atomically(path, text)


def collect(course: CourseFolder, download: Path, *, assignment: str | None = None,
            pattern: str | None = None, add_students: bool = False) -> CollectReport:
    """Import the notebooks of an LMS download (a folder or a zip file) into ``submitted/``.

    ``assignment`` restricts the import to one assignment's notebooks; ``pattern`` overrides
    the file-name pattern; ``add_students`` adds students missing from the class list
    instead of reporting their files.
    """
    if not download.exists():
        raise GradingError(f"{download} does not exist: pass the folder or zip file that the LMS gave you")
    regex = collector_pattern(course, pattern)
    notebooks = gradebook.notebooks(course.db_url, course.course_id)
    if assignment is not None:
        if assignment not in notebooks:
            raise gradebook.unknown_assignment(assignment)
        notebooks = {assignment: notebooks[assignment]}
    if not notebooks:
        raise GradingError("the gradebook has no assignments: run `make exercises` first")
    owners: dict[str, list[str]] = {}
    for name, notebook_names in notebooks.items():
        for notebook in notebook_names:
            owners.setdefault(f"{notebook}.ipynb", []).append(name)

    report = CollectReport()
    class_list = gradebook.class_list(course.db_url, course.course_id)
    report.has_class_list = bool(class_list)
    accepted = class_list if class_list and not add_students else None

    with course.lock():
        matched: dict[tuple[str, str, str], list[HandIn]] = {}
        for name, content in download_files(download):
            result = match_file(name, content, regex, owners, accepted)
            if isinstance(result, Unmatched):
                report.unmatched.append(result)
            else:
                matched.setdefault((result.student, result.assignment, result.notebook), []).append(result)
        hand_ins = []
        for copies in matched.values():
            kept, rejected = newest(copies)
            report.unmatched.extend(rejected)
            if kept is not None:
                hand_ins.append(kept)
        if class_list and add_students:
            report.added_students = sorted({hand_in.student for hand_in in hand_ins} - class_list)
            gradebook.add_students(course.db_url, course.course_id, set(report.added_students))
        _save(course, hand_ins, report)

    if class_list:
        expected = {hand_in.assignment for hand_in in hand_ins} | ({assignment} if assignment else set())
        for name in sorted(expected):
            report.absent[name] = sorted(
                student for student in class_list
                if not any(course.folder("submitted", student, name).glob("*.ipynb"))
            )
    return report
