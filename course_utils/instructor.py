"""Hand out and grade the exercise notebooks: ``python -m course_utils.instructor release|grade|merge``.

Run from a clone of the course repository::

    python -m course_utils.instructor release             # student versions of notebooks/exercises/
    python -m course_utils.instructor grade SUBMISSIONS   # autograde + CSV gradebook + report.html
    python -m course_utils.instructor merge grading-*/gradebook-*.csv   # join shards (--shard K/N)

The code lives in the package ``course_utils.grading``, one module per job (finding submissions,
running nbgrader, reading its results, writing the gradebook, keeping students apart); this
module is the command's stable name and re-exports what scripts use.
"""

from __future__ import annotations

import sys

from .grading.cli import main
from .grading.gradebook import DETAILS_CSV, GRADEBOOK_CSV, write_gradebook
from .grading.kernel import limit_output
from .grading.layout import (CONFIG_FILE, DEFAULT_COURSE_DIR, DEFAULT_EXERCISES_DIR, EXERCISE_GLOB,
                             REPO_ROOT, configured_timeout, exercise_notebooks, released_notebooks)
from .grading.results import CellGrade, NotebookGrade
from .grading.shards import Shard, merge
from .grading.submissions import find_submissions
from .grading.workflow import grade, release

__all__ = ["CONFIG_FILE", "DEFAULT_COURSE_DIR", "DEFAULT_EXERCISES_DIR", "DETAILS_CSV", "EXERCISE_GLOB",
           "GRADEBOOK_CSV", "REPO_ROOT", "CellGrade", "NotebookGrade", "Shard", "configured_timeout",
           "exercise_notebooks", "find_submissions", "grade", "limit_output", "main", "merge", "release",
           "released_notebooks", "write_gradebook"]

if __name__ == "__main__":
    sys.exit(main())
