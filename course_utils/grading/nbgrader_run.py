"""Run nbgrader in a process of its own, with an environment that keeps students apart.

Every nbgrader run (``generate_assignment`` to release, ``autograde`` once per student) is a
separate process in its own process group, started in an empty folder with the course folder
given as ``--CourseDirectory.root``; the kernels it starts get the environment of
:func:`kernel_environment`. A run that outlives its time limit is killed with all its kernels, and :func:`stop_all` kills
every run in progress (Ctrl-C while students are graded side by side).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

from .isolation import Sandbox
from .layout import REPO_ROOT, rmtree
from .results import log_reason


class GradingStopped(Exception):
    """Raised in place of starting nbgrader once :func:`stop_all` was called."""


_running: set[subprocess.Popen] = set()
_lock = threading.Lock()
_stopping = threading.Event()


def stop_all() -> None:
    """Kill every nbgrader run in progress, and start no new one (until :func:`allow_runs`)."""
    with _lock:
        _stopping.set()
        for process in list(_running):
            _kill_group(process)


def allow_runs() -> None:
    """Let nbgrader runs start again (a new ``grade`` in the same process)."""
    _stopping.clear()


def kernel_environment(sandbox: Sandbox | None = None) -> dict[str, str]:
    """Environment for nbgrader and the kernels it starts.

    With a ``sandbox`` (grading), the kernels import the sandbox's pristine copy of
    ``course_utils`` and fresh settings folders (see ``isolation.Sandbox``); without one
    (releasing, which runs no student code) this checkout comes first on ``PYTHONPATH``. Python
    warnings are switched off, because nbgrader gives 0 points to a test cell that writes
    anything to stderr, and a warning from a library is no reason to lose points.
    """
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # no debugger warning on stderr
    if sandbox is not None:
        return sandbox.environment(env)
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_nbgrader(
    args: Sequence[str], course_dir: Path, time_limit: float | None = None,
    sandbox: Sandbox | None = None,
) -> tuple[int | None, str]:
    """Run ``nbgrader ARGS`` on ``course_dir`` in a process of its own; return (exit code, log).

    The exit code is ``None`` when the run took longer than ``time_limit`` seconds and was
    killed together with the kernels it started. With a ``sandbox`` nbgrader starts in the
    sandbox's empty working folder, not in the course folder: nbgrader puts its working folder
    first on its own ``sys.path``, where a student's file could otherwise shadow a module; and
    it uses the sandbox's own gradebook.
    """
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_dir}"]
    if sandbox is not None:
        command.append(f"--CourseDirectory.db_url=sqlite:///{sandbox.database}")
    with _lock:
        if _stopping.is_set():
            raise GradingStopped("grading was stopped")
        process = subprocess.Popen(
            command,
            cwd=sandbox.workdir if sandbox is not None else course_dir,
            env=kernel_environment(sandbox),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a hung run is killed as a whole
        )
        _running.add(process)
    try:
        log, _ = process.communicate(timeout=time_limit)
        return process.returncode, log
    except subprocess.TimeoutExpired:
        _kill_group(process)
        log, _ = process.communicate()
        return None, log
    finally:
        _kill_group(process)  # kernels a student's code kept alive after nbgrader ended
        with _lock:
            _running.discard(process)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill nbgrader's process group; kernels notice their parent is gone and exit too."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        process.kill()


def autograde_student(
    course_dir: Path, student: str, notebooks: list[str], timeout: int | None, time_limit: float,
    sandbox: Sandbox | None = None,
) -> dict[str, str]:
    """Run ``nbgrader autograde`` for one student; return ``{notebook: problem}`` for failures.

    One nbgrader process grades all the student's notebooks (each in a fresh kernel whose
    working folder is ``autograded/<student>/<notebook>/``). If the process outlives
    ``time_limit`` it is killed, the notebook it was on is marked, and the rest is graded again.
    """
    log_file = course_dir / "logs" / f"{student}.log"
    log_file.parent.mkdir(exist_ok=True)
    log_file.write_text("")

    def done(name: str) -> bool:
        return executed(course_dir / "autograded" / student / name / f"{name}.ipynb")

    problems: dict[str, str] = {}
    options = ["--force"] + ([f"--Execute.timeout={timeout}"] if timeout else [])
    pending, first = list(notebooks), True
    while pending:
        names = pending if first else pending[:1]  # first all at once, then one by one
        code, log = run_nbgrader(
            ["autograde", "*" if first else names[0], f"--student={student}", *options],
            course_dir, time_limit, sandbox)
        first = False
        with open(log_file, "a", encoding="utf-8") as file:
            file.write(log)
        if code is None:  # killed: the first notebook not graded yet is the one that hung
            hung = next((name for name in names if not done(name)), names[-1])
            problems[hung] = (f"grading stopped after {time_limit:g} s: a cell did not stop "
                              f"when interrupted (see logs/{student}.log)")
            names = names[: names.index(hung) + 1]
            rmtree(course_dir / "autograded" / student / hung)  # only the unexecuted copy
        else:
            for name in names:
                if not done(name):
                    reason = log_reason(log, student, name)
                    if reason.startswith("DeadKernelError"):
                        reason += " (the submission crashed Python: os._exit, a crash, out of memory?)"
                    problems[name] = f"nbgrader could not grade it: {reason} (see logs/{student}.log)"
        pending = [name for name in pending if name not in names and not done(name)]
    return problems


def executed(path: Path) -> bool:
    """Whether nbgrader finished this autograded notebook (it writes the sanitized, unexecuted
    copy there first, and the executed one at the end)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return False
    return any(cell.get("execution_count") is not None for cell in cells)

