"""Hand out and grade the exercise notebooks: thin wrappers over nbgrader.

Two commands, run from a clone of the course repository::

    python -m course_utils.instructor release             # student versions of notebooks/exercises/
    python -m course_utils.instructor grade SUBMISSIONS   # autograde + CSV gradebook

nbgrader does the real work (``generate_assignment``, ``autograde``, its sqlite gradebook); this
module only lays out the course folder nbgrader expects, copies collected files into it, runs
nbgrader once per student in its own process, and writes the scores nbgrader stored into two CSV
files with a readable reason for every lost point. The settings live in the repository's
``nbgrader_config.py``.

Each exercise notebook ``NN_exercises.ipynb`` is its own nbgrader assignment ``NN_exercises``, so
lessons can be handed out and graded week by week, and nbgrader's one row per student and
assignment is one row per student and exercise notebook.

Layout of the course folder (``grading/`` by default, git-ignored)::

    grading/nbgrader_config.py                  copy of the repository's settings
    grading/source/01_exercises/01_exercises.ipynb          instructor version (with solutions)
    grading/release/01_exercises/01_exercises.ipynb         student version (hand this out)
    grading/submitted/<student>/01_exercises/01_exercises.ipynb   copied from SUBMISSIONS
    grading/autograded/<student>/01_exercises/01_exercises.ipynb  executed and scored
    grading/gradebook.db, gradebook.csv, gradebook_details.csv, logs/<student>.log
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent  # a clone of the course repository
CONFIG_FILE = REPO_ROOT / "nbgrader_config.py"
DEFAULT_COURSE_DIR = REPO_ROOT / "grading"
DEFAULT_EXERCISES_DIR = REPO_ROOT / "notebooks" / "exercises"
EXERCISE_GLOB = "[0-9][0-9]_exercises.ipynb"
DEFAULT_STUDENT_TIMEOUT = 30 * 60  # seconds for all notebooks of one student (a safety net)

GRADEBOOK_CSV = "gradebook.csv"
DETAILS_CSV = "gradebook_details.csv"


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class CellGrade:
    """Points of one graded test cell of one student's notebook, and why points were lost."""

    student: str
    notebook: str
    cell: str
    score: float
    max_score: float
    reason: str = ""


@dataclass
class NotebookGrade:
    """One row of the gradebook: one student's exercise notebook.

    ``status`` is ``graded`` (nbgrader ran it), ``missing`` (not handed in), ``invalid`` (not a
    readable notebook) or ``error`` (nbgrader could not grade it: see ``reason`` and the log).
    """

    student: str
    notebook: str
    score: float
    max_score: float
    status: str
    reason: str = ""
    submitted_as: str = ""
    cells: list[CellGrade] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Inside the grading kernel: a cap on printed output (started by nbgrader_config.py)
# --------------------------------------------------------------------------------------------
class _CappedStream:
    """Wraps the kernel's ``sys.stdout``/``sys.stderr``: passes on ``limit`` characters per cell,
    then one notice, then nothing."""

    def __init__(self, stream, limit: int):
        self._stream, self._limit, self._written = stream, limit, 0

    def reset(self, *_args) -> None:
        self._written = 0

    def write(self, text: str) -> int:
        room = self._limit - self._written
        self._written += len(text)
        if room > 0:
            self._stream.write(text[:room])
            if len(text) > room:
                self._stream.write(f"\n... [output cut by the grader after {self._limit} characters]\n")
        return len(text)

    def __getattr__(self, name):  # flush, set_parent, isatty, ... of the real stream
        return getattr(self._stream, name)


def limit_output(max_chars: int = 100_000) -> None:
    """Cut each cell's printed output after ``max_chars`` characters; runs inside the kernel.

    nbgrader trims long outputs only after the notebook ran, so a submission that prints in an
    infinite loop would send about 100 MB a second to the grader until the time limit stops it,
    filling the memory of the kernel and of nbgrader (and, past ``Execute.iopub_timeout``, failing
    the whole notebook). ``nbgrader_config.py`` starts every grading kernel with this call, so the
    text never leaves the kernel. The first stderr line still reaches nbgrader, which gives 0
    points to a test cell that writes to stderr.
    """
    import contextlib

    from IPython import get_ipython

    streams = [_CappedStream(sys.stdout, max_chars), _CappedStream(sys.stderr, max_chars)]
    sys.stdout, sys.stderr = streams
    shell = get_ipython()
    if shell is not None:
        for stream in streams:
            shell.events.register("pre_run_cell", stream.reset)
        # IPython 9 also keeps a copy of everything a cell prints (for `%history -o`), which
        # grows without limit in the same loop; grading needs no such history.
        shell._tee = lambda channel: contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# Running nbgrader
# --------------------------------------------------------------------------------------------
def _kernel_environment() -> dict[str, str]:
    """Environment for nbgrader and the kernels it starts.

    The exercise notebooks import ``course_utils``: put this checkout first on ``PYTHONPATH`` so the
    kernel finds it even where the package is not pip-installed. Python warnings are switched off,
    because nbgrader gives 0 points to a test cell that writes anything to stderr, and a warning
    from a library is no reason to lose points.
    """
    env = dict(os.environ)
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONWARNINGS"] = "ignore"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # no debugger warning on stderr
    return env


def run_nbgrader(
    args: Sequence[str], course_dir: Path, time_limit: float | None = None
) -> tuple[int | None, str]:
    """Run ``nbgrader ARGS`` in ``course_dir`` in a process of its own; return (exit code, log).

    The exit code is ``None`` when the run took longer than ``time_limit`` seconds and was
    killed together with the kernels it started.
    """
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_dir}"]
    process = subprocess.Popen(
        command,
        cwd=course_dir,
        env=_kernel_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a hung run is killed as a whole
    )
    try:
        log, _ = process.communicate(timeout=time_limit)
        return process.returncode, log
    except subprocess.TimeoutExpired:
        _kill_group(process)
        log, _ = process.communicate()
        return None, log


def _kill_group(process: subprocess.Popen) -> None:
    """Kill nbgrader's process group; kernels notice their parent is gone and exit too."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        process.kill()


def _install_config(course_dir: Path) -> None:
    """Create the course folder and copy the repository's ``nbgrader_config.py`` into it."""
    if not CONFIG_FILE.exists():
        raise FileNotFoundError(
            f"{CONFIG_FILE} not found: run the instructor commands from a clone of the course repository."
        )
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_FILE, course_dir / "nbgrader_config.py")


def configured_timeout() -> int:
    """The per-cell time limit ``Execute.timeout`` set in ``nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE.name, str(CONFIG_FILE.parent)).load_config()
    return int(config.Execute.timeout) if "timeout" in config.Execute else 30


def _rmtree(path: Path) -> None:
    """Remove a folder that may hold nbgrader's read-only files."""

    def make_writable_and_retry(function, name, _error):
        os.chmod(name, 0o700)
        function(name)

    if path.exists():
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=make_writable_and_retry)
        else:
            shutil.rmtree(path, onerror=make_writable_and_retry)


# --------------------------------------------------------------------------------------------
# release
# --------------------------------------------------------------------------------------------
def exercise_notebooks(exercises_dir: Path, names: Iterable[str] | None = None) -> list[Path]:
    """The exercise notebooks ``NN_exercises.ipynb`` of ``exercises_dir`` (or only ``names``)."""
    found = sorted(Path(exercises_dir).glob(EXERCISE_GLOB))
    if names:
        wanted = {Path(name).stem for name in names}
        unknown = wanted - {path.stem for path in found}
        if unknown:
            raise FileNotFoundError(f"no exercise notebook {sorted(unknown)} in {exercises_dir}")
        found = [path for path in found if path.stem in wanted]
    if not found:
        raise FileNotFoundError(f"no exercise notebooks ({EXERCISE_GLOB}) in {exercises_dir}")
    return found


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
    _install_config(course_dir)
    notebooks = exercise_notebooks(Path(exercises_dir), names)
    for notebook in notebooks:
        source = course_dir / "source" / notebook.stem
        _rmtree(source)
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


def released_notebooks(course_dir: Path) -> list[str]:
    """Names (``NN_exercises``) of the notebooks released in ``course_dir``."""
    return sorted(path.parent.name for path in Path(course_dir).glob("source/*/*.ipynb")
                  if path.stem == path.parent.name)


# --------------------------------------------------------------------------------------------
# Finding the submissions
# --------------------------------------------------------------------------------------------
def student_id(name: str) -> str:
    """A student id nbgrader accepts as a folder name and a glob: letters, digits, ``_.@-``."""
    name = re.sub(r"_?assignsubmission_file_?$", "", name)  # Moodle's folder suffix
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_.-")


def _match_notebook(stem: str, notebooks: Sequence[str]) -> str | None:
    """The exercise notebook a file name refers to: ``01_exercises``, ``01_exercises (1)``,
    ``alice_01_exercises``, ``01_exercises-Copy1`` all mean ``01_exercises``."""
    for name in sorted(notebooks, key=len, reverse=True):
        if re.search(rf"(?<![0-9]){re.escape(name)}", stem):
            return name
    return None


def find_submissions(
    submissions: Path, notebooks: Sequence[str]
) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """Find each student's exercise notebooks in the folder ``submissions``.

    Accepted layouts (mixable):

    - ``SUBMISSIONS/<student>/01_exercises.ipynb``: one folder per student (as most LMS export);
      files deeper inside that folder count too, so nbgrader's own
      ``submitted/<student>/01_exercises/01_exercises.ipynb`` works as it is;
    - ``SUBMISSIONS/<student>_01_exercises.ipynb``: flat files named by student.

    A file is recognised by the exercise name inside its name (``01_exercises (1).ipynb`` is
    fine). When a student has several files for one notebook, the one named exactly
    ``01_exercises.ipynb`` wins, otherwise the newest. Returns ``{student: {notebook: path}}``
    and a list of notes about files that were skipped.
    """
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder of submissions")
    found: dict[str, dict[str, list[Path]]] = {}
    notes = []
    owners: dict[str, str] = {}  # student id -> the folder/file prefix it came from
    for path in sorted(submissions.rglob("*.ipynb")):
        relative = path.relative_to(submissions)
        if any(part.startswith((".", "__MACOSX")) for part in relative.parts):
            continue
        notebook = _match_notebook(path.stem, notebooks)
        if notebook is None:
            notes.append(f"skipped {relative}: its name names no exercise notebook {list(notebooks)}")
            continue
        if len(relative.parts) > 1:
            raw = relative.parts[0]
        else:
            raw = path.stem.split(notebook)[0]
        student = student_id(raw)
        if not student:
            notes.append(f"skipped {relative}: cannot tell whose it is (use a folder per student)")
            continue
        if owners.setdefault(student, raw) != raw:
            notes.append(f"{relative}: '{raw}' and '{owners[student]}' both become id '{student}'")
        found.setdefault(student, {}).setdefault(notebook, []).append(path)

    chosen: dict[str, dict[str, Path]] = {}
    for student, by_notebook in found.items():
        chosen[student] = {}
        for notebook, paths in by_notebook.items():
            exact = [p for p in paths if p.name == f"{notebook}.ipynb"]
            best = max(exact or paths, key=lambda p: p.stat().st_mtime)
            if len(paths) > 1:
                notes.append(f"{student}: {len(paths)} files for {notebook}, graded "
                             f"{best.relative_to(submissions)}")
            chosen[student][notebook] = best
    return chosen, notes


def read_problem(path: Path) -> str:
    """Why ``path`` is not a notebook nbgrader can read (empty string when it is fine)."""
    import nbformat

    try:
        with open(path, encoding="utf-8") as file:
            json.load(file)
        nbformat.read(str(path), as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"not a valid notebook file (broken JSON: {exc})"
    except Exception as exc:  # nbformat's errors vary between versions
        return f"not a valid notebook file ({type(exc).__name__}: {_first_line(str(exc))})"
    return ""


# --------------------------------------------------------------------------------------------
# Reading what nbgrader did
# --------------------------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _first_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in ANSI.sub("", text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_of(cell: dict, timeout: int | None) -> str:
    """A one-line reason why an executed cell failed ("" when it did not)."""
    errors = [output for output in cell.get("outputs", []) if output.output_type == "error"]
    if any(output.ename == "CellTimeoutError" for output in errors):  # after a KeyboardInterrupt
        limit = f"{timeout} s" if timeout else "the time limit"
        return f"timed out: ran longer than {limit} and was stopped (an infinite loop?)"
    if errors:
        ename, message = errors[0].ename, _first_line(errors[0].get("evalue", ""))
        if ename == "NotImplementedError" and not message:
            message = "not answered yet"
        if not message:  # a bare `assert`: show the line that failed
            line = _failing_line(errors[0].get("traceback", []))
            return f"{ename} in `{line}`" if line else ename
        return f"{ename}: {message}"
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            return f"wrote to stderr, which nbgrader counts as failing: {_first_line(output.text)}"
    return ""


def _failing_line(traceback: list[str]) -> str:
    """The source line IPython marks with ``---->`` in the last frame of a traceback."""
    marked = re.findall(r"^-+>\s*\d+\s+(.*)$", ANSI.sub("", "\n".join(traceback)), flags=re.M)
    return _first_line(marked[-1], limit=150) if marked else ""


def cell_reasons(autograded: Path, timeout: int | None = None) -> dict[str, str]:
    """``{grade_id: reason}`` for every graded cell of an autograded notebook that failed.

    The reason is the last line of the error (an ``AssertionError`` of a checker already says
    what is wrong); when an earlier ungraded cell failed too (a solution cell with a syntax
    error, say) its error is added, because that is usually the real cause.
    """
    import nbformat

    notebook = nbformat.read(str(autograded), as_version=4)
    reasons: dict[str, str] = {}
    earlier = ""
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        error = _error_of(cell, timeout) if cell.cell_type == "code" else ""
        if meta.get("grade") and cell.cell_type == "code":
            if error and earlier and error.split(":")[0] in {"NameError", "AttributeError", "TypeError"}:
                error = f"{error} (an earlier cell failed: {earlier})"
            if error:
                reasons[meta["grade_id"]] = error
            earlier = ""
        elif error and not earlier:
            earlier = f"{meta.get('grade_id', 'a cell')}: {error}"
    return reasons


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def repair_submission(submitted, released) -> list[str]:
    """Put back the locked cells (instructions, setup, tests) a student deleted; return notes.

    nbgrader's own ``OverwriteCells.add_missing_cells`` fails on a notebook where a test cell
    *and* the cell before it are gone (a whole exercise deleted), failing the whole notebook.
    Here each missing locked cell of the student version ``released`` goes back right after the
    nearest earlier cell that is still there; nbgrader then puts the hidden tests back into it,
    as into every test cell. A deleted answer cell is not put back: its tests fail, and the note
    says why. Raises ``ValueError`` when no cell has the nbgrader metadata at all (a notebook
    re-created by hand, or saved by a tool that drops cell metadata).
    """
    import uuid

    import nbformat

    present = {_grade_id(cell) for cell in submitted.cells} - {None}
    ids = [_grade_id(cell) for cell in released.cells]
    if not present & set(ids):
        raise ValueError("none of its cells carries nbgrader's metadata (a new notebook, or one "
                         "saved by a tool that drops cell metadata?): grade it by hand")
    restored, unanswered = [], []
    for index, cell in enumerate(released.cells):
        grade_id = ids[index]
        if grade_id in present or grade_id is None:
            continue
        if not cell.metadata["nbgrader"].get("locked"):
            unanswered.append(grade_id)
            continue
        anchor = next((ids[j] for j in range(index - 1, -1, -1) if ids[j] in present), None)
        position = 0 if anchor is None else 1 + max(
            i for i, kept in enumerate(submitted.cells) if _grade_id(kept) == anchor)
        copy_of_cell = nbformat.from_dict(json.loads(json.dumps(cell)))  # a deep copy
        if "id" in copy_of_cell:
            copy_of_cell["id"] = uuid.uuid4().hex[:8]
        submitted.cells.insert(position, copy_of_cell)
        present.add(grade_id)
        restored.append(grade_id)
    notes = [f"put back deleted cells {', '.join(restored)}"] if restored else []
    notes += [f"deleted answer cells {', '.join(unanswered)}"] if unanswered else []
    return notes


EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit))(:.*)?$")


def _log_reason(log: str, student: str, notebook: str) -> str:
    """The exception in the traceback nbgrader logged for this student's notebook."""
    lines = log.splitlines()
    marker = re.compile(rf"error processing assignment: .*{re.escape(student)}.{re.escape(notebook)}\s*$")
    starts = [index for index, line in enumerate(lines) if marker.search(line)]
    if starts:
        block = lines[starts[-1] + 1:]
        ends = [i for i, line in enumerate(block) if re.match(r"\[\w+ \| \w+\] (?!Traceback)", line)]
        block = block[: ends[0]] if ends else block
        exceptions = [EXCEPTION_LINE.match(line) for line in block]
        exceptions = [match for match in exceptions if match]
        if exceptions:
            return _first_line(exceptions[-1].group(1) + (exceptions[-1].group(2) or ""))
    return "nbgrader did not produce a graded notebook"


def _scores(course_dir: Path, student: str, notebook: str, timeout: int | None,
            notes: Sequence[str] = ()) -> NotebookGrade:
    """Read one graded notebook's scores from nbgrader's gradebook, with reasons."""
    from nbgrader.api import Gradebook

    autograded = course_dir / "autograded" / student / notebook / f"{notebook}.ipynb"
    reasons = cell_reasons(autograded, timeout)
    with Gradebook(_db_url(course_dir)) as gradebook:
        stored = gradebook.find_submission_notebook(notebook, notebook, student)
        cells = []
        for grade in sorted(stored.grades, key=lambda g: g.cell.id):
            score = grade.score if grade.score is not None else 0.0
            reason = reasons.get(grade.name, "")
            if grade.score is None:
                reason = "needs manual grading"
            elif score < grade.max_score and not reason:
                reason = "no points given by nbgrader"
            cells.append(CellGrade(student, notebook, grade.name, float(score),
                                   float(grade.max_score), reason))
        order = {cell.name: index for index, cell in
                 enumerate(gradebook.find_notebook(notebook, notebook).source_cells)}
        cells.sort(key=lambda c: order.get(c.cell, len(order)))
        result = NotebookGrade(student, notebook, float(stored.score), float(stored.max_score), "graded")
    result.cells = cells
    parts = list(notes) + [f"{cell.cell}: {cell.reason}" for cell in cells if cell.reason]
    result.reason = "; ".join(parts)
    return result


def _db_url(course_dir: Path) -> str:
    return f"sqlite:///{course_dir / 'gradebook.db'}"


def _max_scores(course_dir: Path, notebooks: Iterable[str]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(course_dir)) as gradebook:
        return {name: float(gradebook.find_notebook(name, name).max_score) for name in notebooks}


def _forget_submission(course_dir: Path, student: str, notebook: str) -> None:
    """Remove a stale score (from an earlier run) that this run could not confirm."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(_db_url(course_dir)) as gradebook:
        try:
            gradebook.remove_submission(notebook, student)
        except MissingEntry:
            pass


# --------------------------------------------------------------------------------------------
# grade
# --------------------------------------------------------------------------------------------
def _autograde_student(
    course_dir: Path, student: str, notebooks: list[str], timeout: int | None, time_limit: float
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
        return _executed(course_dir / "autograded" / student / name / f"{name}.ipynb")

    problems: dict[str, str] = {}
    options = ["--force"] + ([f"--Execute.timeout={timeout}"] if timeout else [])
    pending, first = list(notebooks), True
    while pending:
        names = pending if first else pending[:1]  # first all at once, then one by one
        code, log = run_nbgrader(
            ["autograde", "*" if first else names[0], f"--student={student}", *options],
            course_dir, time_limit)
        first = False
        with open(log_file, "a", encoding="utf-8") as file:
            file.write(log)
        if code is None:  # killed: the first notebook not graded yet is the one that hung
            hung = next((name for name in names if not done(name)), names[-1])
            problems[hung] = (f"grading stopped after {time_limit:g} s: a cell did not stop "
                              f"when interrupted (see logs/{student}.log)")
            names = names[: names.index(hung) + 1]
            _rmtree(course_dir / "autograded" / student / hung)  # only the unexecuted copy
        else:
            for name in names:
                if not done(name):
                    reason = _log_reason(log, student, name)
                    if reason.startswith("DeadKernelError"):
                        reason += " (the submission crashed Python: os._exit, a crash, out of memory?)"
                    problems[name] = f"nbgrader could not grade it: {reason} (see logs/{student}.log)"
        pending = [name for name in pending if name not in names and not done(name)]
    return problems


def _executed(path: Path) -> bool:
    """Whether nbgrader finished this autograded notebook (it writes the sanitized, unexecuted
    copy there first, and the executed one at the end)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return False
    return any(cell.get("execution_count") is not None for cell in cells)


def grade(
    submissions: Path,
    course_dir: Path = DEFAULT_COURSE_DIR,
    timeout: int | None = None,
    student_timeout: float = DEFAULT_STUDENT_TIMEOUT,
    exercises_dir: Path = DEFAULT_EXERCISES_DIR,
    verbose: bool = False,
) -> list[NotebookGrade]:
    """Autograde every student's notebooks in ``submissions`` and write the CSV gradebooks.

    ``timeout`` is the per-cell limit in seconds (default: ``Execute.timeout`` of
    ``nbgrader_config.py``). Students are graded one after the other, each in a fresh nbgrader
    process, and nothing one submission does (raise, hang, print, break its JSON) stops the
    others. Only notebooks that at least one student handed in get rows. Writes
    ``gradebook.csv`` (one row per student and notebook) and ``gradebook_details.csv`` (one row
    per graded test cell) in ``course_dir`` and returns the rows.
    """
    course_dir = Path(course_dir).resolve()
    _install_config(course_dir)
    if not (course_dir / "gradebook.db").exists() or not released_notebooks(course_dir):
        print(f"{course_dir} has no released exercises yet: running `release` first.")
        release(course_dir, exercises_dir)
    notebooks = released_notebooks(course_dir)
    found, notes = find_submissions(Path(submissions), notebooks)
    for note in notes:
        print(f"note: {note}")
    handed_in = sorted({name for by_notebook in found.values() for name in by_notebook})
    if not handed_in:
        print(f"note: no exercise notebooks ({', '.join(notebooks)}) found in {submissions}")
    max_scores = _max_scores(course_dir, handed_in)
    if timeout is None:
        timeout = configured_timeout()

    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=course_dir))
    try:  # copy first: SUBMISSIONS may be the course's own submitted/ folder
        for student, by_notebook in found.items():
            for notebook, path in by_notebook.items():
                target = staging / student / notebook / f"{notebook}.ipynb"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        rows = []
        for student in sorted(found):
            rows += _grade_student(course_dir, staging, student, found[student], handed_in,
                                   max_scores, timeout, student_timeout, Path(submissions), verbose)
    finally:
        _rmtree(staging)
    write_gradebook(rows, course_dir)
    return rows


def _grade_student(course_dir, staging, student, files, handed_in, max_scores, timeout,
                   student_timeout, submissions, verbose) -> list[NotebookGrade]:
    """Copy one student's readable notebooks into ``submitted/`` and autograde them."""
    import nbformat

    started = time.perf_counter()
    notes: dict[str, list[str]] = {}
    for step in ("submitted", "autograded", "feedback"):
        _rmtree(course_dir / step / student)
    rows: dict[str, NotebookGrade] = {}
    readable = []
    for notebook in handed_in:
        if notebook not in files:
            rows[notebook] = NotebookGrade(student, notebook, 0.0, max_scores[notebook], "missing",
                                           "not handed in")
            continue
        staged = staging / student / notebook / f"{notebook}.ipynb"
        problem = read_problem(staged)
        submitted_as = str(files[notebook].relative_to(submissions))
        if not problem:
            submission = nbformat.read(str(staged), as_version=4)
            released = nbformat.read(str(course_dir / "release" / notebook / f"{notebook}.ipynb"),
                                     as_version=4)
            try:
                notes[notebook] = repair_submission(submission, released)
            except ValueError as exc:
                problem = str(exc)
        if problem:
            rows[notebook] = NotebookGrade(student, notebook, 0.0, max_scores[notebook], "invalid",
                                           problem, submitted_as)
            continue
        target = course_dir / "submitted" / student / notebook
        target.mkdir(parents=True, exist_ok=True)
        nbformat.write(submission, str(target / f"{notebook}.ipynb"))
        readable.append(notebook)
    problems = {}
    if readable:
        problems = _autograde_student(course_dir, student, readable, timeout, student_timeout)
    for notebook in readable:
        submitted_as = str(files[notebook].relative_to(submissions))
        if notebook in problems:
            rows[notebook] = NotebookGrade(student, notebook, 0.0, max_scores[notebook], "error",
                                           problems[notebook], submitted_as)
        else:
            rows[notebook] = _scores(course_dir, student, notebook, timeout, notes[notebook])
            rows[notebook].submitted_as = submitted_as
    for notebook, row in rows.items():
        if row.status != "graded":
            _forget_submission(course_dir, student, notebook)
    seconds = time.perf_counter() - started
    summary = ", ".join(f"{n} {r.score:g}/{r.max_score:g}" + ("" if r.status == "graded" else f" ({r.status})")
                        for n, r in sorted(rows.items()))
    print(f"{student}: {summary}  [{seconds:.1f} s]", flush=True)
    if verbose:
        for row in rows.values():
            if row.reason:
                print(f"    {row.notebook}: {row.reason}")
    return [rows[name] for name in sorted(rows)]


def write_gradebook(rows: Sequence[NotebookGrade], course_dir: Path) -> tuple[Path, Path]:
    """Write ``gradebook.csv`` (student, notebook, score, max_score, status, reason, submitted_as)
    and ``gradebook_details.csv`` (one row per graded test cell) into ``course_dir``."""
    summary_path, details_path = Path(course_dir) / GRADEBOOK_CSV, Path(course_dir) / DETAILS_CSV
    columns = ["student", "notebook", "score", "max_score", "status", "reason", "submitted_as"]
    with open(summary_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: value for key, value in asdict(row).items() if key in columns})
    with open(details_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["student", "notebook", "cell", "score", "max_score", "reason"])
        writer.writeheader()
        for row in rows:
            for cell in row.cells:
                writer.writerow(asdict(cell))
    return summary_path, details_path


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
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
                 args.exercises, args.verbose)
    students = len({row.student for row in rows})
    print(f"Graded {students} students ({len(rows)} notebooks) in {time.perf_counter() - started:.0f} s.")
    print(f"Gradebook: {args.course_dir / GRADEBOOK_CSV} (one row per student and notebook)")
    print(f"Per test cell, with reasons: {args.course_dir / DETAILS_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
