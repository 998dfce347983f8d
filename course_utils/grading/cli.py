"""The command line: ``python -m course_utils.instructor {release,grade} ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from .gradebook import DETAILS_CSV, GRADEBOOK_CSV
from .layout import DEFAULT_COURSE_DIR, DEFAULT_EXERCISES_DIR, DEFAULT_STUDENT_TIMEOUT, REPO_ROOT
from .workflow import grade, release


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_utils.instructor {release,grade}``: see ``--help``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", type=Path, default=DEFAULT_COURSE_DIR,
                        help="nbgrader course folder (default: grading/ in the repository)")
    common.add_argument("--exercises", type=Path, default=DEFAULT_EXERCISES_DIR,
                        help="folder of the instructor versions (default: notebooks/exercises/)")
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.instructor",
        description="Hand out and grade the course's exercise notebooks with nbgrader.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", parents=[common],
                              help="generate the student versions (solutions removed)")
    rel.add_argument("names", nargs="*", help="only these notebooks, e.g. 01_exercises (default: all)")
    rel.add_argument("--out", type=Path, help="also copy the student versions into this folder")
    grd = commands.add_parser("grade", parents=[common],
                              help="autograde SUBMISSIONS and write the CSV gradebook")
    grd.add_argument("submissions", type=Path,
                     help="folder with one subfolder per student holding NN_exercises.ipynb files "
                          "(or flat files STUDENT_NN_exercises.ipynb)")
    grd.add_argument("--timeout", type=int, default=None,
                     help="seconds one cell may run before it is stopped and gets 0 points "
                          "(default: Execute.timeout of nbgrader_config.py, 60)")
    grd.add_argument("--student-timeout", type=float, default=DEFAULT_STUDENT_TIMEOUT,
                     help="seconds for all notebooks of one student before nbgrader is killed "
                          "(a safety net for kernels that ignore interrupts; default 1800)")
    grd.add_argument("--repo", type=Path, default=REPO_ROOT,
                     help="the course clone whose course_utils the kernels use (default: this one)")
    grd.add_argument("-v", "--verbose", action="store_true", help="print the reason of every lost point")
    args = parser.parse_args(argv)

    if args.command == "release":
        paths = release(args.course_dir, args.exercises, args.names, args.out)
        print("Student versions (hand these out):")
        for path in paths:
            print(f"  {path}")
        if args.out:
            print(f"copied to {args.out}")
        return 0
    started = time.perf_counter()
    rows = grade(args.submissions, args.course_dir, args.timeout, args.student_timeout,
                 args.exercises, args.verbose, args.repo)
    students = len({row.student for row in rows})
    for status in ("tampered", "flagged"):
        marked = sorted({row.student for row in rows if row.status == status})
        if marked:
            print(f"{status}: {', '.join(marked)} (see the reason column)")
    print(f"Graded {students} students ({len(rows)} notebooks) in {time.perf_counter() - started:.0f} s.")
    print(f"Gradebook: {args.course_dir / GRADEBOOK_CSV} (one row per student and notebook)")
    print(f"Per test cell, with reasons: {args.course_dir / DETAILS_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
