"""Grading a class side by side (``--jobs``), in shards (``--shard``, ``merge``), resumed after an
interruption, and the report.

The coordinator's rule (``course_utils.grading.concurrency``) is tested twice: with stand-in
students and the real guarded files (fast, no nbgrader), and with nbgrader on a class in which an
attacker that the scan does not flag rewrites the other students' sandboxes and the grader's
template while they run beside it. The nbgrader runs use the small fixture notebooks of
tests/grading_fixture.py (no torch) and a few students, to keep CI short.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_fixture import (FULL, POINTS, course_clone, exercise_notebook, read_csv, released_course, save,
                             variant)

from course_utils import instructor
from course_utils.grading import concurrency, flags, gradebook, isolation, report, resume, shards
from course_utils.grading.flags import Flag
from course_utils.grading.results import CellGrade, NotebookGrade

TIMEOUT = 5


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The fixture course (two notebooks) released once: (course folder, exercises folder)."""
    return released_course(tmp_path_factory)[:2]


def fresh_course(released, folder: Path) -> Path:
    shutil.copytree(released[0], folder)
    return folder


# --------------------------------------------------------------------------------------------
# The coordinator's rule, with stand-in students (no nbgrader)
# --------------------------------------------------------------------------------------------
class StandIns:
    """Students whose 'grading' is a pause and, for some, a change to the guarded files."""

    def __init__(self, actions):
        self.actions, self.runs, self.kept, self.discarded = actions, {}, {}, []

    def graded_alone(self, student: str) -> bool:
        return student.startswith("flagged")

    def run(self, student: str) -> concurrency.Outcome:
        self.runs[student] = self.runs.get(student, 0) + 1
        self.actions[student]()
        return concurrency.Outcome(student, [], isolation.SandboxCheck([], False), 0.0)

    def finish(self, outcome, tampered) -> None:
        self.kept[outcome.student] = tampered

    def discard(self, outcome) -> None:
        self.discarded.append(outcome.student)

    def cancel(self, student: str) -> None:
        pass


def test_students_beside_a_change_are_graded_again_alone(tmp_path):
    repo, course, exercises = tmp_path / "repo", tmp_path / "grading", tmp_path / "exercises"
    for folder in (repo / "course_utils", course, exercises):
        folder.mkdir(parents=True)
    sqlite3.connect(course / "gradebook.db").close()
    template = isolation.Template(tmp_path / "run" / "template", "grading")
    template.root.mkdir(parents=True)
    (template.root / "code.py").write_text("pristine = True\n")
    guard = isolation.GuardedFiles(repo, course, exercises, template=template)

    def attack():  # a lasting change to the repository's course_utils
        time.sleep(0.2)
        (repo / "course_utils" / "evil.py").write_text("evil = True\n")
        time.sleep(0.3)

    def undone_in_time():  # a .pth file in the template, there for a moment only
        time.sleep(0.05)
        (template.root / "zz.pth").write_text("import os\n")
        (template.root / "zz.pth").unlink()
        time.sleep(0.3)

    actions = {"a_honest": lambda: time.sleep(1.0), "b_attacker": attack, "c_honest": lambda: time.sleep(0.2),
               "d_undone": undone_in_time, "flagged_e": lambda: time.sleep(0.1)}
    graders = StandIns(actions)
    try:
        schedule = concurrency.grade_students(sorted(actions), graders, guard, jobs=2, say=lambda line: None)
    finally:
        guard.close()
    # every student's last grade was kept once; only the attacker's lists its change
    assert graders.kept == {"a_honest": [], "b_attacker": ["course_utils/evil.py"], "c_honest": [],
                            "d_undone": [], "flagged_e": []}
    assert schedule.alone == ["flagged_e"] and graders.runs["flagged_e"] == 1
    # the attacker and the student that ran beside it were graded again, alone; so was the
    # student whose change was undone before any check, and who ran beside it
    assert {"a_honest", "b_attacker", "d_undone"} <= set(schedule.again)
    assert all(graders.runs[s] == 2 for s in schedule.again)
    assert not (repo / "course_utils" / "evil.py").exists()


# --------------------------------------------------------------------------------------------
# Side by side with nbgrader: an attacker the scan misses
# --------------------------------------------------------------------------------------------
# Rewrites course_utils/grading/kernel.py (which every grading kernel imports when it starts) in
# the grader's template and in every sandbox it can find, for 2 s, so that a kernel started then
# writes to stderr after every cell (0 points). Written through getattr(io, "FileIO"), which the
# scan does not read as a file write: only the coordinator's rule stands in its way.
ATTACK = """
import glob, io, pathlib, time
import course_utils
_run = pathlib.Path(course_utils.__file__).parents[3]
_evil = (b"import sys\\n"
         b"def limit_output(*args, **kwargs):\\n    pass\\n"
         b"def prepare(*args, **kwargs):\\n"
         b"    from IPython import get_ipython\\n"
         b"    get_ipython().events.register('post_run_cell', lambda *a: print('broken', file=sys.stderr))\\n")
for _ in range(10):
    for _path in glob.glob(str(_run / "*" / "code" / "course_utils" / "grading" / "kernel.py")):
        with getattr(io, "FileIO")(_path, "w") as _file:
            _file.write(_evil)
    time.sleep(0.2)
"""


def test_an_attacker_beside_honest_students_changes_no_grade(released, tmp_path, capsys):
    course = fresh_course(released, tmp_path / "grading")
    repo = course_clone(tmp_path / "repo")
    perfect = exercise_notebook()
    attacker = variant(perfect, add_solution="def add(a, b):\n    return a + b\n" + ATTACK)
    student_version = nbformat.read(course / "release" / "01_exercises" / "01_exercises.ipynb", as_version=4)
    assert flags.scan_notebook(attacker, student_version) == []  # graded side by side, not alone
    subs = tmp_path / "subs"
    save(subs, "a_honest/01_exercises.ipynb", perfect)
    save(subs, "a_honest/02_exercises.ipynb", perfect)
    save(subs, "b_attacker/01_exercises.ipynb", attacker)
    save(subs, "c_wrong/01_exercises.ipynb", variant(perfect, square_solution="def square(x):\n    return 2 * x\n"))
    save(subs, "c_wrong/02_exercises.ipynb", variant(perfect, add_solution="def add(a, b):\n    return a - b\n"))
    before = digests(repo)

    rows = instructor.grade(subs, course, timeout=TIMEOUT, exercises_dir=released[1], repo=repo, jobs=2)
    out = capsys.readouterr().out
    scores = {(r.student, r.notebook): (r.status, r.score) for r in rows}
    assert scores[("a_honest", "01_exercises")] == scores[("a_honest", "02_exercises")] == ("graded", FULL)
    assert scores[("b_attacker", "01_exercises")] == ("tampered", 0)
    assert scores[("b_attacker", "02_exercises")] == ("missing", 0)
    assert scores[("c_wrong", "01_exercises")] == ("graded", FULL - POINTS["square_test"])
    assert scores[("c_wrong", "02_exercises")] == ("graded", FULL - POINTS["add_test"])
    attacked = next(r for r in rows if r.student == "b_attacker")
    assert "(pristine copy) course_utils/grading/kernel.py" in attacked.reason
    again = next(line for line in out.splitlines() if line.startswith("graded again alone"))
    assert "b_attacker" in again and len(again.split(", ")) >= 2, out  # with at least one other
    assert digests(repo) == before
    assert (course / "report.html").exists()


# --------------------------------------------------------------------------------------------
# Resume after an interruption; shards and merge
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resumed(released, tmp_path_factory):
    """A class graded by the command line, interrupted with Ctrl-C after its first student, run
    again (twice), and run again after one submission changed. Returns what the tests read."""
    root = tmp_path_factory.mktemp("resume")
    course, repo, subs, temp = fresh_course(released, root / "grading"), course_clone(root / "repo"), \
        root / "subs", root / "tmp"
    temp.mkdir()
    perfect = exercise_notebook()
    save(subs, "p_honest/01_exercises.ipynb", perfect)
    save(subs, "p_honest/02_exercises.ipynb", perfect)
    save(subs, "q_slow/01_exercises.ipynb", variant(  # a window in which to interrupt
        perfect, add_solution="import time\ndef add(a, b):\n    return a + b\ntime.sleep(1)\n"))
    save(subs, "r_wrong/02_exercises.ipynb", variant(perfect, grid_solution="def grid(rows, cols):\n    return []\n"))
    command = ["grade", str(subs), "--course-dir", str(course), "--repo", str(repo), "--exercises",
               str(released[1]), "--timeout", str(TIMEOUT), "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "course_utils.instructor", *command, "--jobs", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(temp)},
                               # Ctrl-C as in a terminal, also when these tests run in the background
                               # (where a shell starts them with SIGINT ignored)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    summary = course / "gradebook.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (summary.exists() and "p_honest" in summary.read_text()):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    interrupted = {"code": process.returncode, "out": out, "err": err, "rows": read_csv(summary),
                   "left": sorted(p.name for p in [*temp.iterdir(), *course.iterdir()])}

    def again(*options):  # in this process: no interpreter to start
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert instructor.main([*command, *options]) == 0
        return {"out": out.getvalue(), "rows": read_csv(summary),
                "bytes": summary.read_bytes() + (course / "gradebook_details.csv").read_bytes()}

    runs = {"interrupted": interrupted, "resumed": again("--jobs", "2"), "unchanged": again()}
    save(subs, "r_wrong/02_exercises.ipynb", perfect)
    runs["changed"] = again()
    return {"course": course, "repo": repo, "subs": subs, "command": command, **runs}


def test_an_interrupted_run_keeps_its_finished_students(resumed):
    interrupted = resumed["interrupted"]
    assert interrupted["code"] == 130, interrupted["err"]
    assert "Interrupted" in interrupted["err"]
    assert {row["student"] for row in interrupted["rows"]} == {"p_honest"}
    assert interrupted["rows"] == [r for r in resumed["resumed"]["rows"] if r["student"] == "p_honest"]
    assert [name for name in interrupted["left"] if "grading-" in name] == []  # its work folders were removed


def test_a_second_run_grades_only_what_is_left_or_changed(resumed):
    assert "1 of 3 students unchanged since their last grade: kept" in resumed["resumed"]["out"]
    assert "Graded 2 of 3 students" in resumed["resumed"]["out"]
    scores = {(r["student"], r["notebook"]): float(r["score"]) for r in resumed["resumed"]["rows"]}
    assert scores == {("p_honest", "01_exercises"): FULL, ("p_honest", "02_exercises"): FULL,
                      ("q_slow", "01_exercises"): FULL, ("q_slow", "02_exercises"): 0,
                      ("r_wrong", "01_exercises"): 0, ("r_wrong", "02_exercises"): FULL - POINTS["grid_test"]}
    unchanged = resumed["unchanged"]
    assert "3 of 3 students unchanged" in unchanged["out"] and "Graded 0 of 3 students" in unchanged["out"]
    assert unchanged["bytes"] == resumed["resumed"]["bytes"]
    changed = resumed["changed"]
    assert "2 of 3 students unchanged" in changed["out"] and "r_wrong: " in changed["out"]
    assert {(r["student"], r["notebook"]): float(r["score"]) for r in changed["rows"]}[
        ("r_wrong", "02_exercises")] == FULL


def test_shards_and_merge_equal_one_run(resumed, released, tmp_path):
    command = resumed["command"]
    for index in (1, 2):
        course = fresh_course(released, tmp_path / f"grading-{index}")
        options = [*command, "--course-dir", str(course), "--shard", f"{index}/2"]
        assert instructor.main(options) == 0
        assert (course / f"gradebook-{index}-of-2.csv").exists() and not (course / "gradebook.csv").exists()
    merged = tmp_path / "merged"
    assert instructor.main(["merge", str(tmp_path / "grading-1" / "gradebook-1-of-2.csv"),
                            str(tmp_path / "grading-2" / "gradebook-2-of-2.csv"), "--course-dir", str(merged)]) == 0
    for name in ("gradebook.csv", "gradebook_details.csv"):
        assert (merged / name).read_bytes() == (resumed["course"] / name).read_bytes(), name
    assert (merged / "report.html").exists()
    # a missing shard, or a student in two, is refused in one line
    assert instructor.main(["merge", str(tmp_path / "grading-1" / "gradebook-1-of-2.csv"),
                            "--course-dir", str(tmp_path / "x")]) == 2
    assert instructor.main(["merge", str(merged / "gradebook.csv"), str(tmp_path / "grading-1" / "gradebook-1-of-2.csv"),
                            "--course-dir", str(tmp_path / "y")]) == 2


# --------------------------------------------------------------------------------------------
# The pieces, without nbgrader
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_cover_the_sorted_class_once(count):
    for size in range(12):
        students = [f"s{i:02d}" for i in reversed(range(size))]
        slices = [shards.Shard(index, count).select(students) for index in range(1, count + 1)]
        assert sum(slices, []) == sorted(students)
        assert max(map(len, slices)) - min(map(len, slices)) <= 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0"])
def test_shard_parse_refuses_nonsense(text):
    with pytest.raises(ValueError, match="expected K/N"):
        shards.Shard.parse(text)


def sample_rows() -> list[NotebookGrade]:
    """A small gradebook: graded, flagged, tampered, missing and invalid rows."""
    def row(student, score, status, reasons=("", "", ""), flags_=(), reason=""):
        cells = [CellGrade(student, "01_exercises", cell, float(points) if not why else 0.0, float(points), why)
                 for (cell, points), why in zip(POINTS.items(), reasons)] if status in ("graded", "flagged", "tampered") else []
        return NotebookGrade(student, "01_exercises", float(score), float(FULL), status, reason, f"{student}.ipynb", "abc",
                             cells, list(flags_))
    shape = "AssertionError: output has shape ({}, 5), expected (5, 3)"
    return [
        row("ann", FULL, "graded"),
        row("bob", 7.0, "graded", ("", shape.format(3), "")),
        row("cat", 7.0, "graded", ("", shape.format(4), "")),
        row("dan", 2.0, "flagged", ("", shape.format(9), "ValueError: <script>alert(1)</script>"),
            [Flag("add_solution", 3, "assigns to torch.allclose")], "flagged for a look: add_solution line 3"),
        row("eve", 0.0, "tampered", reason="changed the course's files (restored): sitecustomize.py"),
        row("fay", 0.0, "missing", reason="not handed in"),
        row("gus", 0.0, "invalid", reason="not a valid notebook file (broken JSON: x)"),
    ]


def test_gradebook_reads_back_what_it_wrote(tmp_path):
    rows = sample_rows()
    written = gradebook.write_gradebook(rows, tmp_path, "gradebook-1-of-3.csv")
    assert [p.name for p in written] == ["gradebook_details-1-of-3.csv", "gradebook-1-of-3.csv"]
    again = gradebook.read_gradebook(tmp_path / "gradebook-1-of-3.csv")
    assert again == rows
    assert gradebook.gradebook_bytes(again) == gradebook.gradebook_bytes(rows)


def test_reusable_rows_need_the_same_hash_and_every_notebook():
    rows = [NotebookGrade("ann", "01_exercises", 1, 1, "graded", content_hash="h1"),
            NotebookGrade("ann", "02_exercises", 1, 1, "graded", content_hash="h1"),
            NotebookGrade("bob", "01_exercises", 1, 1, "graded", content_hash="h2"),
            NotebookGrade("bob", "02_exercises", 1, 1, "graded", content_hash="old"),
            NotebookGrade("cat", "01_exercises", 1, 1, "graded", content_hash="h3")]
    hashes = {"ann": "h1", "bob": "h2", "cat": "h3"}
    kept = resume.reusable(rows, hashes, ["01_exercises", "02_exercises"])
    assert sorted(kept) == ["ann"]  # bob changed, cat lacks a row for 02
    assert resume.student_hash("c", {"01": b"x"}, ["01", "02"]) != resume.student_hash("c", {"01": b"y"}, ["01", "02"])
    assert resume.student_hash("c", {"01": b"x"}, ["01"]) != resume.student_hash("c", {"01": b"x"}, ["01", "02"])


def test_report_shows_distributions_reasons_and_marked_students(tmp_path):
    rows = sample_rows()
    page = report.write_report(rows, tmp_path).read_text()
    assert "01_exercises: 7 students, mean 6.5/10 over the 4 graded (3 graded, 1 flagged, 1 tampered, " \
           "1 missing, 1 invalid)" in page
    # the two shape messages count as one reason (3 students), in its most common wording
    reasons = report.failure_reasons(rows, "01_exercises")
    first = reasons.iloc[0]
    assert (first["exercise"], first["students"], first["variants"]) == ("square_test", 3, 3)
    assert "output has shape (3, 5), expected (5, 3)" in page
    # the tampered and flagged students with their reasons; students' text is escaped
    for text in ("eve", "changed the course's files (restored): sitecustomize.py", "dan",
                 "flagged for a look: add_solution line 3", "gus", "broken JSON"):
        assert text in page, text
    assert "<script>" not in page and "&lt;script&gt;" in page
    exercises = report.exercise_table(rows, "01_exercises")
    assert list(exercises["full"]) == [4, 1, 3] and list(exercises["none"]) == [0, 3, 1]
    picture = tmp_path / "report_01_exercises.png"
    assert 'src="report_01_exercises.png"' in page
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000


def test_restoring_the_tests_keeps_what_was_graded_since(released, tmp_path):
    """A student who rewrites the hidden tests in gradebook.db gets them restored, while the
    grades written there since the snapshot (by students beside them) stay."""
    database, backup = tmp_path / "gradebook.db", tmp_path / "backup.db"
    shutil.copyfile(released[0] / "gradebook.db", database)
    shutil.copyfile(database, backup)
    tests = isolation.definitions_digest(database)
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO student (id) VALUES ('graded_since')")
        connection.execute("UPDATE source_cell SET source = 'pass'")
    connection.close()
    assert isolation.definitions_digest(database) != tests
    isolation.restore_definitions(database, backup)
    assert isolation.definitions_digest(database) == tests
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT id FROM student").fetchall() == [("graded_since",)]
    connection.close()
