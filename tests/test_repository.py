"""Repository-wide conventions: README badges, the setup cell, no torchtext, requirements."""

from __future__ import annotations

import json
import re
from pathlib import Path

import shutil

import pytest

from course_utils import course

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL_NOTEBOOKS = CHAPTERS + sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def test_lessons_are_numbered_in_order_and_each_has_its_exercises():
    numbers = [p.name[:2] for p in CHAPTERS]
    assert numbers == [f"{n:02d}" for n in range(1, len(CHAPTERS) + 1)]
    assert len(CHAPTERS) >= 6
    for number in numbers:
        assert (ROOT / "notebooks" / "exercises" / f"{number}_exercises.ipynb").exists()
        assert (ROOT / "course_utils" / "checks" / f"lesson{number}.py").exists()
        assert (ROOT / "tests" / f"test_checks_lesson{number}.py").exists()


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_readme_links_and_colab_badge(notebook):
    readme = (ROOT / "README.md").read_text()
    path = f"notebooks/{notebook.name}"
    assert f"]({path})" in readme, f"README does not link {path}"
    badge = f"https://colab.research.google.com/github/{course.REPOSITORY}/blob/main/{path}"
    assert badge in readme, f"README has no Colab badge for {path}"


def test_readme_links_point_at_existing_files():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?:notebooks|course_utils|tests)/[^)#]+)\)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


@pytest.mark.parametrize("notebook", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_setup_cell(notebook):
    first = code_cells(notebook)[0]
    assert "google.colab" in first and "pip" in first, "first cell must install course_utils on Colab"
    assert "torch.manual_seed" in first, "first cell must set the seed"
    assert f"git+https://github.com/{course.REPOSITORY}" in first, "first cell must install from course.REPOSITORY"
    assert "print_versions(device)" in first, "first cell must print the versions"


def test_readme_and_every_notebook_name_one_repository():
    for path in course.course_files():
        named = course.repositories_named(path)
        assert named <= {course.REPOSITORY}, f"{path.name} names {named - {course.REPOSITORY}}"
    assert course.repositories_named(ROOT / "README.md") == {course.REPOSITORY}


def test_set_repository_points_every_badge_and_setup_cell_at_a_fork(tmp_path):
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    module = tmp_path / "course.py"
    shutil.copy(Path(course.__file__), module)

    changed = course.set_repository("someone/my-fork", root=tmp_path, module=module)

    assert len(changed) == len(course.course_files(tmp_path))
    for path in course.course_files(tmp_path):
        assert course.repositories_named(path) == {"someone/my-fork"}, path.name
        json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".ipynb" else None
    assert 'REPOSITORY = "someone/my-fork"' in module.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="OWNER/NAME"):
        course.set_repository("not a repository", root=tmp_path, module=module)


def test_versions_line_names_what_a_result_depends_on():
    line = course.versions_line("cpu")
    for part in ("Python 3.", "PyTorch 2.", "ipywidgets", "course_utils", "device: cpu"):
        assert part in line


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_chapters_are_stored_executed_in_order(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    counts = [c["execution_count"] for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert None not in counts, "some code cells were never run"
    assert counts == sorted(counts), "cells were run out of order"
    errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, "a stored output is an error"


def test_no_torchtext_anywhere():
    """torchtext is deprecated: nothing imports it and nothing installs it."""
    importers = [
        path.name
        for path in [*ROOT.glob("course_utils/**/*.py"), *ALL_NOTEBOOKS]
        if re.search(r"(import|from)\s+torchtext", path.read_text(encoding="utf-8"))
    ]
    assert not importers
    assert "torchtext" not in (ROOT / "requirements.txt").read_text()
    assert "torchtext" not in (ROOT / "pyproject.toml").read_text()


def test_requirements_keep_colab_packages_and_the_cpu_torch():
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch>=2\.\d+$", requirements, re.MULTILINE), "torch must be a range that 2.13.0 satisfies"
    assert re.search(r"^ipywidgets>=7\.7$", requirements, re.MULTILINE), "Colab ships ipywidgets 7.7"
    assert re.search(r"^-e \.$", requirements, re.MULTILINE), "requirements must install course_utils"
    assert "==" not in requirements, "ranges, not pins"
