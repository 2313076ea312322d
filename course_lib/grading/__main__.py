"""Command line: ``python -m course_lib.grading collect|autograde|report|export …`` in the course's root.

    python -m course_lib.grading collect DOWNLOAD [--assignment A] [--pattern REGEX] [--add-students]
    python -m course_lib.grading autograde A [--workers N] [--student ID …] [--force] [--quiet]
                                             [--unsandboxed]
    python -m course_lib.grading report A [--no-feedback]
    python -m course_lib.grading export canvas [A …] --class-list CSV [--match sis_login|sis_id|email]
                                               [--output CSV]
    python -m course_lib.grading export moodle [A …] --class-list CSV [--match email|idnumber] [--output CSV]
    python -m course_lib.grading export gradescope A [--student ID …]

Exit status: 0 on success, 1 when a hand-in could not be graded (or exported), 2 for a usage error or a
problem to fix first (the message says which), 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.grading import GradingError
from course_lib.grading.autograde import autograde, default_workers
from course_lib.grading.collect import DEFAULT_PATTERN, CollectReport, collect
from course_lib.grading.course import CourseFolder
from course_lib.grading.exports import (
    CANVAS_MATCHES,
    MOODLE_MATCHES,
    ExportReport,
    canvas_export,
    gradescope_export,
    moodle_export,
)
from course_lib.grading.reports import make_reports, reports_folder, summary_table


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def print_collect_report(report: CollectReport) -> None:
    imported = report.new + report.updated + report.unchanged
    assignments = ", ".join(sorted({hand_in.assignment for hand_in in imported})) or "no assignment"
    print(f"collected {len(imported)} notebooks of {assignments} into submitted/: {len(report.new)} new, "
          f"{len(report.updated)} updated (to be graded again), {len(report.unchanged)} unchanged")
    if report.added_students:
        print(f"added to the class list: {', '.join(report.added_students)}")
    if report.unmatched:
        print(f"{len(report.unmatched)} files were NOT collected:")
        for unmatched in report.unmatched:
            print(f"  {unmatched.file}: {unmatched.reason}")
    if not report.has_class_list:
        print("the gradebook has no class list: every student id was accepted "
              "(import one with `nbgrader db student import students.csv` to check the ids)")
    for assignment, students in report.absent.items():
        if students:
            print(f"no notebook of {assignment} from {len(students)} students of the class list: "
                  f"{', '.join(students)}")


def run_collect(args: argparse.Namespace, course: CourseFolder) -> int:
    report = collect(course, Path(args.download), assignment=args.assignment, pattern=args.pattern,
                     add_students=args.add_students)
    print_collect_report(report)
    return 0


def run_autograde(args: argparse.Namespace, course: CourseFolder) -> int:
    run = autograde(course, args.assignment, students=args.student, workers=args.workers, force=args.force,
                    quiet=args.quiet, sandboxed=not args.unsandboxed)
    print(f"autograde {run.assignment}: {len(run.graded)} graded, {len(run.skipped)} already graded "
          f"(skipped; --force grades again), {len(run.failed)} failed, in {run.seconds:.1f} s")
    for student, notes in sorted(run.notes.items()):
        print(f"{student}: " + "; ".join(notes))
    if run.flags:
        print(f"\npossible tampering in {len(run.flags)} hand-ins, to review "
              "(the guard already failed any test it caught):")
        for student, flags in sorted(run.flags.items()):
            for flag in flags:
                where = f"{flag['notebook']}, {flag['cell']} line {flag['line']}"
                print(f"  {student}, {where}: {flag['reason']}")
    for student, message in sorted(run.failed.items()):
        print(f"\n{student}: {message}", file=sys.stderr)
    if run.failed:
        print(f"\nhand-ins not graded: {len(run.failed)} (see above); fix them and run autograde again",
              file=sys.stderr)
    return 1 if run.failed else 0


def run_report(args: argparse.Namespace, course: CourseFolder) -> int:
    reports, pages = make_reports(course, args.assignment, feedback=not args.no_feedback)
    if not args.no_feedback:
        folder = course.folder("feedback", "<student>", args.assignment)
        print(f"feedback: {len(pages)} pages in {_relative(folder, course.root)}/")
    for path in (reports.grades_csv, reports.parts_csv, reports.histogram):
        print(f"wrote {_relative(path, course.root)}")
    print(summary_table(reports.summaries))
    return 0


def print_export_report(report: ExportReport, root: Path) -> None:
    print(f"wrote {_relative(report.output, root)}: {report.students} students of the class list "
          f"(matched by {report.match_column}), {len(report.assignments)} assignments")
    for assignment in report.assignments:
        line = f"  {assignment}: {report.graded[assignment]} graded"
        if report.no_hand_in[assignment]:
            line += f", {len(report.no_hand_in[assignment])} without a hand-in (empty cell)"
        print(line)
        if report.not_graded[assignment]:
            print(f"  {assignment}: NOT graded, so left empty (grading failed or manual grading is left; "
                  f"grade them and export again): {', '.join(report.not_graded[assignment])}")
    if report.not_in_class_list:
        print(f"students of the gradebook NOT in the class list, so their grades are not in the file "
              f"(check their {report.match_column}): {', '.join(report.not_in_class_list)}")
    if report.not_in_gradebook:
        kept = "kept as they were" if report.rows_kept else "left out of the file"
        print(f"rows of the class list that match no student of the gradebook ({kept}):")
        for row in report.not_in_gradebook:
            print(f"  {row}")
    for note in report.notes:
        print(f"note: {note}")


def _export_output(args: argparse.Namespace, course: CourseFolder, name: str) -> Path:
    return Path(args.output) if args.output else reports_folder(course) / name


def run_export_canvas(args: argparse.Namespace, course: CourseFolder) -> int:
    report = canvas_export(course, Path(args.class_list), _export_output(args, course, "canvas-grades.csv"),
                           match=args.match, assignments=args.assignments)
    print_export_report(report, course.root)
    return 0


def run_export_moodle(args: argparse.Namespace, course: CourseFolder) -> int:
    report = moodle_export(course, Path(args.class_list), _export_output(args, course, "moodle-grades.csv"),
                           match=args.match, assignments=args.assignments)
    print_export_report(report, course.root)
    return 0


def run_export_gradescope(args: argparse.Namespace, course: CourseFolder) -> int:
    report = gradescope_export(course, args.assignment, students=args.student)
    print(f"wrote {len(report.written)} results.json files in "
          f"{_relative(report.folder, course.root)}/<student>/")
    if report.no_hand_in:
        print(f"no hand-in, no file: {', '.join(report.no_hand_in)}")
    if report.not_graded:
        print("NOT graded (grading failed or manual grading is left), no file: "
              + ", ".join(report.not_graded))
    for student, problem in sorted(report.problems.items()):
        print(f"{student}: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m course_lib.grading", description=__doc__.split("\n")[0])
    main.add_argument("--course", default=".",
                      help="the course folder, which holds nbgrader_config.py (default: .)")
    commands = main.add_subparsers(dest="command", required=True)

    command = commands.add_parser("collect", help="import an LMS download into submitted/")
    command.add_argument("download", help="the folder or zip file of notebooks that the LMS gave you")
    command.add_argument("--assignment", help="accept only this assignment's notebooks")
    command.add_argument("--pattern", help=f"regular expression for the file names (default: nbgrader's "
                         f"FileNameCollectorPlugin.named_regexp, else {DEFAULT_PATTERN})")
    command.add_argument("--add-students", action="store_true",
                         help="add students missing from the class list instead of reporting their files")
    command.set_defaults(run=run_collect)

    command = commands.add_parser("autograde", help="grade the hand-ins in parallel, resumably")
    command.add_argument("assignment")
    command.add_argument("--workers", type=int, default=None,
                         help=f"notebooks executed at once (default: the CPU cores, {default_workers()})")
    command.add_argument("--student", action="append", help="grade only this student (repeat for several)")
    command.add_argument("--force", action="store_true", help="grade again hand-ins that are already graded")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    command.add_argument("--unsandboxed", action="store_true",
                         help="run the kernels without the sandbox: only for notebooks you trust")
    command.set_defaults(run=run_autograde)

    command = commands.add_parser("report", help="feedback pages, grades CSV, per-part summary, histograms")
    command.add_argument("assignment")
    command.add_argument("--no-feedback", action="store_true", help="skip nbgrader's feedback pages")
    command.set_defaults(run=run_report)

    export = commands.add_parser("export", help="the grades for Canvas, Moodle or Gradescope")
    formats = export.add_subparsers(dest="format", required=True)
    for name, matches, default, run, source in (
        ("canvas", CANVAS_MATCHES, "sis_login", run_export_canvas, "Canvas's gradebook export (CSV)"),
        ("moodle", MOODLE_MATCHES, "email", run_export_moodle, "Moodle's participants or grades (CSV)"),
    ):
        command = formats.add_parser(name, help=f"a CSV for {name.capitalize()}'s import of grades")
        command.add_argument("assignments", nargs="*", metavar="assignment",
                             help="the assignments, one column each (default: all of the gradebook)")
        command.add_argument("--class-list", required=True, help=f"the class list: {source}")
        columns = "; ".join(f"{key}: {column} = nbgrader's {'student id' if holds == 'id' else 'e-mail'}"
                            for key, (column, holds) in matches.items())
        command.add_argument("--match", choices=list(matches), default=default,
                             help=f"the class list's column of the students (default: {default}; {columns})")
        command.add_argument("--output", help=f"the CSV to write (default: reports/{name}-grades.csv)")
        command.set_defaults(run=run)
    command = formats.add_parser("gradescope", help="a Gradescope results.json per graded hand-in")
    command.add_argument("assignment")
    command.add_argument("--student", action="append", help="only this student (repeat for several)")
    command.set_defaults(run=run_export_gradescope)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args, CourseFolder.load(args.course))
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: what was done is kept; run the command again to go on", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
