"""What the grading tests share: a small fixture exercise notebook in nbgrader format, and a
throw-away copy of what grading reads from the repository.

The fixture notebook has three exercises (2, 3 and 5 points), each a solution cell and a locked
test cell with hidden tests, like the course's exercise notebooks but without torch, so that
nbgrader runs fast.
"""

from __future__ import annotations

import copy
import csv
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.grading import layout
from course_utils.grading.layout import CONFIG_NAME

POINTS = {"add_test": 2, "square_test": 3, "grid_test": 5}
FULL = sum(POINTS.values())


# --------------------------------------------------------------------------------------------
# A fixture exercise notebook in nbgrader format
# --------------------------------------------------------------------------------------------
def _meta(grade_id, *, grade=False, solution=False, locked=True, points=None):
    nbgrader = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                "solution": solution, "task": False}
    if points is not None:
        nbgrader["points"] = points
    return {"nbgrader": nbgrader}


def _solution(grade_id, name, doc, body):
    source = f'def {name}:\n    """{doc}"""\n    ### BEGIN SOLUTION\n    {body}\n    ### END SOLUTION\n'
    return new_code_cell(source, metadata=_meta(grade_id, solution=True, locked=False))


def _test(grade_id, visible, hidden):
    source = f"{visible}\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS\nprint('passed')"
    return new_code_cell(source, metadata=_meta(grade_id, grade=True, points=POINTS[grade_id]))


def exercise_notebook() -> nbformat.NotebookNode:
    """Instructor version: setup cell, then three exercises with visible and hidden tests."""
    cells = [
        new_markdown_cell("# Fixture exercises", metadata=_meta("intro")),
        new_code_cell("import math\nprint('setup done')", metadata=_meta("setup")),
        _solution("add_solution", "add(a, b)", "Return a + b.", "return a + b"),
        _test("add_test", 'assert add(1, 2) == 3, "add(1, 2) should be 3"',
              'assert add(-7, 7) == 0, "SECRET_ADD_CHECK"'),
        _solution("square_solution", "square(x)", "Return x squared.", "return x * x"),
        _test("square_test", 'assert square(3) == 9, "square(3) should be 9"',
              'assert square(-4) == 16, "SECRET_SQUARE_CHECK"'),
        _solution("grid_solution", "grid(rows, cols)", "A rows x cols list of lists of zeros.",
                  "return [[0] * cols for _ in range(rows)]"),
        _test("grid_test",
              "g = grid(2, 3)\nshape = (len(g), len(g[0]))\n"
              'assert shape == (2, 3), f"grid(2, 3) has shape {shape}, expected (2, 3)"',
              'assert len(grid(4, 1)) == 4, "SECRET_GRID_CHECK"'),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook


def variant(notebook, drop=(), **sources):
    """A copy of ``notebook`` with the cells named in ``sources`` rewritten and ``drop`` deleted."""
    notebook = copy.deepcopy(notebook)
    notebook.cells = [cell for cell in notebook.cells
                      if cell.metadata["nbgrader"]["grade_id"] not in drop]
    for cell in notebook.cells:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        if grade_id in sources:
            cell.source = sources[grade_id]
    return notebook


def save(folder: Path, relative: str, notebook) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, str):
        path.write_text(notebook)
    else:
        nbformat.write(notebook, path)


def course_clone(folder: Path) -> Path:
    """A copy of what grading reads from the repository (course_utils, nbgrader_config.py).

    Grading restores the repository's files that a submission changed; the tests grade against
    this copy, so that they never write into the checkout (where others may be editing).
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(layout.REPO_ROOT / "course_utils", folder / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(layout.CONFIG_FILE, folder / CONFIG_NAME)
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


_RELEASED: dict[str, tuple[Path, Path, Path]] = {}


def released_course(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The fixture course (two notebooks, and a notebook that is no exercise) released once per
    test session with the command line: (course folder, exercises folder, handout folder).

    Shared by the test modules that grade the fixture; copy the course folder before grading in it.
    """
    if "course" not in _RELEASED:
        from course_utils import instructor

        root = tmp_path_factory.mktemp("course")
        exercises, course, handout = root / "exercises", root / "grading", root / "handout"
        exercises.mkdir()
        for name in ("01_exercises.ipynb", "02_exercises.ipynb"):
            nbformat.write(exercise_notebook(), exercises / name)
        (exercises / "notes.ipynb").write_text("{}")  # not an exercise notebook: ignored
        code = instructor.main(["release", "--course-dir", str(course), "--exercises", str(exercises),
                                "--out", str(handout)])
        assert code == 0
        _RELEASED["course"] = (course, exercises, handout)
    return _RELEASED["course"]
