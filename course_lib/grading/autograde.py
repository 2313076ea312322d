"""Autograding a class in parallel, resumably, with one process writing the gradebook.

Concurrent ``nbgrader autograde`` processes on one gradebook contend for it (an SQLite
gradebook is locked by each writer). Here a pool of worker processes does the expensive
part, executing the notebooks, each in a scratch copy of the course with a private
gradebook (``worker``); this process records each result into the real gradebook as soon
as it arrives, one hand-in after the other, with nbgrader's own converter (``record``).
The real gradebook therefore has a single writer, and it receives the same rows, in the
same transactions, as from ``nbgrader autograde``.

A hand-in is graded unless its autograded notebooks exist and are up to date (written
after the submitted notebooks, with the same ``timestamp.txt``): a run that was
interrupted resumes where it stopped, and ``force`` grades again.

A worker process that dies (the machine's out-of-memory killer, say) breaks its pool: the
hand-ins not finished are run again in a new pool, and one that was unfinished in two
broken pools is then run alone, so that the one that kills its worker fails with a reason
and the others are graded.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from course_lib.grading import GradingError, gradebook
from course_lib.grading.course import CourseFolder
from course_lib.grading.record import check_configuration, record
from course_lib.grading.sandbox import check_sandbox
from course_lib.grading.worker import Executed, Job, execute, silence_output

LOG_TAIL_LINES = 25  # lines of nbgrader's log shown for a hand-in that could not be graded


@dataclass
class GradingRun:
    """What an autograde run did: who was graded, skipped (already graded) or failed, and why."""

    assignment: str
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # student → error and the end of the log
    notes: dict[str, list[str]] = field(default_factory=dict)  # student → repairs of the hand-in
    flags: dict[str, list[dict]] = field(default_factory=dict)  # student → tampering findings
    seconds: float = 0.0


def default_workers() -> int:
    """The number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def is_graded(course: CourseFolder, assignment: str, student: str, notebooks: list[str]) -> bool:
    """Whether the hand-in's autograded notebooks exist and are newer than the submitted ones.

    ``notebooks`` are the assignment's notebook names; the submission's ``timestamp.txt``
    must also be the one recorded with the autograded copy.
    """
    submitted = course.folder("submitted", student, assignment)
    autograded = course.folder("autograded", student, assignment)
    if not autograded.is_dir():
        return False
    for name in notebooks:
        handed_in = submitted / f"{name}.ipynb"
        graded = autograded / f"{name}.ipynb"
        if not handed_in.is_file():
            continue
        if not graded.is_file() or graded.stat().st_mtime < handed_in.stat().st_mtime:
            return False
    return _text(submitted / "timestamp.txt") == _text(autograded / "timestamp.txt")


def hand_ins(course: CourseFolder, assignment: str) -> list[str]:
    """The students with a notebook in ``submitted/<student>/<assignment>/``, less ``student_id_exclude``."""
    excluded = set(filter(None, course.coursedir.student_id_exclude.split(",")))
    return [
        student
        for student in course.students_with_folder("submitted", assignment)
        if student not in excluded and any(course.folder("submitted", student, assignment).glob("*.ipynb"))
    ]


def _failure(error: str, log: str) -> str:
    tail = "\n".join(log.strip().splitlines()[-LOG_TAIL_LINES:])
    return f"{error}; the end of its log:\n{tail}" if tail else error


def _execute_in_pool(jobs: list[Job], workers: int, handle: Callable[[Job, Executed], None]) -> list[Job]:
    """Execute ``jobs`` in a new pool of ``workers`` processes, handing each result to ``handle``.

    Returns the jobs left unfinished because a worker process died (the pool is then broken).
    """
    finished: set[str] = set()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=silence_output,
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(execute, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                executed = future.result()
            except BrokenProcessPool:
                break
            except Exception as error:  # the worker raised: a bug, or a hand-in it could not handle
                executed = Executed(job.student, None, "", f"the grading worker failed: {error!r}")
            handle(job, executed)
            finished.add(job.student)
        for future, job in futures.items():  # finished before the pool broke, not yet handed over
            if job.student not in finished and future.done() and future.exception() is None:
                handle(job, future.result())
                finished.add(job.student)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [job for job in jobs if job.student not in finished]


def _grade(course: CourseFolder, assignment: str, students: list[str], workers: int, quiet: bool,
           sandboxed: bool, run: GradingRun) -> None:
    """Execute the hand-ins in a pool of ``workers`` processes and record each one here as it arrives."""
    notebooks = tuple(gradebook.notebooks(course.db_url, course.course_id)[assignment])
    with tempfile.TemporaryDirectory(prefix=f"grading-{assignment}-") as folder:
        scratch = Path(folder)
        template = scratch / "assignments.db"
        gradebook.copy_assignment_definitions(course.db_url, f"sqlite:///{template}")
        jobs = [Job(course, assignment, student, notebooks, template, scratch / "hand-ins" / student,
                    sandboxed) for student in students]
        progress = tqdm(total=len(jobs), desc=f"autograde {assignment}", unit="hand-in", file=sys.stderr,
                        disable=quiet, dynamic_ncols=True)

        def handle(job: Job, executed: Executed) -> None:
            recorded = record(course, assignment, job.student, executed.folder)
            if executed.error:
                run.failed[job.student] = _failure(executed.error, executed.log)
            elif recorded.error:
                run.failed[job.student] = _failure(recorded.error, recorded.log)
            else:
                run.graded.append(job.student)
            if executed.notes:
                run.notes[job.student] = executed.notes
            if executed.flags:
                run.flags[job.student] = executed.flags
            shutil.rmtree(job.scratch, ignore_errors=True)
            progress.update()
            progress.set_postfix(failed=len(run.failed), flagged=len(run.flags), refresh=False)

        broken_pools: Counter[str] = Counter()  # student → pools that broke with the hand-in unfinished
        try:
            unfinished = jobs
            while unfinished:
                for job in [job for job in unfinished if broken_pools[job.student] >= 2]:
                    if _execute_in_pool([job], 1, handle):
                        handle(job, Executed(job.student, None, "", "the grading worker process died while "
                                             "executing this hand-in, alone, after two broken pools"))
                together = [job for job in unfinished if broken_pools[job.student] < 2]
                unfinished = _execute_in_pool(together, workers, handle) if together else []
                for job in unfinished:
                    broken_pools[job.student] += 1
                    shutil.rmtree(job.scratch, ignore_errors=True)  # to run again from a fresh scratch folder
        finally:
            progress.close()


def autograde(course: CourseFolder, assignment: str, *, students: list[str] | None = None,
              workers: int | None = None, force: bool = False, quiet: bool = False,
              sandboxed: bool = True) -> GradingRun:
    """Autograde every hand-in of ``assignment`` not graded yet (all of them with ``force``).

    ``students`` limits the run to these students; ``workers`` is the number of notebooks
    executed at once (default: the number of CPU cores). A progress bar goes to standard
    error unless ``quiet``. The kernels run in the sandbox (``sandbox``) unless ``sandboxed``
    is False, which is only for notebooks the instructor trusts.
    """
    started = time.perf_counter()
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise GradingError(f"the number of workers must be at least 1, not {workers}")
    check_configuration(course)
    if sandboxed:
        check_sandbox()
    notebooks = gradebook.notebooks(course.db_url, course.course_id).get(assignment)
    if notebooks is None:
        raise gradebook.unknown_assignment(assignment)
    selected = hand_ins(course, assignment)
    if students:
        missing = sorted(set(students) - set(selected))
        if missing:
            folder = course.folder("submitted", "<student>", assignment).relative_to(course.root)
            raise GradingError(f"no notebook in {folder} for: {', '.join(missing)} (run collect first?)")
        selected = [student for student in selected if student in students]

    run = GradingRun(assignment)
    with course.lock():
        todo = []
        for student in selected:
            if force or not is_graded(course, assignment, student, notebooks):
                todo.append(student)
            else:
                run.skipped.append(student)
        if todo:
            _grade(course, assignment, todo, workers, quiet, sandboxed, run)
    run.graded.sort()
    run.seconds = time.perf_counter() - started
    return run
