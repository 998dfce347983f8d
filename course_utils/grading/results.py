"""Read what nbgrader did: the scores it stored, and a readable reason for every lost point.

nbgrader stores points per test cell in its sqlite gradebook; the reason a cell lost them is in
the executed notebook (the error the checker raised) or in nbgrader's log (why a whole notebook
could not be graded). The rows this module builds are what ``gradebook`` writes to CSV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .flags import Flag


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

    ``status`` is ``graded`` (nbgrader ran it), ``flagged`` (graded, but an answer cell holds
    code that tampers with grading: see ``flags``; points as earned), ``tampered`` (the
    student's code changed the course's files: they were restored and the points withheld),
    ``missing`` (not handed in), ``invalid`` (not a readable notebook) or ``error`` (nbgrader
    could not grade it: see ``reason`` and the log). ``content_hash`` identifies what was graded
    (the student's files, the course's files and the settings; see ``resume``).
    """

    student: str
    notebook: str
    score: float
    max_score: float
    status: str
    reason: str = ""
    submitted_as: str = ""
    content_hash: str = ""
    cells: list[CellGrade] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # "<function f at 0x7f5c...>": differs from run to run


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of ``text``, without colours and memory addresses, cut at ``limit``
    characters (so that two runs of the same submission give the same gradebook)."""
    lines = [line.strip() for line in ADDRESS.sub("", ANSI.sub("", text)).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_of(cell: dict, timeout: int | None) -> str:
    """A one-line reason why an executed cell failed ("" when it did not)."""
    errors = [output for output in cell.get("outputs", []) if output.output_type == "error"]
    if any(output.ename == "CellTimeoutError" for output in errors):  # after a KeyboardInterrupt
        limit = f"{timeout} s" if timeout else "the time limit"
        return f"timed out: ran longer than {limit} and was stopped (an infinite loop?)"
    if errors:
        ename, message = errors[0].ename, first_line(errors[0].get("evalue", ""))
        if ename == "NotImplementedError" and not message:
            message = "not answered yet"
        if not message:  # a bare `assert`: show the line that failed
            line = _failing_line(errors[0].get("traceback", []))
            return f"{ename} in `{line}`" if line else ename
        return f"{ename}: {message}"
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            return f"wrote to stderr, which nbgrader counts as failing: {first_line(output.text)}"
    return ""


def _failing_line(traceback: list[str]) -> str:
    """The source line IPython marks with ``---->`` in the last frame of a traceback."""
    marked = re.findall(r"^-+>\s*\d+\s+(.*)$", ANSI.sub("", "\n".join(traceback)), flags=re.M)
    return first_line(marked[-1], limit=150) if marked else ""


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


EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit))(:.*)?$")


def log_reason(log: str, student: str, notebook: str) -> str:
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
            return first_line(exceptions[-1].group(1) + (exceptions[-1].group(2) or ""))
    return "nbgrader did not produce a graded notebook"


def read_scores(course_dir: Path, student: str, notebook: str, timeout: int | None,
                notes: Sequence[str] = (), database: Path | None = None) -> NotebookGrade:
    """Read one graded notebook's scores from nbgrader's gradebook, with reasons.

    ``database``: the gradebook file, when it is not ``course_dir/gradebook.db``.
    """
    from nbgrader.api import Gradebook

    autograded = course_dir / "autograded" / student / notebook / f"{notebook}.ipynb"
    reasons = cell_reasons(autograded, timeout)
    with Gradebook(db_url(course_dir, database)) as gradebook:
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


def db_url(course_dir: Path, database: Path | None = None) -> str:
    return f"sqlite:///{database or course_dir / 'gradebook.db'}"


def max_scores(course_dir: Path, notebooks: Iterable[str]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course_dir)) as gradebook:
        return {name: float(gradebook.find_notebook(name, name).max_score) for name in notebooks}


def forget_submission(course_dir: Path, student: str, notebook: str) -> None:
    """Remove a stale score (from an earlier run) that this run could not confirm."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(course_dir)) as gradebook:
        try:
            gradebook.remove_submission(notebook, student)
        except MissingEntry:
            pass



def copy_submission(database: Path, course_dir: Path, student: str, notebook: str) -> None:
    """Copy a student's graded notebook from the gradebook ``database`` (a sandbox's) into the
    course folder's ``gradebook.db``, where nbgrader's own tools (``formgrader``,
    ``generate_feedback``) find it. Both gradebooks hold the same assignments."""
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings(), Gradebook(db_url(course_dir, database)) as source, \
            Gradebook(db_url(course_dir)) as target:
        # nbgrader's add_submission builds its objects in a way SQLAlchemy 2 warns about (the
        # same warnings are in nbgrader's own logs); they are harmless, and no reason to worry
        # an instructor on the terminal
        warnings.simplefilter("ignore", SAWarning)
        graded = source.find_submission(notebook, student)
        target.update_or_create_student(student)
        target.update_or_create_submission(notebook, student, timestamp=graded.timestamp,
                                           extension=graded.extension)
        for graded_notebook in graded.notebooks:
            copy = target.find_submission_notebook(graded_notebook.name, notebook, student)
            copy.flagged = graded_notebook.flagged
            copy.late_submission_penalty = graded_notebook.late_submission_penalty
            for grade in graded_notebook.grades:
                into = target.find_grade(grade.name, graded_notebook.name, notebook, student)
                into.auto_score, into.manual_score = grade.auto_score, grade.manual_score
                into.extra_credit, into.needs_manual_grade = grade.extra_credit, grade.needs_manual_grade
            for comment in graded_notebook.comments:
                into = target.find_comment(comment.name, graded_notebook.name, notebook, student)
                into.auto_comment, into.manual_comment = comment.auto_comment, comment.manual_comment
        target.db.commit()
