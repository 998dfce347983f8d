"""Find each student's exercise notebooks in a folder of submissions, and repair them.

An LMS download comes in many layouts (a folder per student, flat files named by student,
nbgrader's own ``submitted/`` tree) and with renamed copies (``01_exercises (1).ipynb``); students
delete cells or break the JSON. This module turns such a folder into ``{student: {notebook:
path}}`` and puts back the locked cells a student deleted, so nbgrader can grade what is there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .flags import Flag, scan_notebook
from .results import first_line


def student_id(name: str) -> str:
    """A student id nbgrader accepts as a folder name and a glob: letters, digits, ``_.@-``."""
    name = re.sub(r"_?assignsubmission_file_?$", "", name)  # Moodle's folder suffix
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_.-")


def match_notebook(stem: str, notebooks: Sequence[str]) -> str | None:
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
        notebook = match_notebook(path.stem, notebooks)
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
    return notebook_problem(Path(path).read_bytes())


def notebook_problem(content: bytes) -> str:
    """Why ``content`` is not a notebook nbgrader can read (empty string when it is fine)."""
    import nbformat

    try:
        json.loads(content.decode("utf-8"))
        nbformat.reads(content.decode("utf-8"), as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"not a valid notebook file (broken JSON: {exc})"
    except Exception as exc:  # nbformat's errors vary between versions
        return f"not a valid notebook file ({type(exc).__name__}: {first_line(str(exc))})"
    return ""


@dataclass
class Prepared:
    """One submitted notebook, ready to grade: the repaired notebook (``content``), or the
    ``problem`` that keeps it from being graded; notes on repairs, and the answer cells' flags."""

    content: bytes = b""
    problem: str = ""
    notes: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


def prepare_submission(content: bytes, released) -> Prepared:
    """Check, repair (:func:`repair_submission`) and scan (``flags``) one submitted notebook
    against the student version ``released``."""
    import nbformat

    problem = notebook_problem(content)
    if problem:
        return Prepared(problem=problem)
    submission = nbformat.reads(content.decode("utf-8"), as_version=4)
    try:
        notes = repair_submission(submission, released)
    except ValueError as exc:
        return Prepared(problem=str(exc))
    flags = scan_notebook(submission, released)
    return Prepared(nbformat.writes(submission).encode("utf-8"), "", notes, flags)


def grade_id_of(cell) -> str | None:
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

    present = {grade_id_of(cell) for cell in submitted.cells} - {None}
    ids = [grade_id_of(cell) for cell in released.cells]
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
            i for i, kept in enumerate(submitted.cells) if grade_id_of(kept) == anchor)
        copy_of_cell = nbformat.from_dict(json.loads(json.dumps(cell)))  # a deep copy
        if "id" in copy_of_cell:
            copy_of_cell["id"] = uuid.uuid4().hex[:8]
        submitted.cells.insert(position, copy_of_cell)
        present.add(grade_id)
        restored.append(grade_id)
    notes = [f"put back deleted cells {', '.join(restored)}"] if restored else []
    notes += [f"deleted answer cells {', '.join(unanswered)}"] if unanswered else []
    return notes

