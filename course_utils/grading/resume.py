"""Resume a grading run: skip the students whose grade cannot have changed since the last one.

Every gradebook row carries a ``content_hash``: a SHA-256 digest of everything a student's grade
depends on, namely the bytes of each of their submitted notebooks, the course's files that
grading uses (the copy of ``course_utils`` the kernels import, ``nbgrader_config.py``, the
released notebooks and the assignments' tests in ``gradebook.db``), the versions of Python,
PyTorch and nbgrader, and the settings (time limits, the notebooks the class handed in). A second
``grade`` reuses the rows of a student whose digest is unchanged and grades the others; a run
that was interrupted (Ctrl-C, a killed machine) has written every student it finished, so it
goes on where it stopped.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .results import NotebookGrade

DIGITS = 16  # hexadecimal digits kept in the gradebook (64 bits)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _files_digest(folder: Path, digest) -> None:
    """Add the relative names and bytes of every file under ``folder`` to ``digest``."""
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def course_fingerprint(code: Path, config: Path, released: Mapping[str, bytes], definitions: bytes,
                       settings: Iterable[object]) -> str:
    """A digest of the course's side of every grade.

    ``code``: the folder holding the pristine ``course_utils``; ``config``: ``nbgrader_config.py``;
    ``released``: the student versions' bytes by notebook; ``definitions``: a digest of the
    assignments' tests in ``gradebook.db``; ``settings``: anything else the grades depend on
    (time limits, the notebooks handed in).
    """
    digest = hashlib.sha256()
    _files_digest(code, digest)
    digest.update(Path(config).read_bytes())
    for name in sorted(released):
        digest.update(name.encode() + b"\0" + hashlib.sha256(released[name]).digest())
    digest.update(definitions)
    versions = [platform.python_version()] + [_version(p) for p in ("torch", "nbgrader", "nbclient")]
    digest.update(repr([versions, list(settings)]).encode())
    return digest.hexdigest()


def student_hash(course: str, files: Mapping[str, bytes], notebooks: Sequence[str]) -> str:
    """The digest of one student's grade: the course's fingerprint and the student's files
    (``{notebook: bytes}``) among ``notebooks``, the notebooks the class handed in."""
    digest = hashlib.sha256(course.encode())
    for notebook in notebooks:
        content = files.get(notebook)
        digest.update(notebook.encode() + (hashlib.sha256(content).digest() if content is not None else b"-"))
    return digest.hexdigest()[:DIGITS]


def reusable(previous: Sequence[NotebookGrade], hashes: Mapping[str, str],
             notebooks: Sequence[str]) -> dict[str, list[NotebookGrade]]:
    """``{student: rows}`` of the earlier gradebook that still hold: the student is in this run
    (``hashes``), every notebook has its row, and every row's digest is the student's digest."""
    by_student: dict[str, list[NotebookGrade]] = {}
    for row in previous:
        by_student.setdefault(row.student, []).append(row)
    kept = {}
    for student, rows in by_student.items():
        if student in hashes and sorted(r.notebook for r in rows) == sorted(notebooks) \
                and all(r.content_hash == hashes[student] for r in rows):
            kept[student] = sorted(rows, key=lambda r: r.notebook)
    return kept
