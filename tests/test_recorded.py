"""Recorded full-size runs: a command's JSON summary stored with the command that repeats it."""

from __future__ import annotations

import json
import sys

import pytest

from course_utils import recorded


def test_record_runs_the_command_and_keeps_its_last_json_line(tmp_path):
    script = "import json, sys; print('epoch 1 ...'); print(json.dumps({'test_acc': 0.9, 'model': 'x'}))"
    path = recorded.record("tiny", [sys.executable, "-c", script], runs_dir=tmp_path)
    run = recorded.recorded_run("tiny", runs_dir=tmp_path)
    assert path == tmp_path / "tiny.json"
    assert run["summary"] == {"test_acc": 0.9, "model": "x"}
    assert run["command"].endswith(f"-c {json.dumps(script)}") or "test_acc" in run["command"]
    assert "CPU cores" in run["machine"] and run["wall_seconds"] >= 0
    assert set(recorded.recorded_runs(tmp_path)) == {"tiny"}


def test_paths_inside_the_repository_are_stored_relative(tmp_path):
    checkpoint = str(recorded.REPOSITORY_ROOT / "data" / "checkpoints" / "best.pt")
    recorded.save_run("rel", ["python", "-m", "x"], {"checkpoint": checkpoint, "acc": 0.5}, 1.0, runs_dir=tmp_path)
    assert recorded.recorded_run("rel", runs_dir=tmp_path)["summary"] == {"checkpoint": "data/checkpoints/best.pt",
                                                                          "acc": 0.5}


def test_a_command_without_json_or_that_fails_records_nothing(tmp_path):
    with pytest.raises(recorded.RecordedRunError, match="no JSON"):
        recorded.record("none", [sys.executable, "-c", "print('hello')"], runs_dir=tmp_path)
    with pytest.raises(recorded.RecordedRunError, match="exit status 3"):
        recorded.record("fails", [sys.executable, "-c", "raise SystemExit(3)"], runs_dir=tmp_path)
    assert recorded.recorded_runs(tmp_path) == {}


def test_missing_run_and_bad_names_are_one_clear_sentence(tmp_path, capsys):
    with pytest.raises(recorded.RecordedRunError, match="no recorded run named 'nope'"):
        recorded.recorded_run("nope", runs_dir=tmp_path)
    with pytest.raises(ValueError, match="a run's name"):
        recorded.recorded_run("../etc/passwd", runs_dir=tmp_path)
    assert recorded.main(["show", "surely-not-recorded"]) == 2
    assert "error: no recorded run named" in capsys.readouterr().err


def test_every_committed_run_names_its_command_and_summary():
    for name, run in recorded.recorded_runs().items():
        assert run["name"] == name
        assert run["command"].startswith("python -m course_utils."), name
        assert isinstance(run["summary"], dict) and run["summary"], name
