"""Grade students side by side (``grade --jobs N``) and keep the tamper check exact.

Graded one at a time, a student is the only one whose code runs between the snapshot of the
course's files and the check after it (``isolation.GuardedFiles``), so a changed file names its
culprit. Side by side, two students' code runs at once, and a change to a file they all share (a
``.pth`` file in site-packages, the repository's ``course_utils``) could be either's; worse, it
could change the grade of the other one while it runs. This module grades N students at a time
in worker threads, each student in a sandbox of their own (``isolation.Sandbox``: private
copies of ``course_utils``, of the course folder and of its gradebook, made from a template
copied once before anyone ran), and keeps grades and attribution exact with one rule:

**A grade earned side by side is kept only if nothing guarded was touched while the student
ran.** After each student, the coordinator (the main thread, one student at a time) compares
the shared guarded files with the snapshot taken before the first student started (bytes, and
for live files the inode and change time that no user process can set back, so that a change
undone in time still shows) and the student's own sandbox with what the grader put there. If
something was touched, the shared files are restored and snapshotted again, and every student
whose run overlapped the time in which it could have happened (from the earliest start among
the students running now until now: the students running, and those finished within that
time) is **graded again, alone**, after the others: one at a time, with nothing beside them,
where the check attributes every change to the one student whose code ran, as before.

Why this is exact: every shared file and every sandbox file a kernel reads is guarded; a grade
is kept only if none of them changed (even for a moment) during its run, so no other student
influenced it; a student whose grade could have been influenced, and every student who could
have done it, is graded alone, where the serial check is exact. The price is time, and only
when something was touched. Submissions whose answer cells are flagged (``flags``: code that
writes files, starts processes, builds code at run time) are graded alone in their turn (the
coordinator waits until the students running have finished), which also keeps them away from
the other sandboxes' working folders, the one place the rule does not watch (nbgrader writes
there while a student runs).
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

from . import nbgrader_run
from .isolation import GuardedFiles, Sandbox, SandboxCheck
from .results import NotebookGrade


@dataclass
class Outcome:
    """What grading one student left for the coordinator; nothing is published yet.

    ``check`` is None when none of the student's notebooks ran (all missing or unreadable).
    """

    student: str
    rows: list[NotebookGrade]
    check: Optional[SandboxCheck]
    seconds: float
    sandbox: Optional[Sandbox] = None


class StudentGrader(Protocol):
    """What the coordinator needs from the grading workflow (``workflow.ClassGrading``)."""

    def graded_alone(self, student: str) -> bool:
        """Whether this student must be graded with nothing beside them (flagged answers)."""

    def run(self, student: str) -> Outcome:
        """Grade one student in a sandbox; runs in a worker thread."""

    def finish(self, outcome: Outcome, tampered: list[str]) -> None:
        """Keep the student's grade (``tampered``: the changed files, to withhold points)."""

    def discard(self, outcome: Outcome) -> None:
        """Throw the student's grade away (they are graded again)."""

    def cancel(self, student: str) -> None:
        """Stop grading a student who runs now (they are graded again)."""


@dataclass
class Schedule:
    """Who was graded how, for the summary: ``alone`` (flagged answers) and ``again`` (graded side
    by side while something was touched, then again alone)."""

    alone: list[str] = field(default_factory=list)
    again: list[str] = field(default_factory=list)


def grade_students(students: Sequence[str], grader: StudentGrader, guard: GuardedFiles, jobs: int,
                   say: Callable[[str], None] = print) -> Schedule:
    """Grade ``students`` with ``jobs`` at a time (the module docstring says how); ``jobs=1``
    grades every student alone, in order. ``say`` prints a note for the instructor.

    On Ctrl-C (``KeyboardInterrupt``), every nbgrader run is killed, the grades not kept yet are
    thrown away, the guarded files are restored, and the interrupt goes on to the caller.
    """
    schedule = Schedule()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="grading")
    running: dict[Future, str] = {}
    try:
        later = _side_by_side(students, grader, guard, jobs, pool, running, schedule, say) \
            if jobs > 1 else list(students)
        for student in later:
            _alone(student, grader, guard, pool, running)
    except BaseException:
        nbgrader_run.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in running:
            if not future.cancelled() and future.exception() is None:
                grader.discard(future.result())
        restored = guard.check_and_restore()
        if restored:
            say(f"restored after the interruption: {', '.join(restored)}")
        raise
    finally:
        pool.shutdown(wait=True)
        nbgrader_run.allow_runs()
    return schedule


def _wait(futures: list[Future]) -> set[Future]:
    """The futures that are done, waiting in short steps so that Ctrl-C gets through."""
    while True:
        done, _ = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
        if done:
            return done


def _side_by_side(students: Sequence[str], grader: StudentGrader, guard: GuardedFiles, jobs: int,
                  pool: ThreadPoolExecutor, running: dict[Future, str], schedule: Schedule,
                  say: Callable[[str], None]) -> list[str]:
    """Grade the students ``jobs`` at a time, in order, those with flagged answers alone in their
    turn; return the students to grade again alone afterwards, sorted."""
    queue, later = list(students), []
    started: dict[str, float] = {}
    kept: dict[str, tuple[float, float]] = {}  # student -> (start, end) of grades kept so far
    voided: set[str] = set()
    guard.before_student()  # the snapshot every grade side by side is checked against

    def start_next() -> None:
        while queue and len(running) < jobs:
            if grader.graded_alone(queue[0]):  # in its turn, once no one else runs
                if running:
                    return
                schedule.alone.append(queue[0])
                _alone(queue.pop(0), grader, guard, pool, running)
                guard.before_student()  # a fresh snapshot for the students side by side
                continue
            student = queue.pop(0)
            started[student] = time.monotonic()
            running[pool.submit(grader.run, student)] = student

    start_next()
    while running:
        for future in sorted(_wait(list(running)), key=running.get):
            student = running.pop(future)
            outcome = future.result()
            if student in voided:
                grader.discard(outcome)
                continue
            shared = guard.touched()
            if not shared and (outcome.check is None or not outcome.check.touched):
                grader.finish(outcome, [])
                kept[student] = (started[student], time.monotonic())
                continue
            if shared:
                guard.check_and_restore()
                guard.before_student()
            since = min(started[s] for s in [student, *running.values()])
            suspects = sorted({student, *running.values(),
                               *(s for s, (_, end) in kept.items() if end >= since)} - voided)
            for suspect in suspects:
                kept.pop(suspect, None)
                if suspect in running.values():
                    grader.cancel(suspect)  # no need to finish: graded again anyway
            voided.update(suspects)
            later += suspects
            schedule.again += suspects
            what = ", ".join(shared) if shared else f"{student}'s sandbox"
            say(f"note: {what} changed while {', '.join(suspects)} ran side by side: "
                f"{'restored; ' if shared else ''}they are graded again, one at a time")
            grader.discard(outcome)
        start_next()
    return sorted(later)


def _alone(student: str, grader: StudentGrader, guard: GuardedFiles, pool: ThreadPoolExecutor,
           running: dict[Future, str]) -> None:
    """Grade one student with nothing beside them: a change to the guarded files is theirs."""
    guard.before_student()
    future = pool.submit(grader.run, student)
    running[future] = student
    _wait([future])
    del running[future]
    outcome = future.result()
    tampered = []
    if outcome.check is not None:  # their code ran
        tampered = guard.check_and_restore() + outcome.check.changed
    grader.finish(outcome, tampered)
