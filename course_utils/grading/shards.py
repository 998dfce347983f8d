"""Split a class across machines: ``grade --shard K/N``, then ``merge``.

A scheduler that already exists (a Slurm job array, a GitHub Actions matrix) starts N copies of
the same ``grade`` command, each with its own ``--shard K/N``; each grades the K-th of N slices
of the students sorted by id, into ``gradebook-K-of-N.csv`` (and its details file).
``python -m course_utils.instructor merge gradebook-*.csv`` then joins them into one gradebook,
the same as one run over the whole class would have written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .gradebook import GRADEBOOK_CSV, read_gradebook, write_gradebook
from .results import NotebookGrade

SHARD_NAME = re.compile(r"-(\d+)-of-(\d+)\.csv$")


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 1) of ``count`` slices of a class."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"2/4"`` -> ``Shard(2, 4)``; a one-line ``ValueError`` for anything else."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise ValueError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
        return cls(int(match[1]), int(match[2]))

    def select(self, students: Sequence[str]) -> list[str]:
        """This shard's students: a contiguous slice of the sorted ids; the N slices differ in
        size by one at most and together hold every student once."""
        ordered = sorted(students)
        start = (self.index - 1) * len(ordered) // self.count
        end = self.index * len(ordered) // self.count
        return ordered[start:end]

    @property
    def gradebook_name(self) -> str:
        """``gradebook-2-of-4.csv``."""
        return f"{Path(GRADEBOOK_CSV).stem}-{self.index}-of-{self.count}.csv"


def merge(gradebooks: Sequence[Path], out_dir: Path) -> list[NotebookGrade]:
    """Join the gradebooks of the shards into ``out_dir/gradebook.csv`` (and its details).

    Refuses, in one line, a student graded in two of them, and shards missing from a set named
    ``gradebook-K-of-N.csv``. Returns the rows, sorted as ``grade`` sorts them.
    """
    if not gradebooks:
        raise ValueError("merge: no gradebooks given (e.g. grading-*/gradebook-*.csv)")
    rows: dict[tuple[str, str], NotebookGrade] = {}
    source: dict[str, Path] = {}
    for path in gradebooks:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"merge: {path} not found")
        for row in read_gradebook(path):
            if source.setdefault(row.student, path) != path:
                raise ValueError(f"merge: {row.student} is in both {source[row.student]} and {path}")
            rows[(row.student, row.notebook)] = row
    named = [SHARD_NAME.search(Path(path).name) for path in gradebooks]
    counts = {int(match[2]) for match in named if match}
    if len(counts) > 1:
        raise ValueError(f"merge: these gradebooks come from different splits (of {sorted(counts)})")
    if counts and all(named):
        count = counts.pop()
        missing = sorted(set(range(1, count + 1)) - {int(match[1]) for match in named})
        if missing:
            raise ValueError(f"merge: shard(s) {', '.join(map(str, missing))} of {count} missing")
    merged = [rows[key] for key in sorted(rows)]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_gradebook(merged, Path(out_dir))
    return merged
