"""Every stored notebook holds on any machine and reads well without a kernel (see notebook_hygiene.py).

* no assert compares a measured time with a fixed number (a slower laptop would fail it);
* no stored widget state (``application/vnd.jupyter.widget-state+json``) and no widget views;
* no progress-bar text ("train:   0%|          | 0/313") in the outputs.

The checks themselves are tested on planted examples first, so that they can fail.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from notebook_hygiene import (WIDGET_STATE, WIDGET_VIEW, absolute_time_asserts, progress_residue,
                              strip_kernel_residue, widget_outputs, widget_state)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
NOTEBOOKS = [path for path in NOTEBOOKS if ".ipynb_checkpoints" not in path.parts]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "notebooks"))


# Notebooks known to fail a check until they are re-executed and committed (strict: once fixed,
# the test fails until the entry is removed, so the list cannot go stale).
PENDING: dict[str, str] = {}


def _notebooks():
    return [pytest.param(path, marks=pytest.mark.xfail(strict=True, reason=PENDING[_id(path)]))
            if _id(path) in PENDING else path for path in NOTEBOOKS]


@pytest.mark.parametrize(
    "source",
    [
        "assert result.fit_seconds <= 180",
        "assert fit_seconds <= 180 or device.type != 'cpu'",
        "assert all(r.fit_seconds < 120 for r in runs)",
        "assert time.perf_counter() - start < 5",
        "assert 50000 / per_second < 60",
        "elapsed = time.perf_counter() - start\nassert elapsed < 2.5",
        "total = best.fit_seconds + final.fit_seconds\nassert total <= 900",
        "assert table.loc['lstm', 's / epoch'] < 30",
        "assert 2 < took_ms",
        "%time x = 1\nassert minutes < 15",
    ],
)
def test_the_check_finds_absolute_time_asserts(source):
    assert absolute_time_asserts(source), source


@pytest.mark.parametrize(
    "source",
    [
        "assert slow_seconds > 2 * fast_seconds",  # a ratio of two times of one run
        "assert table.loc['bilstm', 's / epoch'] > 1.2 * table.loc['lstm', 's / epoch']",
        "print(f'{fit_seconds:.0f} s')",  # printed, not asserted
        "assert 0 < predict_sentiment('good ' * 5000, model, vocab) < 1",  # 'sentiment' is not 'time'
        "assert torch.Size(s).numel() == 3",
        "assert len(data) == 20_000",
        "review = ('The first hour is slow')\nassert len(review) > 3",
        "assert test_acc >= 0.86",
    ],
)
def test_the_check_lets_other_asserts_pass(source):
    assert absolute_time_asserts(source) == [], source


def test_time_variables_carry_across_cells():
    tainted: set[str] = set()
    assert absolute_time_asserts("seconds = time.perf_counter() - start", tainted) == []
    assert absolute_time_asserts("assert seconds < 3", tainted)


def _planted_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["widgets"] = {WIDGET_STATE: {"state": {}, "version_major": 2, "version_minor": 0}}
    cell = nbformat.v4.new_code_cell("fit(model)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "abc"},
                                                     "text/plain": "train:   0%|          | 0/313 [00:00<?, ?it/s]"}),
        nbformat.v4.new_output("stream", name="stderr", text="evaluate:  45%|####5     | 9/20 [00:01<00:01,  8.1it/s]\n"),
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1/6: train loss 0.6362\n"),
    ]
    notebook.cells.append(cell)
    return notebook


def test_the_checks_find_planted_residue_and_strip_removes_it():
    notebook = _planted_notebook()
    assert widget_state(notebook) and widget_outputs(notebook) == 1 and len(progress_residue(notebook)) == 2
    cleaned = strip_kernel_residue(copy.deepcopy(notebook))
    assert not widget_state(cleaned) and widget_outputs(cleaned) == 0 and progress_residue(cleaned) == []
    assert [output.text for output in cleaned.cells[0].outputs] == ["epoch 1/6: train loss 0.6362\n"]  # the rest stays


@pytest.mark.parametrize("path", _notebooks(), ids=_id)
def test_no_absolute_time_asserts(path):
    notebook = nbformat.read(path, as_version=4)
    tainted: set[str] = set()
    found = [a for cell in notebook.cells if cell.cell_type == "code" for a in absolute_time_asserts(cell.source, tainted)]
    assert found == [], f"print times, assert only same-run ratios: {found}"


@pytest.mark.parametrize("path", _notebooks(), ids=_id)
def test_no_stored_widgets_or_progress_bars(path):
    notebook = nbformat.read(path, as_version=4)
    fix = f"run: python tests/notebook_hygiene.py notebooks/{_id(path)}"
    assert not widget_state(notebook), f"widget state stored in the metadata ({fix})"
    assert widget_outputs(notebook) == 0, f"widget views stored as outputs ({fix})"
    assert progress_residue(notebook) == [], f"progress bars stored as outputs ({fix})"
