"""``release`` and ``grade``: the steps of the other modules, put together.

nbgrader does the real work (``generate_assignment``, ``autograde``, its sqlite gradebook); this
module lays out the course folder nbgrader expects, copies collected files into it, grades one
student after the other (each in a sandbox of their own, see ``isolation``), and writes the scores
nbgrader stored into two CSV files with a readable reason for every lost point.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterable

from . import isolation
from .flags import scan_notebook
from .gradebook import write_gradebook
from .layout import (CONFIG_NAME, DEFAULT_COURSE_DIR, DEFAULT_EXERCISES_DIR, DEFAULT_STUDENT_TIMEOUT,
                     REPO_ROOT, configured_timeout, exercise_notebooks, install_config, released_notebooks,
                     rmtree)
from .nbgrader_run import autograde_student, run_nbgrader
from .results import NotebookGrade, forget_submission, max_scores, read_scores
from .submissions import find_submissions, read_problem, repair_submission


def release(
    course_dir: Path = DEFAULT_COURSE_DIR,
    exercises_dir: Path = DEFAULT_EXERCISES_DIR,
    names: Iterable[str] | None = None,
    out: Path | None = None,
) -> list[Path]:
    """Build the nbgrader course folder and generate the student versions; return their paths.

    Each ``NN_exercises.ipynb`` is copied to ``source/NN_exercises/`` and
    ``nbgrader generate_assignment`` writes ``release/NN_exercises/NN_exercises.ipynb``: solutions
    replaced by ``raise NotImplementedError()``, hidden tests and outputs removed, test cells
    locked, and the tests recorded in ``gradebook.db`` for autograding. With ``out``, the student
    versions are also copied there, side by side, ready to upload.
    """
    course_dir = Path(course_dir).resolve()
    install_config(course_dir)
    notebooks = exercise_notebooks(Path(exercises_dir), names)
    for notebook in notebooks:
        source = course_dir / "source" / notebook.stem
        rmtree(source)
        source.mkdir(parents=True)
        shutil.copyfile(notebook, source / notebook.name)
    # one nbgrader process for all (its start-up takes seconds), or one per named notebook
    batches = [notebook.stem for notebook in notebooks] if names else ["*"]
    for assignment in batches:
        code, log = run_nbgrader(["generate_assignment", assignment, "--force"], course_dir)
        if code != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{log}")
    released = [course_dir / "release" / notebook.stem / notebook.name for notebook in notebooks]
    missing = [str(path) for path in released if not path.exists()]
    if missing:
        raise RuntimeError(f"nbgrader did not write {missing}:\n{log}")
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        for path in released:
            shutil.copyfile(path, Path(out) / path.name)
    return released


def grade(
    submissions: Path,
    course_dir: Path = DEFAULT_COURSE_DIR,
    timeout: int | None = None,
    student_timeout: float = DEFAULT_STUDENT_TIMEOUT,
    exercises_dir: Path = DEFAULT_EXERCISES_DIR,
    verbose: bool = False,
    repo: Path = REPO_ROOT,
) -> list[NotebookGrade]:
    """Autograde every student's notebooks in ``submissions`` and write the CSV gradebooks.

    ``timeout`` is the per-cell limit in seconds (default: ``Execute.timeout`` of
    ``nbgrader_config.py``). Students are graded one after the other, each in a fresh nbgrader
    process and a fresh sandbox with a pristine copy of ``repo``'s ``course_utils``; nothing one
    submission does (raise, hang, print, break its JSON, rewrite the course's files) stops the
    others or changes their grades. Only notebooks that at least one student handed in get rows.
    Writes ``gradebook.csv`` (one row per student and notebook) and ``gradebook_details.csv``
    (one row per graded test cell and per flagged answer line) in ``course_dir`` and returns the
    rows.
    """
    course_dir, repo, submissions = Path(course_dir).resolve(), Path(repo).resolve(), Path(submissions)
    install_config(course_dir, repo / CONFIG_NAME)
    if not (course_dir / "gradebook.db").exists() or not released_notebooks(course_dir):
        print(f"{course_dir} has no released exercises yet: running `release` first.")
        release(course_dir, exercises_dir)
    notebooks = released_notebooks(course_dir)
    found, notes = find_submissions(submissions, notebooks)
    for note in notes:
        print(f"note: {note}")
    handed_in = sorted({name for by_notebook in found.values() for name in by_notebook})
    if not handed_in:
        print(f"note: no exercise notebooks ({', '.join(notebooks)}) found in {submissions}")
    points = max_scores(course_dir, handed_in)
    if timeout is None:
        timeout = configured_timeout(repo / CONFIG_NAME)

    # Read every submission first: SUBMISSIONS may be the course's own submitted/ folder, and an
    # earlier student's code must not be able to change a later student's files.
    contents = {student: {notebook: path.read_bytes() for notebook, path in by_notebook.items()}
                for student, by_notebook in found.items()}
    guard = isolation.GuardedFiles(repo, course_dir, Path(exercises_dir).resolve())
    rows = []
    try:
        for student in sorted(found):
            submitted_as = {name: str(path.relative_to(submissions)) for name, path in found[student].items()}
            rows += grade_student(course_dir, repo, guard, student, contents[student], submitted_as,
                                  handed_in, points, timeout, student_timeout, verbose)
    finally:
        guard.close()
    write_gradebook(rows, course_dir)
    return rows


def _prepare_submission(course_dir: Path, student: str, notebook: str, content: bytes,
                        notes: dict[str, list[str]], flags: dict[str, list]) -> str:
    """Check, repair, scan and copy one notebook into ``submitted/``; return why it cannot be
    graded ("" when it can)."""
    import nbformat

    target = course_dir / "submitted" / student / notebook / f"{notebook}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    problem = read_problem(target)
    if problem:
        return problem
    submission = nbformat.read(str(target), as_version=4)
    released = nbformat.read(str(course_dir / "release" / notebook / f"{notebook}.ipynb"), as_version=4)
    try:
        notes[notebook] = repair_submission(submission, released)
    except ValueError as exc:
        return str(exc)
    flags[notebook] = scan_notebook(submission, released)
    nbformat.write(submission, str(target))
    return ""


def grade_student(course_dir: Path, repo: Path, guard: isolation.GuardedFiles, student: str,
                  files: dict[str, bytes], submitted_as: dict[str, str], handed_in: list[str],
                  points: dict[str, float], timeout: int | None, student_timeout: float,
                  verbose: bool = False) -> list[NotebookGrade]:
    """Grade one student's notebooks (``{notebook: content}``) in a sandbox; return their rows."""
    started = time.perf_counter()
    for step in ("submitted", "autograded", "feedback"):
        rmtree(course_dir / step / student)
    rows: dict[str, NotebookGrade] = {}
    notes: dict[str, list[str]] = {}
    flags: dict[str, list] = {}
    readable = []
    for notebook in handed_in:
        if notebook not in files:
            rows[notebook] = NotebookGrade(student, notebook, 0.0, points[notebook], "missing",
                                           "not handed in")
            continue
        problem = _prepare_submission(course_dir, student, notebook, files[notebook], notes, flags)
        if problem:
            rows[notebook] = NotebookGrade(student, notebook, 0.0, points[notebook], "invalid",
                                           problem, submitted_as[notebook])
            rmtree(course_dir / "submitted" / student / notebook)
        else:
            readable.append(notebook)

    problems, tampered = {}, []
    if readable:
        uses_course_utils = any(
            "course_utils" in (course_dir / "release" / name / f"{name}.ipynb").read_text(encoding="utf-8")
            for name in readable)
        guard.before_student()
        sandbox = isolation.open_sandbox(repo, course_dir, guard_kernels=uses_course_utils)
        try:
            problems = autograde_student(course_dir, student, readable, timeout, student_timeout, sandbox)
        finally:  # first stop what the student left running, then check and restore
            in_sandbox = isolation.close_sandbox(sandbox)
            tampered = guard.check_and_restore() + in_sandbox
    for notebook in readable:
        if notebook in problems:
            rows[notebook] = NotebookGrade(student, notebook, 0.0, points[notebook], "error",
                                           problems[notebook], submitted_as[notebook])
        else:
            rows[notebook] = read_scores(course_dir, student, notebook, timeout, notes[notebook])
            rows[notebook].submitted_as = submitted_as[notebook]
        rows[notebook].flags = flags.get(notebook, [])
        _mark(rows[notebook], tampered)
    for notebook, row in rows.items():
        if row.status not in ("graded", "flagged"):
            forget_submission(course_dir, student, notebook)
    _print_summary(student, rows, time.perf_counter() - started, verbose)
    return [rows[name] for name in sorted(rows)]


def _mark(row: NotebookGrade, tampered: list[str]) -> None:
    """Set ``tampered`` (points withheld) or ``flagged`` (points kept) on a graded row."""
    if tampered and row.status in ("graded", "error"):
        earned = f"{row.score:g}/{row.max_score:g}"
        shown = ", ".join(tampered[:30]) + (f" and {len(tampered) - 30} more" if len(tampered) > 30 else "")
        row.reason = "; ".join(part for part in (
            f"changed the course's files (restored): {shown}; points withheld (nbgrader gave {earned})",
            row.reason) if part)
        row.status, row.score = "tampered", 0.0
        for cell in row.cells:
            cell.score = 0.0
            cell.reason = cell.reason or "points withheld: the submission changed the course's files"
    elif row.flags and row.status == "graded":
        row.status = "flagged"
        listed = "; ".join(str(flag) for flag in row.flags[:5])
        more = f" and {len(row.flags) - 5} more" if len(row.flags) > 5 else ""
        row.reason = "; ".join(part for part in (f"flagged for a look: {listed}{more}", row.reason) if part)


def _print_summary(student: str, rows: dict[str, NotebookGrade], seconds: float, verbose: bool) -> None:
    summary = ", ".join(f"{n} {r.score:g}/{r.max_score:g}" + ("" if r.status == "graded" else f" ({r.status})")
                        for n, r in sorted(rows.items()))
    print(f"{student}: {summary}  [{seconds:.1f} s]", flush=True)
    if verbose:
        for row in rows.values():
            if row.reason:
                print(f"    {row.notebook}: {row.reason}")
