"""Tests of course_utils.instructor / course_utils.grading (release and grade with nbgrader) on a
small fixture course.

The fixture exercise notebook (tests/grading_fixture.py) has three exercises (2, 3 and 5 points),
each a solution cell and a locked test cell with hidden tests, like the course's exercise
notebooks but without torch so that nbgrader runs fast. One `release` and one `grade` (two
students at a time) of a class of made-up students (a perfect one, an untouched student
version, one wrong answer, infinite loops, floods of output, deleted cells, broken JSON, ...)
are shared by the tests of this module.
"""

from __future__ import annotations

import copy
import io
import shutil

import nbformat
import pytest
from grading_fixture import (FULL, POINTS, course_clone, exercise_notebook, read_csv, released_course, save,
                             variant)

from course_utils import instructor
from course_utils.grading import kernel, results, submissions

TIMEOUT = 5  # seconds per cell in these tests: the fixture's cells take milliseconds
STUDENT_LIMIT = 40  # seconds per nbgrader run in the hung-grader test (nbgrader and a kernel start in it)


# --------------------------------------------------------------------------------------------
# One release and one grade, shared
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The fixture course released with the command line: (course folder, exercises, handout)."""
    return released_course(tmp_path_factory)


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory):
    """Grade a made-up class with the command line; return (course, gradebook rows, details)."""
    base, exercises, handout = released
    course = tmp_path_factory.mktemp("graded") / "grading"
    shutil.copytree(base, course)
    blank = nbformat.read(handout / "01_exercises.ipynb", as_version=4)
    perfect = exercise_notebook()
    subs = tmp_path_factory.mktemp("submissions")

    # Five students, each graded by its own nbgrader process (the slow part), so every student
    # carries two cases.
    # a_perfect, one folder per student (the usual LMS download): both notebooks right; 01 also
    # leaves a file behind in its working folder, which must not help e_reader below.
    writer = variant(perfect, add_solution="def add(a, b):\n    open('answer.txt', 'w').write('3')\n"
                                           "    return a + b\n")
    save(subs, "a_perfect/01_exercises.ipynb", writer)
    save(subs, "a_perfect/02_exercises.ipynb", perfect)
    # b_blank: the untouched student version, and a notebook that is not JSON
    save(subs, "b_blank/01_exercises.ipynb", blank)
    save(subs, "b_blank/02_exercises.ipynb", '{"cells": [ this is not json')
    # c_mixed, flat files named by student: 01 has one wrong exercise; 02 lost its setup cell
    # and a test cell (both put back: the points are earned), a whole exercise (answer and
    # test), and raises
    save(subs, "c_mixed_01_exercises.ipynb",
         variant(perfect, square_solution="def square(x):\n    return 2 * x\n"))
    save(subs, "c_mixed_02_exercises.ipynb", variant(
        perfect, drop=("setup", "add_test", "square_solution", "square_test"),
        grid_solution="def grid(rows, cols):\n    raise ValueError('no grids today')\n"))
    # d_troubles: prints a lot (still right), an infinite loop flooding the output, a wrong
    # shape; a renamed file; no 02
    save(subs, "d_troubles/01_exercises (1).ipynb", variant(
        perfect,
        add_solution="def add(a, b):\n    for i in range(50_000):\n        print('line', i)\n"
                     "    return a + b\n",
        square_solution="def square(x):\n    while True:\n        print('x' * 10_000)\n",
        grid_solution="def grid(rows, cols):\n    return [[0] * rows for _ in range(cols)]\n"))
    # e_reader, in nbgrader's own submitted/ layout: gets add right only if it can see the
    # file a_perfect wrote; and a stray notebook that is no exercise
    save(subs, "e_reader/01_exercises/01_exercises.ipynb", variant(
        perfect, add_solution="import os\ndef add(a, b):\n"
                              "    return a + b if os.path.exists('answer.txt') else None\n"))
    save(subs, "e_reader/scratch.ipynb", perfect)
    # ... and a notebook whose cells lost their nbgrader metadata
    bare = copy.deepcopy(perfect)
    for bare_cell in bare.cells:
        bare_cell.metadata = {}
    save(subs, "e_reader/02_exercises.ipynb", bare)

    repo = course_clone(tmp_path_factory.mktemp("repo"))
    code = instructor.main(["grade", str(subs), "--course-dir", str(course), "--repo", str(repo),
                            "--exercises", str(exercises), "--timeout", str(TIMEOUT), "--jobs", "2"])
    assert code == 0
    rows = {(r["student"], r["notebook"]): r for r in read_csv(course / instructor.GRADEBOOK_CSV)}
    details = {(r["student"], r["notebook"], r["cell"]): r
               for r in read_csv(course / instructor.DETAILS_CSV)}
    return course, rows, details


def score(rows, student, notebook="01_exercises"):
    row = rows[(student, notebook)]
    return float(row["score"]), float(row["max_score"]), row["status"]


def cell(details, student, cell_id, notebook="01_exercises"):
    row = details[(student, notebook, cell_id)]
    return float(row["score"]), row["reason"]


# --------------------------------------------------------------------------------------------
# release
# --------------------------------------------------------------------------------------------
def test_release_builds_course_folder(released):
    course, exercises, handout = released
    assert (course / "nbgrader_config.py").read_text() == instructor.CONFIG_FILE.read_text()
    assert (course / "gradebook.db").exists()
    assert instructor.released_notebooks(course) == ["01_exercises", "02_exercises"]
    assert sorted(p.name for p in handout.iterdir()) == ["01_exercises.ipynb", "02_exercises.ipynb"]
    # the instructor versions are left untouched
    kept = nbformat.read(exercises / "01_exercises.ipynb", as_version=4)
    assert [c.source for c in kept.cells] == [c.source for c in exercise_notebook().cells]


@pytest.mark.parametrize("name", ["01_exercises", "02_exercises"])
def test_student_version_has_no_solutions_or_hidden_tests(released, name):
    course, _, handout = released
    text = (handout / f"{name}.ipynb").read_text()
    assert text == (course / "release" / name / f"{name}.ipynb").read_text()
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "SECRET_",
                   "return a + b", "return x * x", "for _ in range(rows)"):
        assert secret not in text, secret
    notebook = nbformat.read(handout / f"{name}.ipynb", as_version=4)
    solutions = [c for c in notebook.cells if c.metadata["nbgrader"].get("solution")]
    tests = [c for c in notebook.cells if c.metadata["nbgrader"].get("grade")]
    assert len(solutions) == 3 and len(tests) == 3
    assert all("raise NotImplementedError()" in c.source for c in solutions)
    assert all("assert" in c.source and c.metadata.get("editable") is False for c in tests)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def test_release_of_unknown_notebook_fails(released, tmp_path):
    _, exercises, _ = released
    with pytest.raises(FileNotFoundError, match="07_exercises"):
        instructor.release(tmp_path / "c", exercises, names=["07_exercises"])


# --------------------------------------------------------------------------------------------
# grade: the scores and reasons
# --------------------------------------------------------------------------------------------
def test_instructor_version_gets_full_points(graded):
    _, rows, _ = graded
    assert score(rows, "a_perfect") == (FULL, FULL, "graded")
    assert score(rows, "a_perfect", "02_exercises") == (FULL, FULL, "graded")
    assert rows[("a_perfect", "01_exercises")]["reason"] == ""


def test_untouched_student_version_gets_zero_without_crashing(graded):
    _, rows, details = graded
    assert score(rows, "b_blank") == (0, FULL, "graded")
    for cell_id in POINTS:
        points, reason = cell(details, "b_blank", cell_id)
        assert points == 0 and reason == "NotImplementedError: not answered yet"


def test_one_wrong_exercise_loses_exactly_its_points(graded):
    _, rows, details = graded
    assert score(rows, "c_mixed") == (FULL - POINTS["square_test"], FULL, "graded")
    assert cell(details, "c_mixed", "square_test") == (0, "AssertionError: square(3) should be 9")
    assert cell(details, "c_mixed", "add_test") == (2, "")
    assert cell(details, "c_mixed", "grid_test") == (5, "")
    assert rows[("c_mixed", "01_exercises")]["submitted_as"] == "c_mixed_01_exercises.ipynb"


def test_infinite_loop_is_cut_off_by_the_timeout(graded):
    _, rows, details = graded
    points, reason = cell(details, "d_troubles", "square_test")
    assert points == 0
    assert reason == f"timed out: ran longer than {TIMEOUT} s and was stopped (an infinite loop?)"


def test_printing_a_lot_still_earns_the_points_and_output_is_capped(graded):
    course, rows, details = graded
    assert cell(details, "d_troubles", "add_test") == (2, "")
    assert cell(details, "d_troubles", "grid_test")[1] == (
        "AssertionError: grid(2, 3) has shape (3, 2), expected (2, 3)")
    assert score(rows, "d_troubles") == (2, FULL, "graded")
    assert rows[("d_troubles", "01_exercises")]["submitted_as"] == "d_troubles/01_exercises (1).ipynb"
    graded_notebook = course / "autograded" / "d_troubles" / "01_exercises" / "01_exercises.ipynb"
    assert graded_notebook.stat().st_size < 500_000  # 500 KB printed by add, a flood by square


def test_deleted_cells_and_exceptions_are_reported(graded):
    _, rows, details = graded
    # the deleted test cell is put back and its points earned; the deleted solution costs its
    # exercise; the exception is named
    assert score(rows, "c_mixed", "02_exercises") == (POINTS["add_test"], FULL, "graded")
    assert cell(details, "c_mixed", "add_test", "02_exercises") == (2, "")
    assert cell(details, "c_mixed", "square_test", "02_exercises") == (
        0, "NameError: name 'square' is not defined")
    assert cell(details, "c_mixed", "grid_test", "02_exercises") == (0, "ValueError: no grids today")
    reason = rows[("c_mixed", "02_exercises")]["reason"]
    assert reason.startswith("put back deleted cells setup, add_test, square_test; "
                             "deleted answer cells square_solution; square_test: NameError")


def test_notebook_without_nbgrader_metadata_is_reported(graded):
    _, rows, _ = graded
    assert score(rows, "e_reader", "02_exercises") == (0, FULL, "invalid")
    assert "carries nbgrader's metadata" in rows[("e_reader", "02_exercises")]["reason"]


def test_invalid_notebook_gets_zero_and_a_reason(graded):
    _, rows, _ = graded
    assert score(rows, "b_blank", "02_exercises") == (0, FULL, "invalid")
    assert rows[("b_blank", "02_exercises")]["reason"].startswith(
        "not a valid notebook file (broken JSON")


def test_one_submission_cannot_change_another_students_grade(graded):
    course, rows, _ = graded
    assert (course / "autograded" / "a_perfect" / "01_exercises" / "answer.txt").exists()
    assert score(rows, "e_reader") == (FULL - POINTS["add_test"], FULL, "graded")


def test_gradebook_has_one_row_per_student_and_notebook(graded):
    course, rows, details = graded
    students = {"a_perfect", "b_blank", "c_mixed", "d_troubles", "e_reader"}
    assert set(rows) == {(s, n) for s in students for n in ("01_exercises", "02_exercises")}
    assert score(rows, "d_troubles", "02_exercises") == (0, FULL, "missing")
    assert rows[("d_troubles", "02_exercises")]["reason"] == "not handed in"
    header = (course / instructor.GRADEBOOK_CSV).read_text().splitlines()[0]
    assert header == "student,notebook,score,max_score,status,reason,submitted_as,content_hash"
    # details: one row per graded test cell of every graded notebook
    graded_notebooks = [key for key, row in rows.items() if row["status"] == "graded"]
    assert len(graded_notebooks) == 7
    assert len(details) == 3 * len(graded_notebooks)


def test_nbgrader_gradebook_agrees_with_the_csv(graded):
    from nbgrader.api import Gradebook, MissingEntry

    course, rows, _ = graded
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for (student, notebook), row in rows.items():
            if row["status"] == "graded":
                assert gradebook.find_submission(notebook, student).score == float(row["score"])
            else:  # no stale score left for nbgrader's own export
                with pytest.raises(MissingEntry):
                    gradebook.find_submission(notebook, student)


def test_a_hung_grader_is_killed_and_the_rest_still_graded(released, tmp_path):
    """The safety net: a kernel that ignores interrupts, a kernel that dies."""
    base, _, _ = released
    course = tmp_path / "grading"
    shutil.copytree(base, course)
    subs = tmp_path / "subs"
    save(subs, "h_hard/01_exercises.ipynb", variant(
        exercise_notebook(),
        square_solution="import signal\ndef square(x):\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                        "    while True:\n        pass\n"))
    save(subs, "h_hard/02_exercises.ipynb", variant(
        exercise_notebook(), square_solution="import os\ndef square(x):\n    os._exit(1)\n"))
    rows = instructor.grade(subs, course, timeout=2, student_timeout=STUDENT_LIMIT,
                            repo=course_clone(tmp_path / "repo"))
    first, second = rows
    # The kernel that ignores interrupts earns nothing for the hung exercise or after it. Either
    # nbgrader's own cell timeout gets past it (and the signal trick is flagged for the
    # instructor), or the per-student limit stops the whole run.
    assert first.score <= POINTS["add_test"]
    assert first.status in ("flagged", "error"), first
    if first.status == "error":
        assert first.reason.startswith(f"grading stopped after {STUDENT_LIMIT} s")
    else:
        assert "signal" in first.reason, first.reason
    assert (second.status, second.score) == ("error", 0)
    assert second.reason.startswith("nbgrader could not grade it: DeadKernelError")


# --------------------------------------------------------------------------------------------
# The pieces, without nbgrader
# --------------------------------------------------------------------------------------------
def test_config_sets_nbgraders_own_timeout():
    text = instructor.CONFIG_FILE.read_text()
    assert "c.Execute.timeout = 60" in text
    assert "ExecutePreprocessor.timeout =" not in text  # nbgrader ignores that one
    assert instructor.configured_timeout() == 60


@pytest.mark.parametrize("raw, expected", [
    ("alice", "alice"), ("Alice Smith_1234_assignsubmission_file_", "Alice_Smith_1234"),
    ("bob [2]", "bob_2"), ("12345", "12345"), ("x@uni.edu", "x@uni.edu"), ("__", ""),
])
def test_student_id(raw, expected):
    assert submissions.student_id(raw) == expected


@pytest.mark.parametrize("stem, expected", [
    ("01_exercises", "01_exercises"), ("01_exercises (1)", "01_exercises"),
    ("alice_01_exercises", "01_exercises"), ("01_exercises-Copy1", "01_exercises"),
    ("101_exercises", None), ("notes", None),
])
def test_match_notebook(stem, expected):
    assert submissions.match_notebook(stem, ["01_exercises", "02_exercises"]) == expected


def test_find_submissions_layouts(tmp_path):
    notebook = exercise_notebook()
    save(tmp_path, "alice/01_exercises.ipynb", notebook)
    save(tmp_path, "alice/old/01_exercises (1).ipynb", notebook)  # the exact name wins
    save(tmp_path, "bob/02_exercises/02_exercises.ipynb", notebook)
    save(tmp_path, "carol_01_exercises.ipynb", notebook)
    save(tmp_path, "01_exercises.ipynb", notebook)  # whose?
    save(tmp_path, "dave/.ipynb_checkpoints/01_exercises-checkpoint.ipynb", notebook)
    save(tmp_path, "dave/homework.ipynb", notebook)
    found, notes = instructor.find_submissions(tmp_path, ["01_exercises", "02_exercises"])
    assert {s: sorted(n) for s, n in found.items()} == {
        "alice": ["01_exercises"], "bob": ["02_exercises"], "carol": ["01_exercises"]}
    assert found["alice"]["01_exercises"] == tmp_path / "alice" / "01_exercises.ipynb"
    assert any("2 files for 01_exercises" in note for note in notes)
    assert any("cannot tell whose" in note for note in notes)
    assert any("dave/homework.ipynb" in note for note in notes)


def test_read_problem(tmp_path):
    good, broken, empty = tmp_path / "good.ipynb", tmp_path / "broken.ipynb", tmp_path / "e.ipynb"
    nbformat.write(exercise_notebook(), good)
    broken.write_text('{"cells": [')
    empty.write_text("")
    assert submissions.read_problem(good) == ""
    assert submissions.read_problem(broken).startswith("not a valid notebook file (broken JSON")
    assert submissions.read_problem(empty).startswith("not a valid notebook file")


def _error(ename, evalue=""):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def test_cell_reasons(tmp_path):
    notebook = exercise_notebook()
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in notebook.cells}
    cells["add_solution"].outputs = [_error("SyntaxError", "invalid syntax (1234.py, line 3)")]
    cells["add_test"].outputs = [_error("NameError", "name 'add' is not defined")]
    cells["square_test"].outputs = [_error("KeyboardInterrupt"), _error("CellTimeoutError")]
    cells["grid_test"].outputs = [nbformat.v4.new_output("stream", name="stderr", text="Warning!\n")]
    cells["setup"].metadata["nbgrader"].update(grade=True, points=1)  # a bare assert fails
    cells["setup"].outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="",
        traceback=["\x1b[0;31mAssertionError\x1b[0m  Traceback", "Cell In[1], line 2\n      1 x = 1\n"
                   "\x1b[0;32m----> 2\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m x \x1b[38;5;241m==\x1b[39m 2\n"])]
    path = tmp_path / "graded.ipynb"
    nbformat.write(notebook, path)
    reasons = results.cell_reasons(path, timeout=7)
    assert reasons == {
        "setup": "AssertionError in `assert x == 2`",
        "add_test": "NameError: name 'add' is not defined (an earlier cell failed: add_solution: "
                    "SyntaxError: invalid syntax (1234.py, line 3))",
        "square_test": "timed out: ran longer than 7 s and was stopped (an infinite loop?)",
        "grid_test": "wrote to stderr, which nbgrader counts as failing: Warning!",
    }


def test_repair_submission_puts_locked_cells_back_in_place(released):
    _, _, handout = released
    student = nbformat.read(handout / "01_exercises.ipynb", as_version=4)
    cut = variant(student, drop=("intro", "square_solution", "square_test"))
    notes = submissions.repair_submission(cut, student)
    assert [c.metadata["nbgrader"]["grade_id"] for c in cut.cells] == [
        "intro", "setup", "add_solution", "add_test", "square_test", "grid_solution", "grid_test"]
    assert notes == ["put back deleted cells intro, square_test", "deleted answer cells square_solution"]
    assert len({c.id for c in cut.cells}) == len(cut.cells)
    assert submissions.repair_submission(cut, student) == ["deleted answer cells square_solution"]


def test_log_reason_finds_the_exception():
    log = (
        "[AutogradeApp | INFO] Autograding x\n"
        "[AutogradeApp | ERROR] There was an error processing assignment: /c/submitted/bob/01_exercises\n"
        "[AutogradeApp | ERROR] Traceback (most recent call last):\n"
        '      File "client.py", line 791, in _async_poll_for_reply\n'
        "        raise CellTimeoutError.error_from_timeout_and_cell(\n"
        "    nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed.\n"
        "    The message was: Timeout waiting for IOPub output.\n"
        "[AutogradeApp | WARNING] Removing failed assignment: /c/autograded/bob/01_exercises\n"
    )
    assert results.log_reason(log, "bob", "01_exercises") == (
        "CellTimeoutError: A cell timed out while it was being executed.")
    assert results.log_reason(log, "bob", "02_exercises") == "nbgrader did not produce a graded notebook"


def test_capped_stream():
    target = io.StringIO()
    stream = kernel._CappedStream(target, limit=10)
    for _ in range(5):
        assert stream.write("abcd") == 4
    assert target.getvalue() == "abcdabcdab\n... [output cut by the grader after 10 characters]\n"
    stream.reset()
    stream.write("new cell")
    assert target.getvalue().endswith("new cell")
    assert stream.getvalue() == target.getvalue()  # everything else is the real stream's


def test_exercise_notebooks_needs_some(tmp_path):
    with pytest.raises(FileNotFoundError, match="no exercise notebooks"):
        instructor.exercise_notebooks(tmp_path)


def test_command_line_help(capsys):
    with pytest.raises(SystemExit):
        instructor.main(["grade", "--help"])
    out = capsys.readouterr().out
    assert "--timeout" in out and "SUBMISSIONS" in out.upper()
