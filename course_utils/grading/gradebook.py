"""Write the gradebook: ``gradebook.csv`` (one row per student and exercise notebook) and
``gradebook_details.csv`` (one row per graded test cell, and one per flagged answer cell)."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from .results import NotebookGrade

GRADEBOOK_CSV = "gradebook.csv"


DETAILS_CSV = "gradebook_details.csv"



SUMMARY_COLUMNS = ["student", "notebook", "score", "max_score", "status", "reason", "submitted_as"]
DETAILS_COLUMNS = ["student", "notebook", "cell", "score", "max_score", "status", "reason"]


def write_gradebook(rows: Sequence[NotebookGrade], course_dir: Path) -> tuple[Path, Path]:
    """Write the two CSV files into ``course_dir``; return their paths.

    ``gradebook.csv``: one row per student and notebook (``SUMMARY_COLUMNS``).
    ``gradebook_details.csv``: one row per graded test cell (status ``graded``, or ``tampered``
    when the notebook's points were withheld), then one row per flagged line of an answer cell
    (status ``flagged``, no points: the points stay as earned).
    """
    summary_path, details_path = Path(course_dir) / GRADEBOOK_CSV, Path(course_dir) / DETAILS_CSV
    with open(summary_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: value for key, value in asdict(row).items() if key in SUMMARY_COLUMNS})
    with open(details_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=DETAILS_COLUMNS)
        writer.writeheader()
        for row in rows:
            cell_status = "tampered" if row.status == "tampered" else "graded"
            for cell in row.cells:
                writer.writerow({**asdict(cell), "status": cell_status})
            for flag in row.flags:
                writer.writerow({"student": row.student, "notebook": row.notebook, "cell": flag.cell,
                                 "score": "", "max_score": "", "status": "flagged",
                                 "reason": f"line {flag.line}: {flag.reason}"})
    return summary_path, details_path
