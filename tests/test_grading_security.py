"""Grading that one student cannot bend: a class of honest, wrong and dishonest submissions.

One class of submissions of a real exercise notebook (the first of notebooks/exercises/) is
graded once; the tests below read the gradebook. Every submission is built from the released
student version with the instructor's solution cells filled in; a "wrong" submission breaks its
first answer (``return None``), and every attacker starts from that wrong submission, so any
point above the wrong student's score would be a point the attack earned. The attacks do not
depend on which exercises the notebook holds.

Students are graded in alphabetical order, two at a time (``--jobs 2``): ``a_honest`` and
``a_wrong`` side by side first (their scores are the fair ones), the attackers (all flagged, so
each is graded alone in its turn), then ``z_honest`` and ``z_wrong``, who must get exactly the
same scores as the first two, whatever the attackers did. An attacker that the scan misses,
running beside honest students, is in test_grading_parallel.py.

Grading writes only into temporary folders: the kernels import a copy of this checkout's
``course_utils`` (``--repo``), and the attackers rewrite that copy, never the checkout.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import shutil
import site
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from grading_fixture import course_clone

from course_utils.grading import flags, isolation, layout, workflow
from course_utils.grading.bench import answered, replace_answer
from course_utils.grading.gradebook import DETAILS_CSV

EXERCISES = sorted(layout.DEFAULT_EXERCISES_DIR.glob(layout.EXERCISE_GLOB))
USER_SITE = Path(site.getusersitepackages())  # off in a virtual environment: safe to write to


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


# --------------------------------------------------------------------------------------------
# Submissions
# --------------------------------------------------------------------------------------------
def first_answer(notebook):
    return next(cell for cell in notebook.cells if nbgrader_meta(cell).get("solution"))


def broken(notebook):
    """``notebook`` with its first answer's solution replaced by ``return None``."""
    return replace_answer(notebook, nbgrader_meta(first_answer(notebook))["grade_id"], ["return None"])


def with_attack(notebook, code: str):
    """``notebook`` with ``code`` run at the end of its first answer cell."""
    notebook = copy.deepcopy(notebook)
    first_answer(notebook).source += "\n\n" + textwrap.dedent(code).strip() + "\n"
    return notebook


NO_OP_CHECKERS = """
for _name in list(globals()):
    if _name.startswith("check_"):
        globals()[_name] = lambda *args, **kwargs: print("all good")
"""


def attacks(repo: Path) -> dict[str, str]:
    """The attacks, by student name: code appended to the first answer cell."""
    return {
        # the first attack: rewrite the checker files (in the repository the course
        # runs from, in the copy the kernel imports, and in the course folder) and write a
        # sitecustomize.py, a usercustomize.py and .pth files next to them
        "b_rewrites_files": f"""
            import pathlib, course_utils
            _targets = [pathlib.Path({str(repo)!r}), pathlib.Path(course_utils.__file__).parents[1]]
            _course_folder = pathlib.Path.cwd().parents[2]
            for _root in _targets:
                for _checker in (_root / "course_utils" / "checks").glob("lesson*.py"):
                    with open(_checker, "a") as _file:
                        _file.write({NO_OP_CHECKERS!r})
            _patch = "import torch\\ntorch.allclose = lambda *args, **kwargs: True\\n"
            for _folder in _targets + [_course_folder]:
                (_folder / "sitecustomize.py").write_text(_patch)
                (_folder / "usercustomize.py").write_text(_patch)
                (_folder / "zz_attack.pth").write_text("import sitecustomize\\n")
            pathlib.Path({str(USER_SITE)!r}).mkdir(parents=True, exist_ok=True)
            (pathlib.Path({str(USER_SITE)!r}) / "zz_attack.pth").write_text("import os\\n")
            """,
        # the second attack: replace the checkers (and fresh_checks) in sys.modules and
        # patch torch.allclose
        "c_replaces_modules": """
            import sys, types, torch
            _fake = types.ModuleType("fake_checks")
            _fake.__getattr__ = lambda name: (lambda *args, **kwargs: print("all good"))
            for _module_name, _module in list(sys.modules.items()):
                if _module_name.startswith("course_utils.checks") and _module is not None:
                    for _name in dir(_module):
                        if _name.startswith("check_"):
                            setattr(_module, _name, lambda *args, **kwargs: print("all good"))
            sys.modules["course_utils.checks"].fresh_checks = lambda lesson: _fake
            torch.allclose = lambda *args, **kwargs: True
            """,
        # the third attack, bare
        "d_patches_allclose": "torch.allclose = lambda *a, **k: True",
        # Tensor methods the comparisons use, patched on the class
        "e_patches_tensor": """
            import torch
            torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)
            torch.Tensor.allclose = lambda self, *args, **kwargs: True
            torch.Tensor.equal = lambda self, *args, **kwargs: True
            torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
            """,
        # change into the repository the course runs from and write there with relative paths
        "f_chdir_writes": f"""
            import os
            os.chdir({str(repo)!r})
            with open("course_utils/checks/_common.py", "a") as _file:
                _file.write("\\nimport torch\\ntorch.allclose = lambda *args, **kwargs: True\\n")
            with open("sitecustomize.py", "w") as _file:
                _file.write("import torch\\ntorch.allclose = lambda *args, **kwargs: True\\n")
            """,
        # make every later cell (the test cells) do nothing
        "g_skips_tests": """
            get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])
            """,
    }


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """Release the first exercise notebook, grade the class once; return what the tests read."""
    if not EXERCISES:
        pytest.skip("no exercise notebooks yet")
    root = tmp_path_factory.mktemp("security")
    repo = course_clone(root / "repo")
    exercises, course, subs = root / "exercises", root / "grading", root / "submissions"
    exercises.mkdir()
    shutil.copyfile(EXERCISES[0], exercises / EXERCISES[0].name)
    name = EXERCISES[0].stem
    workflow.release(course, exercises)

    released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    honest = answered(released, nbformat.read(EXERCISES[0], as_version=4))
    wrong = broken(honest)
    students = {"a_honest": honest, "a_wrong": wrong, "z_honest": honest, "z_wrong": wrong}
    students.update({student: with_attack(wrong, code) for student, code in attacks(repo).items()})
    for student, notebook in students.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(notebook, subs / student / f"{name}.ipynb")

    before = digests(repo)
    rows = workflow.grade(subs, course, exercises_dir=exercises, repo=repo, timeout=60, jobs=2)
    with open(course / DETAILS_CSV, newline="", encoding="utf-8") as file:
        details = list(csv.DictReader(file))
    return {"rows": {row.student: row for row in rows}, "details": details, "repo": repo,
            "before": before, "course": course, "name": name, "attackers": sorted(attacks(repo))}


# --------------------------------------------------------------------------------------------
# Honest and wrong students get exactly what they earn, before and after the attackers
# --------------------------------------------------------------------------------------------
def test_honest_students_get_full_points_before_and_after_the_attackers(graded_class):
    rows = graded_class["rows"]
    for student in ("a_honest", "z_honest"):
        row = rows[student]
        assert (row.status, row.score) == ("graded", row.max_score), row.reason
        assert not row.flags


def test_wrong_students_lose_the_same_points_before_and_after_the_attackers(graded_class):
    rows = graded_class["rows"]
    first, last = rows["a_wrong"], rows["z_wrong"]
    assert first.status == last.status == "graded", (first.reason, last.reason)
    assert 0 <= first.score < first.max_score, "breaking the first answer must cost points"
    assert [(c.cell, c.score) for c in first.cells] == [(c.cell, c.score) for c in last.cells]
    assert first.cells[0].score == 0 and first.cells[0].reason


# --------------------------------------------------------------------------------------------
# Attackers: no points they did not earn, and marked for the instructor
# --------------------------------------------------------------------------------------------
def test_attackers_earn_no_more_than_the_wrong_answer(graded_class):
    rows = graded_class["rows"]
    fair = rows["a_wrong"].score
    report = {s: (rows[s].score, rows[s].status, rows[s].reason[:200]) for s in graded_class["attackers"]}
    print("\nattack matrix (score, status, reason):", *report.items(), sep="\n  ")
    for student in graded_class["attackers"]:
        assert rows[student].score <= fair, report[student]
        assert rows[student].status in ("tampered", "flagged"), report[student]


def test_file_attacks_are_marked_tampered_with_the_file_names(graded_class):
    rows = graded_class["rows"]
    for student in ("b_rewrites_files", "f_chdir_writes"):
        assert rows[student].status == "tampered" and rows[student].score == 0, rows[student].reason
        assert "sitecustomize.py" in rows[student].reason
    reason = rows["b_rewrites_files"].reason
    for name in (", course_utils/checks/lesson01.py", ", sitecustomize.py", "grading/usercustomize.py",
                 f"{USER_SITE}/zz_attack.pth", "(pristine copy) course_utils/checks/lesson01.py",
                 "(pristine copy) sitecustomize.py"):
        assert name in reason, name
    assert "course_utils/checks/_common.py" in rows["f_chdir_writes"].reason


def test_in_process_attacks_are_flagged_with_the_line(graded_class):
    rows = graded_class["rows"]
    expected = {"c_replaces_modules": "assigns to torch.allclose",
                "d_patches_allclose": "assigns to torch.allclose",
                "e_patches_tensor": "assigns to torch.Tensor.__sub__",
                "f_chdir_writes": "os.chdir",
                "g_skips_tests": "get_ipython"}
    details = graded_class["details"]
    for student, reason in expected.items():
        flagged = [d for d in details if d["student"] == student and d["status"] == "flagged"]
        assert any(reason in d["reason"] for d in flagged), (student, flagged)
        assert all(d["score"] == "" for d in flagged)  # a flag costs no points by itself
    for student in ("c_replaces_modules", "d_patches_allclose", "e_patches_tensor", "g_skips_tests"):
        assert rows[student].status == "flagged", rows[student].reason


def test_the_attacked_files_are_restored(graded_class):
    repo, course = graded_class["repo"], graded_class["course"]
    assert digests(repo) == graded_class["before"]
    for folder in (repo, course, USER_SITE):
        for name in ("sitecustomize.py", "usercustomize.py", "zz_attack.pth"):
            assert not (folder / name).exists(), folder / name


def test_honest_details_rows_are_graded_and_unflagged(graded_class):
    details = [d for d in graded_class["details"] if d["student"] in ("a_honest", "z_honest")]
    assert details and all(d["status"] == "graded" and d["reason"] == "" for d in details)


# --------------------------------------------------------------------------------------------
# The pieces, without nbgrader
# --------------------------------------------------------------------------------------------
def test_fresh_checks_refuses_to_check_with_a_patched_torch(tmp_path):
    """In a process of its own (patching torch here would touch the other tests)."""
    script = textwrap.dedent("""
        import torch
        from course_utils.checks import _guard, fresh_checks
        checks = fresh_checks(1)
        assert _guard.tampering() == []
        def sneaky(*args, **kwargs):  # patches torch from inside the student's function
            torch.allclose = lambda *a, **k: True
            raise ValueError("wrong anyway")
        for attack in [lambda: checks.check_rnn_forward(sneaky),
                       lambda: fresh_checks(1)]:
            try:
                attack()
            except AssertionError as error:
                print(error)
        torch.allclose = _guard._CLEAN_STATE["torch.allclose"]
        torch.Tensor.__sub__ = lambda self, other: self
        try:
            fresh_checks(1)
        except AssertionError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 3, lines
    assert all(line.startswith("torch.allclose was replaced by an answer cell") for line in lines[:2])
    assert lines[2].startswith("torch.Tensor.__sub__ was replaced by an answer cell")


def test_fresh_checks_accepts_copies_pickles_and_saves_of_tensors_and_models(tmp_path):
    """Honest answers copy models (``copy.deepcopy(model)``), save and pickle tensors: Python caches
    ``__slotnames__`` on the classes then, which is no tampering."""
    script = textwrap.dedent("""
        import copy, io, pickle
        import torch
        from torch import nn
        from course_utils.checks import _guard, fresh_checks
        model = nn.LSTM(2, 3)
        copy.deepcopy(model)
        copy.copy(torch.ones(2))
        pickle.dumps(torch.ones(2))
        torch.save(model.state_dict(), io.BytesIO())
        copy.deepcopy(nn.Parameter(torch.ones(2)))
        assert "__slotnames__" in vars(torch.Tensor)  # what the guard must not mistake for an attack
        fresh_checks(6)
        print(_guard.tampering())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_restore_undoes_changes_additions_deletions_and_links(tmp_path):
    folder = tmp_path / "code"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "a.py").write_text("a = 1\n")
    (folder / "pkg" / "b.py").write_text("b = 2\n")
    watches = [isolation.Watch(folder)]
    before = isolation.snapshot(watches)
    (folder / "pkg" / "a.py").write_text("a = 666\n")
    (folder / "pkg" / "b.py").unlink()
    (folder / "pkg" / "b.py").symlink_to(tmp_path / "elsewhere.py")
    (folder / "sitecustomize.py").write_text("import os\n")
    (folder / "pkg" / "a.py").chmod(0o400)
    changed = isolation.restore(before, watches)
    assert sorted(Path(p).name for p in changed) == ["a.py", "b.py", "sitecustomize.py"]
    assert isolation.snapshot(watches) == before
    assert not (folder / "pkg" / "b.py").is_symlink()
    assert isolation.restore(before, watches) == []


def test_startup_patterns_watch_only_startup_files(tmp_path):
    (tmp_path / "module.py").write_text("")
    (tmp_path / "x.pth").write_text("")
    (tmp_path / "sitecustomize.py").write_text("")
    watch = isolation.Watch(tmp_path, isolation.STARTUP_FILES)
    assert sorted(Path(p).name for p in isolation.snapshot([watch])) == ["sitecustomize.py", "x.pth"]


@pytest.mark.parametrize("source, reason", [
    ("import torch\ntorch.allclose = lambda *a, **k: True", "assigns to torch.allclose"),
    ("import torch as t\nt.Tensor.add = None", "assigns to t.Tensor.add"),
    ("from torch import nn\nnn.RNN.forward = None", "assigns to nn.RNN.forward"),
    ("import sys\nsys.modules['course_utils.checks'] = None", "assigns to sys.modules"),
    ("import sys\nsys.path.insert(0, '/tmp')", "changes sys.path"),
    ("import torch\nsetattr(torch, 'allclose', max)", "setattr(torch"),
    ("import builtins\ndel builtins.isinstance", "deletes builtins.isinstance"),
    ("open('/tmp/x.py', 'w')", "writes a file outside its own folder"),
    ("open('../../x.py', 'w')", "writes a file outside its own folder"),
    ("import os\nos.chdir('..')", "os.chdir"),
    ("import shutil\nshutil.copy('a', 'b')", "shutil.copy"),
    ("from pathlib import Path\nPath('/x').write_text('')", "write_text"),
    ("!rm -rf ~", "get_ipython"),
    ("exec('x = 1')", "exec"),
    ("import signal as s\ns.signal(2, 1)", "s.signal"),  # a module that starts or stops processes, renamed
    ("torch.allclose = lambda *a, **k: True", "assigns to torch.allclose"),  # torch imported elsewhere
])
def test_scan_flags_tampering(source, reason):
    found = flags.scan_source(source, "answer")
    assert any(reason in str(flag) for flag in found), [str(f) for f in found]


def test_scan_leaves_ordinary_answers_alone():
    source = textwrap.dedent("""
        import torch
        from torch import nn
        def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
            h, outputs = h0, []
            for t in range(x.shape[1]):
                h = torch.tanh(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
                outputs.append(h)
            counts = {}
            counts["steps"] = len(outputs)
            open("notes.txt", "w").write("mine")
            return torch.stack(outputs, dim=1), h
    """)
    assert flags.scan_source(source) == []


def test_kill_leftovers_finds_a_detached_process_by_its_marker():
    token = "test-marker-0123456789"
    env = {**os.environ, "COURSE_UTILS_GRADING_RUN": token}
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                              start_new_session=True)
    try:
        if not Path("/proc").is_dir():
            pytest.skip("needs /proc (Linux)")
        environ = Path(f"/proc/{daemon.pid}/environ")
        deadline = time.monotonic() + 10
        seen = b""
        while time.monotonic() < deadline and token.encode() not in seen:  # a loaded machine may lag
            try:
                seen = environ.read_bytes()
            except OSError as error:
                pytest.skip(f"this system does not let a process read its child's environment ({error})")
            time.sleep(0.05)
        if token.encode() not in seen:
            pytest.skip(f"{environ} never showed the marker ({len(seen)} bytes read): a sandboxed /proc")
        assert isolation.kill_leftovers(token) == 1
        assert daemon.wait(timeout=10) != 0
    finally:
        daemon.kill()
