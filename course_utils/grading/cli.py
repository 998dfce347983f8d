"""The command line: ``python -m course_utils.instructor {release,grade,merge} ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..cli import positive_int
from .gradebook import DETAILS_CSV, GRADEBOOK_CSV, details_path
from .layout import DEFAULT_COURSE_DIR, DEFAULT_EXERCISES_DIR, DEFAULT_STUDENT_TIMEOUT, REPO_ROOT
from .shards import Shard, merge
from .workflow import grade, release


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_utils.instructor {release,grade,merge}``: see ``--help``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", type=Path, default=DEFAULT_COURSE_DIR,
                        help="nbgrader course folder (default: grading/ in the repository)")
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.instructor",
        description="Hand out and grade the course's exercise notebooks with nbgrader.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", parents=[common],
                              help="generate the student versions (solutions removed)")
    rel.add_argument("names", nargs="*", help="only these notebooks, e.g. 01_exercises (default: all)")
    rel.add_argument("--exercises", type=Path, default=DEFAULT_EXERCISES_DIR,
                     help="folder of the instructor versions (default: notebooks/exercises/)")
    rel.add_argument("--out", type=Path, help="also copy the student versions into this folder")
    grd = commands.add_parser("grade", parents=[common],
                              help="autograde SUBMISSIONS and write the CSV gradebook and the report")
    grd.add_argument("submissions", type=Path,
                     help="folder with one subfolder per student holding NN_exercises.ipynb files "
                          "(or flat files STUDENT_NN_exercises.ipynb)")
    grd.add_argument("--exercises", type=Path, default=DEFAULT_EXERCISES_DIR,
                     help="folder of the instructor versions (default: notebooks/exercises/)")
    grd.add_argument("--timeout", type=int, default=None,
                     help="seconds one cell may run before it is stopped and gets 0 points "
                          "(default: Execute.timeout of nbgrader_config.py, 60)")
    grd.add_argument("--student-timeout", type=float, default=DEFAULT_STUDENT_TIMEOUT,
                     help="seconds for all notebooks of one student before nbgrader is killed "
                          "(a safety net for kernels that ignore interrupts; default 1800)")
    grd.add_argument("--jobs", "-j", type=positive_int, default=None,
                     help="students graded at a time (default: the number of cores; each needs "
                          "about 1 GB of memory for the notebooks that use PyTorch)")
    grd.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                     help="grade only the K-th of N slices of the students (sorted by id), into "
                          "gradebook-K-of-N.csv; join the slices with `merge`")
    grd.add_argument("--regrade", action="store_true",
                     help="grade every student again, also those unchanged since their last grade")
    grd.add_argument("--no-progress", action="store_true", help="no progress bar")
    grd.add_argument("--repo", type=Path, default=REPO_ROOT,
                     help="the course clone whose course_utils the kernels use (default: this one)")
    grd.add_argument("-v", "--verbose", action="store_true", help="print the reason of every lost point")
    mrg = commands.add_parser("merge", parents=[common],
                              help="join the gradebooks of `grade --shard K/N` runs into one")
    mrg.add_argument("gradebooks", nargs="+", type=Path,
                     help="the shards' gradebook-K-of-N.csv files (their details files are read too)")
    args = parser.parse_args(argv)

    if args.command == "release":
        paths = release(args.course_dir, args.exercises, args.names, args.out)
        print("Student versions (hand these out):")
        for path in paths:
            print(f"  {path}")
        if args.out:
            print(f"copied to {args.out}")
        return 0
    if args.command == "merge":
        try:
            rows = merge(args.gradebooks, args.course_dir)
        except (ValueError, FileNotFoundError) as exc:
            print(exc, file=sys.stderr)
            return 2
        from .report import notebook_summaries, write_report

        for line in notebook_summaries(rows):
            print(line)
        print(f"Merged {len(args.gradebooks)} gradebooks: {len({r.student for r in rows})} students.")
        print(f"Gradebook: {args.course_dir / GRADEBOOK_CSV}, details: {args.course_dir / DETAILS_CSV}")
        print(f"Report: {write_report(rows, args.course_dir)}")
        return 0
    try:
        grade(args.submissions, args.course_dir, args.timeout, args.student_timeout, args.exercises,
              args.verbose, args.repo, args.jobs, args.shard, args.regrade, not args.no_progress)
    except KeyboardInterrupt:
        print("\nInterrupted: every student graded so far is in the gradebook; run the same command "
              "again to grade the others.", file=sys.stderr)
        return 130
    summary = args.course_dir / (args.shard.gradebook_name if args.shard else GRADEBOOK_CSV)
    print(f"Gradebook: {summary} (one row per student and notebook)")
    print(f"Per test cell, with reasons: {details_path(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
