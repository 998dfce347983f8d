"""Where the grading works: the repository, the nbgrader course folder, and the settings.

Layout of the course folder (``grading/`` by default, git-ignored)::

    grading/nbgrader_config.py                  copy of the repository's settings
    grading/source/01_exercises/01_exercises.ipynb          instructor version (with solutions)
    grading/release/01_exercises/01_exercises.ipynb         student version (hand this out)
    grading/submitted/<student>/01_exercises/01_exercises.ipynb   copied from SUBMISSIONS
    grading/autograded/<student>/01_exercises/01_exercises.ipynb  executed and scored
    grading/gradebook.db, gradebook.csv, gradebook_details.csv, logs/<student>.log
    grading/report.html, report_01_exercises.png              what an instructor reads first
    grading/gradebook-2-of-4.csv, gradebook_details-2-of-4.csv  written by `grade --shard 2/4`

While students are graded, nbgrader works in a private copy of this folder per student (see
``isolation``); the grader brings each student's results back here.

Each exercise notebook ``NN_exercises.ipynb`` is its own nbgrader assignment ``NN_exercises``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent.parent  # a clone of the course repository
CONFIG_NAME = "nbgrader_config.py"
CONFIG_FILE = REPO_ROOT / CONFIG_NAME
DEFAULT_COURSE_DIR = REPO_ROOT / "grading"
DEFAULT_EXERCISES_DIR = REPO_ROOT / "notebooks" / "exercises"
EXERCISE_GLOB = "[0-9][0-9]_exercises.ipynb"
DEFAULT_STUDENT_TIMEOUT = 30 * 60  # seconds for all notebooks of one student (a safety net)


def default_jobs() -> int:
    """How many students ``grade`` grades at a time by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def install_config(course_dir: Path, config_file: Path = CONFIG_FILE) -> None:
    """Create the course folder and copy the repository's ``nbgrader_config.py`` into it."""
    if not config_file.exists():
        raise FileNotFoundError(
            f"{config_file} not found: run the instructor commands from a clone of the course repository.")
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_file, course_dir / CONFIG_NAME)


def configured_timeout(config_file: Path = CONFIG_FILE) -> int:
    """The per-cell time limit ``Execute.timeout`` set in ``nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    return int(config.Execute.timeout) if "timeout" in config.Execute else 30


def rmtree(path: Path) -> None:
    """Remove a folder that may hold read-only files (nbgrader's, or a student's)."""

    def make_writable_and_retry(function, name, _error):
        os.chmod(os.path.dirname(name) or ".", 0o700)
        if not os.path.islink(name):
            os.chmod(name, 0o700)
        function(name)

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=make_writable_and_retry)
        else:
            shutil.rmtree(path, onerror=make_writable_and_retry)


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


def released_notebooks(course_dir: Path) -> list[str]:
    """Names (``NN_exercises``) of the notebooks released in ``course_dir``."""
    return sorted(path.parent.name for path in Path(course_dir).glob("source/*/*.ipynb")
                  if path.stem == path.parent.name)
