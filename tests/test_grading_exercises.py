"""The course's real exercise notebooks, checked and graded with nbgrader.

Every test is parametrized over notebooks/exercises/NN_exercises.ipynb, so new exercise
notebooks are covered as they appear:

- their nbgrader metadata is valid and follows the course's conventions;
- the student versions `release` generates hold no solution and no hidden test;
- autograding gives the instructor versions full points (and takes < 2 minutes for one
  student's notebooks), the untouched student versions zero, and a submission with one wrong
  exercise (the last one; in the first notebook an infinite loop) that also redefines every
  checker in an answer cell loses exactly that exercise's points.

The notebooks are released once and graded twice (one nbgrader process per student; the
instructor versions beside the untouched student versions, then the wrong ones), against a copy
of this checkout's course_utils (grading restores files a submission changed, and must not
touch the checkout). Attacks on the grader are in test_grading_security.py.
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from grading_fixture import course_clone

from course_utils import instructor
from course_utils.grading.bench import replace_answer

EXERCISES = sorted(instructor.DEFAULT_EXERCISES_DIR.glob(instructor.EXERCISE_GLOB))
NAMES = [path.stem for path in EXERCISES]
GRADE_ID = re.compile(r"^[A-Za-z0-9_]+$")
ONE_STUDENT_LIMIT = 120  # seconds to autograde one student's exercise notebooks


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_cells(notebook) -> list:
    return [cell for cell in notebook.cells if nbgrader_meta(cell).get("grade")]


def solution_cells(notebook) -> list:
    return [cell for cell in notebook.cells if nbgrader_meta(cell).get("solution")]


# --------------------------------------------------------------------------------------------
# Metadata of the instructor versions (fast, no nbgrader run)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXERCISES, ids=NAMES)
def test_nbgrader_metadata(path: Path):
    from nbgrader.nbgraderformat import MetadataValidator

    notebook = nbformat.read(path, as_version=4)
    MetadataValidator().validate_nb(notebook)  # nbgrader's own schema check
    assert notebook.metadata["kernelspec"]["name"] == "python3"

    missing = [i for i, cell in enumerate(notebook.cells) if not nbgrader_meta(cell)]
    assert not missing, f"cells {missing} have no nbgrader metadata (lock them: locked=true)"
    ids = [nbgrader_meta(cell)["grade_id"] for cell in notebook.cells]
    assert len(ids) == len(set(ids)), f"grade_ids are not unique: {sorted(ids)}"
    assert all(GRADE_ID.match(grade_id) for grade_id in ids), ids
    assert all(nbgrader_meta(cell)["schema_version"] == 3 for cell in notebook.cells)

    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "google.colab" in setup.source, "the first code cell must be the setup cell"
    assert nbgrader_meta(setup)["locked"] and not nbgrader_meta(setup)["solution"]

    graded = graded_cells(notebook)
    assert len(graded) >= 3, "an exercise notebook has at least three graded exercises"
    points = [nbgrader_meta(cell).get("points") for cell in graded]
    assert all(isinstance(p, (int, float)) and p > 0 for p in points), points
    assert sum(p > 1 for p in points) > len(points) / 2, f"most exercises are worth > 1 point: {points}"
    for cell in graded:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert cell.cell_type == "code" and nbgrader_meta(cell)["locked"], f"{grade_id} must be locked code"
        assert not nbgrader_meta(cell)["solution"], f"{grade_id}: a test cell is not a solution cell"
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source, grade_id

    solutions = solution_cells(notebook)
    assert solutions, "no solution cells"
    for cell in solutions:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert cell.cell_type == "code" and not nbgrader_meta(cell)["locked"], grade_id
        assert not nbgrader_meta(cell)["grade"], f"{grade_id}: solution cells are not graded here"
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, grade_id

    # every solution cell is followed by a graded test before the next solution cell
    kinds = ["S" if nbgrader_meta(c).get("solution") else "G" if nbgrader_meta(c).get("grade") else ""
             for c in notebook.cells]
    order = "".join(kinds)
    assert "SS" not in order and not order.endswith("S"), f"a solution cell without a test: {order}"


# --------------------------------------------------------------------------------------------
# Submissions made from the instructor versions
# --------------------------------------------------------------------------------------------
def last_exercise(notebook) -> tuple[str, list[str]]:
    """The last solution cell's grade_id and the graded cells after it (its tests)."""
    ids = [nbgrader_meta(cell)["grade_id"] for cell in notebook.cells]
    last = max(i for i, cell in enumerate(notebook.cells) if nbgrader_meta(cell).get("solution"))
    tests = [ids[i] for i, cell in enumerate(notebook.cells) if i > last and nbgrader_meta(cell).get("grade")]
    return ids[last], tests


def one_wrong(notebook, loop: bool = False):
    """The instructor version with the last exercise answered wrongly (``return None``), or
    with an infinite loop in it."""
    answer, _ = last_exercise(notebook)
    return replace_answer(notebook, answer, ["while True:", "    pass"] if loop else ["return None"])


def cheat(notebook):
    """``notebook`` with every checker its tests name redefined as a no-op in the first answer cell
    (if that worked, the wrong exercise's tests would pass)."""
    notebook = copy.deepcopy(notebook)
    checkers = sorted({name for cell in graded_cells(notebook)
                       for name in re.findall(r"\b(check_\w+)\(", cell.source)})
    first_answer = next(cell for cell in notebook.cells if nbgrader_meta(cell).get("solution"))
    first_answer.source += "".join(f"\n\ndef {name}(*args, **kwargs):\n    print('all good')" for name in checkers)
    return notebook


def cell_seconds(path: Path) -> dict[str, float]:
    """Seconds each cell of an executed notebook took (nbclient records the times)."""
    seconds = {}
    for cell in nbformat.read(path, as_version=4).cells:
        times = cell.metadata.get("execution", {})
        if "iopub.execute_input" in times and "shell.execute_reply" in times:
            start, end = (datetime.fromisoformat(times[key].replace("Z", "+00:00"))
                          for key in ("iopub.execute_input", "shell.execute_reply"))
            seconds[nbgrader_meta(cell).get("grade_id", "?")] = (end - start).total_seconds()
    return seconds


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of what grading reads from the repository (course_utils, nbgrader_config.py)."""
    return course_clone(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    if not EXERCISES:
        pytest.skip("no exercise notebooks yet")
    folder = tmp_path_factory.mktemp("real") / "grading"
    instructor.release(folder, instructor.DEFAULT_EXERCISES_DIR)
    return folder


@pytest.fixture(scope="module")
def instructor_run(course, repo, tmp_path_factory):
    """Autograde the instructor versions as one student's submission, timed, beside the untouched
    student versions (two students side by side, as ``grade`` runs on two cores)."""
    subs = tmp_path_factory.mktemp("instructor_subs")
    (subs / "instructor").mkdir()
    (subs / "student").mkdir()
    for path in EXERCISES:
        shutil.copyfile(path, subs / "instructor" / path.name)
        released = course / "release" / path.stem / path.name
        (subs / "student" / path.name).write_bytes(released.read_bytes())
    started = time.perf_counter()
    rows = instructor.grade(subs, course, repo=repo, jobs=2)
    seconds = time.perf_counter() - started
    return {(row.student, row.notebook): row for row in rows}, seconds


@pytest.fixture(scope="module")
def one_wrong_run(course, repo, instructor_run, tmp_path_factory):
    """Autograde the one-wrong-exercise submissions (which also redefine the checkers: one
    submission tests both, one nbgrader run fewer per notebook).

    The per-cell time limit is three times the slowest cell of the instructor run (10 to 60 s),
    so the infinite loop costs little CI time.
    """
    slowest = max(max(cell_seconds(course / "autograded" / "instructor" / name / f"{name}.ipynb").values())
                  for name in NAMES)
    timeout = int(min(60, max(10, math.ceil(3 * slowest))))
    subs = tmp_path_factory.mktemp("student_subs")
    (subs / "one_wrong").mkdir()
    for index, path in enumerate(EXERCISES):
        wrong = cheat(one_wrong(nbformat.read(path, as_version=4), loop=index == 0))
        nbformat.write(wrong, subs / "one_wrong" / path.name)
    rows = instructor.grade(subs, course, timeout=timeout, repo=repo)
    return {(row.student, row.notebook): row for row in rows}, timeout


# --------------------------------------------------------------------------------------------
# release
# --------------------------------------------------------------------------------------------
def hidden_lines(source: str) -> list[str]:
    """Lines between BEGIN and END HIDDEN TESTS that are not also visible."""
    hidden = re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", source, flags=re.S)
    visible = re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", "", source, flags=re.S)
    visible_lines = {line.strip() for line in visible.splitlines()}
    return [line.strip() for block in hidden for line in block.splitlines()
            if line.strip() and line.strip() not in visible_lines and not line.strip().startswith("#")]


@pytest.mark.parametrize("name", NAMES)
def test_student_version_has_no_solutions_or_hidden_tests(course, name):
    instructor_nb = nbformat.read(instructor.DEFAULT_EXERCISES_DIR / f"{name}.ipynb", as_version=4)
    released = course / "release" / name / f"{name}.ipynb"
    text = released.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, marker
    student_nb = nbformat.read(released, as_version=4)
    by_id = {nbgrader_meta(cell)["grade_id"]: cell for cell in student_nb.cells}
    for cell in solution_cells(instructor_nb):
        assert "raise NotImplementedError()" in by_id[nbgrader_meta(cell)["grade_id"]].source
    for cell in graded_cells(instructor_nb):
        student_source = by_id[nbgrader_meta(cell)["grade_id"]].source
        for line in hidden_lines(cell.source):
            assert line not in student_source, f"hidden test left in the student version: {line}"
    assert all(not cell.get("outputs") for cell in student_nb.cells if cell.cell_type == "code")


# --------------------------------------------------------------------------------------------
# grade
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_instructor_version_gets_full_points(instructor_run, name):
    rows, _ = instructor_run
    row = rows[("instructor", name)]
    assert row.status == "graded", row.reason
    assert row.score == row.max_score > 0, row.reason
    assert not row.flags, [str(flag) for flag in row.flags]


def test_autograding_one_students_notebooks_takes_under_two_minutes(course, instructor_run):
    """Timed with a second student beside it: an upper bound on one student's time."""
    _, seconds = instructor_run
    slowest = {name: max(cell_seconds(course / "autograded" / "instructor" / name / f"{name}.ipynb").items(),
                         key=lambda item: item[1]) for name in NAMES}
    report = ", ".join(f"{name}: slowest cell {cell} {s:.1f} s" for name, (cell, s) in sorted(slowest.items()))
    print(f"\nAutograded one student's {len(NAMES)} exercise notebooks (beside another) in {seconds:.1f} s "
          f"({report})")
    assert seconds < ONE_STUDENT_LIMIT, f"{seconds:.0f} s to autograde {len(NAMES)} notebooks"


@pytest.mark.parametrize("name", NAMES)
def test_untouched_student_version_gets_zero(instructor_run, name):
    rows, _ = instructor_run
    row = rows[("student", name)]
    assert row.status == "graded", row.reason
    assert row.score == 0 and row.max_score > 0
    assert all(cell.score == 0 and cell.reason for cell in row.cells)


@pytest.mark.parametrize("name", NAMES)
def test_one_wrong_exercise_loses_exactly_its_points_even_with_checkers_redefined(one_wrong_run, name):
    rows, timeout = one_wrong_run
    row = rows[("one_wrong", name)]  # the instructor version, last exercise wrong, every checker redefined
    _, tests = last_exercise(nbformat.read(instructor.DEFAULT_EXERCISES_DIR / f"{name}.ipynb", as_version=4))
    lost = sum(cell.max_score for cell in row.cells if cell.cell in tests)
    assert lost > 0
    assert row.status == "graded", row.reason
    assert row.score == row.max_score - lost, [(c.cell, c.score, c.reason) for c in row.cells]
    for cell in row.cells:
        if cell.cell in tests:
            assert cell.score == 0 and cell.reason
        else:
            assert cell.score == cell.max_score, cell.reason
    if name == NAMES[0]:  # the infinite loop
        assert any(c.reason.startswith(f"timed out: ran longer than {timeout} s") for c in row.cells)
