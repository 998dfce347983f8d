"""``release`` and ``grade``: the steps of the other modules, put together.

nbgrader does the real work (``generate_assignment``, ``autograde``, its sqlite gradebook); this
module lays out the course folder nbgrader expects, grades every student in a sandbox of their
own (``isolation``), several at a time (``concurrency``), skips those already graded
(``resume``), brings each student's results back into the course folder, and writes the scores
nbgrader stored into two CSV files with a readable reason for every lost point, and a report.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from . import isolation
from .concurrency import Outcome, Schedule, grade_students
from .gradebook import GRADEBOOK_CSV, details_path, read_gradebook, write_gradebook
from .layout import (CONFIG_NAME, DEFAULT_COURSE_DIR, DEFAULT_EXERCISES_DIR, DEFAULT_STUDENT_TIMEOUT,
                     REPO_ROOT, configured_timeout, default_jobs, exercise_notebooks, install_config,
                     released_notebooks, rmtree)
from .nbgrader_run import autograde_student, run_nbgrader
from .resume import course_fingerprint, reusable, student_hash
from .results import NotebookGrade, copy_submission, first_line, forget_submission, max_scores, read_scores
from .shards import Shard
from .submissions import Prepared, find_submissions, prepare_submission


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
    jobs: int | None = None,
    shard: Shard | None = None,
    regrade: bool = False,
    progress: bool = True,
) -> list[NotebookGrade]:
    """Autograde every student's notebooks in ``submissions`` and write the CSV gradebooks.

    ``timeout`` is the per-cell limit in seconds (default: ``Execute.timeout`` of
    ``nbgrader_config.py``). Every student is graded by a fresh nbgrader process in a fresh
    sandbox with a pristine copy of ``repo``'s ``course_utils``; nothing one submission does
    (raise, hang, print, break its JSON, rewrite the course's files) stops the others or changes
    their grades. ``jobs`` students are graded at a time (default: the number of cores; see
    ``concurrency``); ``shard`` grades only one slice of the class (see ``shards``). Students
    whose rows in the gradebook show the same content hash (same files, same course, same
    settings) keep them, unless ``regrade`` (see ``resume``). Only notebooks that at least one
    student handed in get rows.

    Writes ``gradebook.csv`` (one row per student and notebook; ``gradebook-K-of-N.csv`` for a
    shard) and ``gradebook_details.csv`` (one row per graded test cell and per flagged answer
    line) in ``course_dir`` after every student, ``report.html`` at the end (not for a shard),
    and returns the rows.
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
    students = shard.select(found) if shard else sorted(found)
    summary_name = shard.gradebook_name if shard else GRADEBOOK_CSV

    # Read every submission and the course's files before any student's code runs: SUBMISSIONS
    # may be the course's own submitted/ folder, and no student's code must be able to change
    # another student's files, or what they are graded against.
    contents = {student: {notebook: path.read_bytes() for notebook, path in found[student].items()}
                for student in students}
    submitted_as = {student: {notebook: str(path.relative_to(submissions))
                              for notebook, path in found[student].items()} for student in students}
    released = {name: (course_dir / "release" / name / f"{name}.ipynb").read_bytes() for name in handed_in}
    # the template and the sandboxes, in the course folder: each student's results are then moved
    # into it by a rename (no copy of what a student's code wrote: big files, named pipes)
    work = Path(tempfile.mkdtemp(prefix=".grading-run-", dir=course_dir))
    guard = None
    try:
        template = isolation.make_template(repo, course_dir, work)
        fingerprint = course_fingerprint(
            template.root / "code", template.root / "course" / CONFIG_NAME, released,
            isolation.definitions_digest(template.root / "gradebook.db"), [timeout, student_timeout, handed_in])
        hashes = {student: student_hash(fingerprint, contents[student], handed_in) for student in students}
        previous = course_dir / summary_name
        kept = {} if regrade or not previous.exists() else _reusable(previous, hashes, handed_in)
        guard = isolation.GuardedFiles(repo, course_dir, Path(exercises_dir).resolve(),
                                       (summary_name, details_path(previous).name), template)
        todo = [student for student in students if student not in kept]
        if kept:
            print(f"{len(kept)} of {len(students)} students unchanged since their last grade: kept "
                  f"(--regrade grades them again)")
        run = ClassGrading(course_dir, template, guard, handed_in, points, released, contents, submitted_as,
                           hashes, timeout, student_timeout, summary_name, verbose, kept, progress, len(todo))
        started = time.perf_counter()
        try:
            run.schedule = grade_students(todo, run, guard, jobs or default_jobs(), say=run.say)
        finally:
            run.close()
        rows = run.all_rows()
        write_gradebook(rows, course_dir, summary_name)
    finally:
        if guard is not None:
            guard.close()
        rmtree(work)
    _print_run(rows, run.schedule, len(todo), time.perf_counter() - started, jobs or default_jobs())
    if not shard:
        from .report import write_report

        print(f"Report: {write_report(rows, course_dir)}")
    return rows


@dataclass
class ClassGrading:
    """One ``grade`` run: what every student is graded against, and the rows kept so far.

    Its methods are what ``concurrency.grade_students`` calls: :meth:`run` grades one student
    in a sandbox (in a worker thread); :meth:`finish` (in the main thread) marks the rows,
    brings the student's results into the course folder and writes the gradebook.
    """

    course_dir: Path
    template: isolation.Template
    guard: isolation.GuardedFiles
    handed_in: list[str]
    points: dict[str, float]
    released: dict[str, bytes]
    contents: dict[str, dict[str, bytes]]
    submitted_as: dict[str, dict[str, str]]
    hashes: dict[str, str]
    timeout: int | None
    student_timeout: float
    summary_name: str
    verbose: bool
    rows: dict[str, list[NotebookGrade]]
    progress: bool = True
    total: int = 0
    schedule: Schedule = field(default_factory=Schedule)
    prepared: dict[str, dict[str, Prepared]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    sandboxes: dict[str, isolation.Sandbox] = field(default_factory=dict)  # of the students running

    def __post_init__(self) -> None:
        import nbformat
        from tqdm.auto import tqdm

        self._released = {name: nbformat.reads(content.decode("utf-8"), as_version=4)
                          for name, content in self.released.items()}
        self._uses_course_utils = {name: b"course_utils" in content for name, content in self.released.items()}
        self.bar = tqdm(total=self.total, unit="student", desc="grading",
                        disable=None if self.progress else True)

    def say(self, line: str) -> None:
        self.bar.write(line)

    def close(self) -> None:
        self.bar.close()

    def _prepare(self, student: str) -> dict[str, Prepared]:
        if student not in self.prepared:
            self.prepared[student] = {notebook: prepare_submission(content, self._released[notebook])
                                      for notebook, content in self.contents[student].items()}
        return self.prepared[student]

    def graded_alone(self, student: str) -> bool:
        """Flagged answer cells: graded with nothing beside them (see ``concurrency``)."""
        return any(prepared.flags for prepared in self._prepare(student).values())

    def run(self, student: str) -> Outcome:
        """Grade one student's notebooks in a sandbox of their own; publish nothing."""
        started = time.perf_counter()
        prepared, submitted_as = self._prepare(student), self.submitted_as[student]
        rows: dict[str, NotebookGrade] = {}
        readable = []
        for notebook in self.handed_in:
            if notebook not in prepared:
                rows[notebook] = NotebookGrade(student, notebook, 0.0, self.points[notebook], "missing",
                                               "not handed in")
            elif prepared[notebook].problem:
                rows[notebook] = NotebookGrade(student, notebook, 0.0, self.points[notebook], "invalid",
                                               prepared[notebook].problem, submitted_as[notebook])
            else:
                readable.append(notebook)
        if not readable:
            return Outcome(student, [rows[name] for name in sorted(rows)], None, time.perf_counter() - started)

        sandbox = isolation.open_sandbox(self.template, any(self._uses_course_utils[name] for name in readable))
        self.sandboxes[student] = sandbox
        for notebook in readable:
            target = sandbox.course / "submitted" / student / notebook / f"{notebook}.ipynb"
            target.parent.mkdir(parents=True)
            target.write_bytes(prepared[notebook].content)
        sandbox.seal()
        try:
            problems = autograde_student(sandbox.course, student, readable, self.timeout, self.student_timeout,
                                         sandbox)
        finally:  # first stop what the student left running, then check the sandbox
            check = isolation.stop_sandbox(sandbox)
            self.sandboxes.pop(student, None)
        for notebook in readable:
            if notebook in problems:
                rows[notebook] = NotebookGrade(student, notebook, 0.0, self.points[notebook], "error",
                                               problems[notebook])
            else:
                try:
                    rows[notebook] = read_scores(sandbox.course, student, notebook, self.timeout,
                                                 prepared[notebook].notes, sandbox.database)
                except Exception as exc:  # noqa: BLE001  (the student's code broke its own gradebook?)
                    rows[notebook] = NotebookGrade(
                        student, notebook, 0.0, self.points[notebook], "error",
                        f"nbgrader's scores could not be read ({type(exc).__name__}: {first_line(str(exc))})")
            rows[notebook].submitted_as = submitted_as[notebook]
            rows[notebook].flags = prepared[notebook].flags
            _hide_folder(rows[notebook], str(sandbox.root), "<sandbox>")
        return Outcome(student, [rows[name] for name in sorted(rows)], check, time.perf_counter() - started,
                       sandbox)

    def finish(self, outcome: Outcome, tampered: list[str]) -> None:
        """Keep the student's rows: mark them, bring the results into the course folder, save."""
        student = outcome.student
        self.prepared.pop(student, None)  # prepared again if the student is graded again
        for row in outcome.rows:
            row.content_hash = self.hashes[student]
            _mark(row, tampered)
        self._publish(outcome)
        self.rows[student] = outcome.rows
        for path, content in write_gradebook(self.all_rows(), self.course_dir, self.summary_name).items():
            self.guard.accept(path, content)
        self.say(_summary_line(student, outcome.rows, outcome.seconds))
        if self.verbose:
            for row in outcome.rows:
                if row.reason:
                    self.say(f"    {row.notebook}: {row.reason}")
        if student not in self.finished:
            self.finished.add(student)
            self.bar.update(1)

    def discard(self, outcome: Outcome) -> None:
        if outcome.sandbox is not None:
            isolation.remove_sandbox(outcome.sandbox)

    def cancel(self, student: str) -> None:
        """Kill the nbgrader run and kernels of a student running now (they carry its marker)."""
        sandbox = self.sandboxes.get(student)
        if sandbox is not None:
            isolation.kill_leftovers(sandbox.token)

    def all_rows(self) -> list[NotebookGrade]:
        return [row for student in sorted(self.rows) for row in self.rows[student]]

    def _publish(self, outcome: Outcome) -> None:
        """Move the student's submitted and autograded notebooks and log into the course folder,
        and their scores into its ``gradebook.db`` (graded and flagged notebooks only: a stale
        score from an earlier run is removed)."""
        student, sandbox = outcome.student, outcome.sandbox
        for step in ("submitted", "autograded", "feedback"):
            rmtree(self.course_dir / step / student)
        if sandbox is not None:
            for step in ("submitted", "autograded"):
                if (sandbox.course / step / student).exists():
                    (self.course_dir / step).mkdir(exist_ok=True)
                    shutil.move(str(sandbox.course / step / student), str(self.course_dir / step / student))
            log = sandbox.course / "logs" / f"{student}.log"
            if log.exists():
                (self.course_dir / "logs").mkdir(exist_ok=True)
                shutil.copyfile(log, self.course_dir / "logs" / log.name)
        for row in outcome.rows:
            try:
                if row.status in ("graded", "flagged"):
                    copy_submission(sandbox.database, self.course_dir, student, row.notebook)
                else:
                    forget_submission(self.course_dir, student, row.notebook)
            except Exception as exc:  # noqa: BLE001  (the CSV gradebook is the record; go on)
                self.say(f"note: {student}'s {row.notebook} is not in gradebook.db ({type(exc).__name__}: "
                         f"{first_line(str(exc))}); the CSV gradebook has it")
        self.discard(outcome)


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


def _reusable(previous: Path, hashes: dict[str, str], handed_in: list[str]) -> dict[str, list[NotebookGrade]]:
    """The rows of the earlier gradebook ``previous`` that still hold (see ``resume``)."""
    try:
        return reusable(read_gradebook(previous), hashes, handed_in)
    except (OSError, ValueError, KeyError) as exc:  # broken, or from another tool: grade everyone
        print(f"note: {previous.name} cannot be read back ({exc}): every student is graded")
        return {}


def _hide_folder(row: NotebookGrade, folder: str, name: str) -> None:
    """Write ``name`` for the temporary ``folder`` in the reasons (the same in every run)."""
    row.reason = row.reason.replace(folder, name)
    for cell in row.cells:
        cell.reason = cell.reason.replace(folder, name)


def _summary_line(student: str, rows: list[NotebookGrade], seconds: float) -> str:
    summary = ", ".join(f"{r.notebook} {r.score:g}/{r.max_score:g}" + ("" if r.status == "graded" else f" ({r.status})")
                        for r in rows)
    return f"{student}: {summary}  [{seconds:.1f} s]"


def _print_run(rows: list[NotebookGrade], schedule: Schedule, graded: int, seconds: float, jobs: int) -> None:
    """The end of a run: one line per notebook, who was graded alone, the time."""
    from .report import notebook_summaries

    for line in notebook_summaries(rows):
        print(line)
    if schedule.alone:
        print(f"graded alone (flagged answers): {', '.join(schedule.alone)}")
    if schedule.again:
        print(f"graded again alone (files changed while they ran side by side): {', '.join(schedule.again)}")
    for status in ("tampered", "flagged"):
        marked = sorted({row.student for row in rows if row.status == status})
        if marked:
            print(f"{status}: {', '.join(marked)} (see the reason column)")
    students = len({row.student for row in rows})
    print(f"Graded {graded} of {students} students in {seconds:.0f} s with --jobs {jobs}.")
