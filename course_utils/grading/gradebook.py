"""The gradebook: ``gradebook.csv`` (one row per student and exercise notebook) and
``gradebook_details.csv`` (one row per graded test cell, and one per flagged answer line).

Written again after every student, so that an interrupted run keeps every student it finished
(see ``resume``), and read back to resume a run or to merge the gradebooks of several shards. A
shard writes ``gradebook-K-of-N.csv`` and ``gradebook_details-K-of-N.csv`` instead (see
``shards``).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from .flags import Flag
from .results import CellGrade, NotebookGrade

GRADEBOOK_CSV = "gradebook.csv"
DETAILS_CSV = "gradebook_details.csv"
SUMMARY_COLUMNS = ["student", "notebook", "score", "max_score", "status", "reason", "submitted_as",
                   "content_hash"]
DETAILS_COLUMNS = ["student", "notebook", "cell", "score", "max_score", "status", "reason"]


def details_path(summary_path: Path) -> Path:
    """``gradebook_details-2-of-4.csv`` next to ``gradebook-2-of-4.csv`` (the same suffix)."""
    summary_path = Path(summary_path)
    stem = Path(GRADEBOOK_CSV).stem
    if not summary_path.name.startswith(stem):
        raise ValueError(f"{summary_path.name}: a gradebook's name starts with '{stem}'")
    return summary_path.with_name(Path(DETAILS_CSV).stem + summary_path.name[len(stem):])


def _csv_text(columns: list[str], rows: list[dict]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def gradebook_bytes(rows: Sequence[NotebookGrade]) -> tuple[bytes, bytes]:
    """The two CSV files' contents for ``rows`` (summary, details).

    Summary: one row per student and notebook (``SUMMARY_COLUMNS``). Details: one row per graded
    test cell (status ``graded``, or ``tampered`` when the notebook's points were withheld),
    then one row per flagged line of an answer cell (status ``flagged``, no points: the points
    stay as earned).
    """
    summary = [{key: value for key, value in asdict(row).items() if key in SUMMARY_COLUMNS} for row in rows]
    details = []
    for row in rows:
        cell_status = "tampered" if row.status == "tampered" else "graded"
        details += [{**asdict(cell), "status": cell_status} for cell in row.cells]
        details += [{"student": row.student, "notebook": row.notebook, "cell": flag.cell, "score": "",
                     "max_score": "", "status": "flagged", "reason": f"line {flag.line}: {flag.reason}"}
                    for flag in row.flags]
    return _csv_text(SUMMARY_COLUMNS, summary), _csv_text(DETAILS_COLUMNS, details)


def _write_atomically(path: Path, content: bytes) -> None:
    """Write a file so that a reader (or a crash) sees the old or the new one, never half."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def write_gradebook(rows: Sequence[NotebookGrade], course_dir: Path,
                    summary_name: str = GRADEBOOK_CSV) -> dict[Path, bytes]:
    """Write the details and summary CSV files into ``course_dir``; return ``{path: content}``.

    The details go first and the summary last: a student counts as graded once their rows are
    in the summary (see ``resume``), so a crash between the two loses nothing.
    """
    summary_path = Path(course_dir) / summary_name
    summary, details = gradebook_bytes(rows)
    written = {details_path(summary_path): details, summary_path: summary}
    for path, content in written.items():
        _write_atomically(path, content)
    return written


FLAG_REASON = re.compile(r"^line (\d+): (.*)$", flags=re.S)


def _number(text: str) -> float:
    return float(text) if text else 0.0


def read_gradebook(summary_path: Path) -> list[NotebookGrade]:
    """The rows of a gradebook written by :func:`write_gradebook`, with their cells and flags
    (read from the details file next to it)."""
    summary_path = Path(summary_path)
    with open(summary_path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = set(SUMMARY_COLUMNS) - set(reader.fieldnames or []) - {"content_hash"}  # older ones lack it
        if missing:
            raise ValueError(f"{summary_path} is not a gradebook of this course: no column {sorted(missing)}")
        rows = {(r["student"], r["notebook"]): NotebookGrade(
                    r["student"], r["notebook"], _number(r["score"]), _number(r["max_score"]), r["status"],
                    r["reason"], r["submitted_as"], r.get("content_hash") or "") for r in reader}
    details = details_path(summary_path)
    if not details.exists():
        raise FileNotFoundError(f"{details} is missing (it belongs to {summary_path.name})")
    with open(details, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = set(DETAILS_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{details} is not a gradebook's details file: no column {sorted(missing)}")
        for r in reader:
            row = rows.get((r["student"], r["notebook"]))
            if row is None:  # written just before a crash, for a student not in the summary yet
                continue
            if r["status"] == "flagged":
                match = FLAG_REASON.match(r["reason"])
                if match is None:
                    raise ValueError(f"{details.name}: a flagged row without 'line N: ...': {r['reason'][:80]}")
                row.flags.append(Flag(r["cell"], int(match[1]), match[2]))
            else:
                row.cells.append(CellGrade(r["student"], r["notebook"], r["cell"], _number(r["score"]),
                                           _number(r["max_score"]), r["reason"]))
    return list(rows.values())
