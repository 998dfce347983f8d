"""Benchmark of grading a class: ``python -m course_utils.bench grading [--students N] [--notebooks N]``.

A class is generated from the course's first exercise notebooks (two by default): each student
hands in the student version with answers filled in, and is one of

- **honest**: the instructor's answers everywhere;
- **wrong**: one exercise answered ``return None`` (a different exercise for each);
- **timing out**: one exercise loops forever (stopped after ``--timeout`` seconds);
- **attacker** (one): rewrites a checker in the course's ``course_utils`` and writes a
  ``sitecustomize.py``, then patches ``torch.allclose`` (flagged, graded alone, ``tampered``).

The class is graded four ways, each from a fresh copy of the same released course folder and a
throw-away clone of the repository: with ``--jobs 1``, with ``--jobs 2`` (``--jobs``), and in two
shards (``--shard 1/2`` and ``--shard 2/2``, each with ``--jobs 2``) joined by ``merge``. It prints
the wall times, the ratio of ``--jobs 2`` to ``--jobs 1`` (target: at most 0.6 on two cores),
and whether all gradebooks are identical byte for byte; the exit code is 0 when every target is
met. It takes about ten minutes on two cores: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ..cli import positive_int
from .gradebook import DETAILS_CSV, GRADEBOOK_CSV, read_gradebook
from .layout import CONFIG_FILE, CONFIG_NAME, DEFAULT_EXERCISES_DIR, EXERCISE_GLOB, REPO_ROOT, default_jobs
from .shards import Shard, merge
from .workflow import grade, release

RATIO_TARGET = 0.6


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def answered(released, instructor):
    """The student version with every answer cell filled in from the instructor version."""
    notebook = copy.deepcopy(released)
    answers = {_meta(c)["grade_id"]: c.source for c in instructor.cells if _meta(c).get("solution")}
    for cell in notebook.cells:
        if _meta(cell).get("grade_id") in answers:
            cell.source = answers[_meta(cell)["grade_id"]]
    return notebook


def replace_answer(notebook, grade_id: str, body: list[str]):
    """``notebook`` with the solution of the answer cell ``grade_id`` replaced by ``body``."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if _meta(cell).get("grade_id") == grade_id:
            lines = cell.source.splitlines()
            begin = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
            end = next(i for i, line in enumerate(lines) if "### END SOLUTION" in line)
            indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
            cell.source = "\n".join(lines[:begin] + [indent + line for line in body] + lines[end + 1:])
    return notebook


ATTACK = """

import pathlib, torch, course_utils
for _root in (pathlib.Path({repo!r}), pathlib.Path(course_utils.__file__).parents[1]):
    _checks = _root / "course_utils" / "checks"
    for _checker in _checks.glob("lesson*.py"):
        _checker.write_text(_checker.read_text() + "\\nimport torch\\ntorch.allclose = lambda *a, **k: True\\n")
    (_root / "sitecustomize.py").write_text("import torch\\ntorch.allclose = lambda *a, **k: True\\n")
torch.allclose = lambda *args, **kwargs: True
"""


def generate_class(folder: Path, course_dir: Path, exercises: Sequence[Path], students: int,
                   repo: Path) -> dict[str, str]:
    """Write ``students`` submissions into ``folder``; return ``{student: kind}``."""
    import nbformat

    honest, answers = {}, []
    for path in exercises:
        released = nbformat.read(course_dir / "release" / path.stem / path.name, as_version=4)
        honest[path.stem] = answered(released, nbformat.read(path, as_version=4))
        answers += [(path.stem, _meta(c)["grade_id"]) for c in honest[path.stem].cells if _meta(c).get("solution")]
    kinds = {}
    wrong = looping = 0
    for index in range(students):
        notebooks = dict(honest)
        if index == students // 2:
            kind = "attacker"
            first = next(c for c in notebooks[exercises[0].stem].cells if _meta(c).get("solution"))
            notebooks[exercises[0].stem] = copy.deepcopy(notebooks[exercises[0].stem])
            next(c for c in notebooks[exercises[0].stem].cells
                 if _meta(c).get("grade_id") == _meta(first)["grade_id"]).source += ATTACK.format(repo=str(repo))
        elif index % 6 == 5:
            kind, (notebook, answer) = "timing_out", answers[looping % len(answers)]
            notebooks[notebook] = replace_answer(notebooks[notebook], answer, ["while True:", "    pass"])
            looping += 1
        elif index % 2 == 1:
            kind, (notebook, answer) = "wrong", answers[wrong % len(answers)]
            notebooks[notebook] = replace_answer(notebooks[notebook], answer, ["return None"])
            wrong += 1
        else:
            kind = "honest"
        student = f"s{index:03d}_{kind}"
        kinds[student] = kind
        for name, notebook in notebooks.items():
            (folder / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, folder / student / f"{name}.ipynb")
    return kinds


def _clone(folder: Path) -> Path:
    """What grading reads from the repository, copied: the attacker rewrites this copy."""
    folder.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "course_utils", folder / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(CONFIG_FILE, folder / CONFIG_NAME)
    return folder


def bench_grading(students: int = 24, notebooks: int = 2, jobs: int = 2, timeout: int = 10,
                  keep: Path | None = None) -> dict[str, object]:
    """Run the benchmark of the module docstring; return its figures."""
    exercises = sorted(DEFAULT_EXERCISES_DIR.glob(EXERCISE_GLOB))[:notebooks]
    if len(exercises) < notebooks:
        raise ValueError(f"--notebooks {notebooks}: the course has {len(exercises)} exercise notebooks")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="grading-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "grading.log"
    repo, base, subs = _clone(work / "repo"), work / "released", work / "submissions"
    (work / "exercises").mkdir()
    for path in exercises:
        shutil.copyfile(path, work / "exercises" / path.name)
    with open(log, "w") as out, contextlib.redirect_stdout(out):
        release(base, work / "exercises")
    kinds = generate_class(subs, base, exercises, students, repo)
    print(f"grading benchmark: {students} students x {notebooks} notebooks "
          f"({', '.join(p.stem for p in exercises)}), --timeout {timeout}, {default_jobs()} cores; "
          f"log: {log}")

    def run(name: str, **options) -> float:
        course = work / name
        shutil.copytree(base, course)
        started = time.perf_counter()
        with open(log, "a") as out, contextlib.redirect_stdout(out):
            print(f"\n===== {name}: {options}")
            grade(subs, course, timeout=timeout, exercises_dir=work / "exercises", repo=repo,
                  progress=False, **options)
        seconds = time.perf_counter() - started
        print(f"  {name:<10} {seconds:7.1f} s   {options}")
        return seconds

    one = run("jobs-1", jobs=1)
    many = run(f"jobs-{jobs}", jobs=jobs)
    shards = [run(f"shard-{k}", jobs=jobs, shard=Shard(k, 2)) for k in (1, 2)]
    merge([work / f"shard-{k}" / Shard(k, 2).gradebook_name for k in (1, 2)], work / "merged")

    def same(a: str, b: str) -> bool:
        return all((work / a / name).read_bytes() == (work / b / name).read_bytes()
                   for name in (GRADEBOOK_CSV, DETAILS_CSV))

    rows = read_gradebook(work / "jobs-1" / GRADEBOOK_CSV)
    honest_full = all(r.score == r.max_score for r in rows if kinds[r.student] == "honest")
    attacker = {r.status for r in rows if kinds[r.student] == "attacker"}
    figures = {"students": students, "notebooks": notebooks, "jobs_1_s": round(one, 1),
               f"jobs_{jobs}_s": round(many, 1), "ratio": round(many / one, 3),
               "identical_jobs": same("jobs-1", f"jobs-{jobs}"), "identical_shards": same("jobs-1", "merged"),
               "shard_s": [round(s, 1) for s in shards], "honest_full_points": honest_full,
               "attacker_tampered": attacker == {"tampered"}}
    counts = {kind: sum(k == kind for k in kinds.values()) for kind in ("honest", "wrong", "timing_out", "attacker")}
    print(f"--jobs {jobs} took {figures['ratio']:.2f} of --jobs 1 (target <= {RATIO_TARGET}: "
          f"{'met' if figures['ratio'] <= RATIO_TARGET else 'missed'})")
    print(f"identical gradebooks, --jobs 1 and --jobs {jobs}: {'yes' if figures['identical_jobs'] else 'NO'}")
    print(f"identical gradebooks, --jobs 1 and --shard 1/2 + --shard 2/2 + merge: "
          f"{'yes' if figures['identical_shards'] else 'NO'}")
    print(f"class: {counts}; honest students at full points: {'yes' if honest_full else 'NO'}; "
          f"attacker tampered: {'yes' if figures['attacker_tampered'] else 'NO'}")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.bench grading",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=positive_int, default=24, help="students in the class (default 24)")
    parser.add_argument("--notebooks", type=positive_int, default=2,
                        help="the course's first N exercise notebooks (default 2)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="jobs of the parallel runs (default 2)")
    parser.add_argument("--timeout", type=positive_int, default=10,
                        help="seconds per cell before a loop is stopped (default 10)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the class, course folders and gradebooks in this folder")
    args = parser.parse_args(argv)
    figures = bench_grading(args.students, args.notebooks, args.jobs, args.timeout, args.keep)
    met = (figures["ratio"] <= RATIO_TARGET and figures["identical_jobs"] and figures["identical_shards"]
           and figures["honest_full_points"] and figures["attacker_tampered"])
    return 0 if met else 1
