"""Tests of ``python -m course_utils.train`` on a tiny fake aclImdb folder (never the full data)."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_utils import train
from course_utils.predict import load_predictor
from course_utils.training import accuracy_of, truncate

GOOD = ["great", "wonderful", "loved", "brilliant", "moving", "superb"]
BAD = ["awful", "boring", "hated", "terrible", "dull", "waste"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "a", "and", "it", "scene"]


def write_tiny_imdb(root: Path, per_folder: int = 24) -> Path:
    """An aclImdb-shaped folder: short reviews whose sentiment words give the label away."""
    rng = random.Random(0)
    folder = root / "aclImdb"
    for split in ("train", "test"):
        for name, words in (("pos", GOOD), ("neg", BAD)):
            directory = folder / split / name
            directory.mkdir(parents=True)
            for i in range(per_folder):
                tokens = rng.choices(NEUTRAL, k=rng.randint(4, 12)) + rng.choices(words, k=2)
                rng.shuffle(tokens)
                rating = rng.choice([7, 8, 9, 10] if name == "pos" else [1, 2, 3, 4])
                (directory / f"{i}_{rating}.txt").write_text(" ".join(tokens) + ".<br />", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_imdb(tmp_path_factory):
    return write_tiny_imdb(tmp_path_factory.mktemp("imdb"))


@pytest.fixture(scope="module")
def small_imdb(tmp_path_factory):
    return write_tiny_imdb(tmp_path_factory.mktemp("imdb"), per_folder=100)


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path, monkeypatch):
    """Checkpoints and caches of these tests go to a temporary folder, never to the repository's data/."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IMDB_ARCHIVE", raising=False)


def run_main(capsys, *args):
    code = train.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prepare_imdb_on_a_tiny_folder(tiny_imdb):
    data = train.prepare_imdb(folder=tiny_imdb)
    assert (len(data.train), len(data.valid), len(data.test)) == (39, 9, 48)  # a fifth for validation
    assert data.vocab.itos[:2] == ["<pad>", "<unk>"]
    assert all(len(ids) > 0 for ids, _ in data.train + data.valid + data.test)
    limited = train.prepare_imdb(folder=tiny_imdb, limit=20)
    assert (len(limited.train), len(limited.valid), len(limited.test)) == (16, 4, 20)
    assert sum(label for _, label in limited.test) == 10  # balanced


def test_json_output_has_every_field(capsys, tiny_imdb, tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    code, out, err = run_main(capsys, "--model", "lstm", "--imdb-folder", tiny_imdb, "--epochs", "2",
                              "--json", "--no-progress", "--checkpoint", checkpoint)
    assert code == 0
    result = json.loads(out)  # stdout is exactly one JSON object
    for key in ("model", "epochs", "val_acc", "test_acc", "seconds_per_epoch", "reviews_per_second", "parameters"):
        assert key in result, key
    assert result["model"] == "lstm" and result["epochs"] == 2
    assert len(result["val_acc"]) == 2 and all(0 <= a <= 1 for a in result["val_acc"])
    assert 0 <= result["test_acc"] <= 1
    assert result["parameters"] > 0 and result["seconds_per_epoch"] > 0 and result["reviews_per_second"] > 0
    # however short the run, the two speeds agree: seconds per epoch x reviews per second = training reviews
    reviews = result["seconds_per_epoch"] * result["reviews_per_second"]
    assert abs(reviews - result["train_reviews"]) < 0.01 * result["train_reviews"], result
    assert "epoch 2/2" in err  # the progress lines went to stderr
    assert Path(result["checkpoint"]) == checkpoint and checkpoint.exists()
    predictor = load_predictor(checkpoint)
    assert 0 < predictor("a great and wonderful film") < 1


def test_a_small_task_is_learned(capsys, small_imdb, tmp_path):
    code, out, _ = run_main(capsys, "--model", "lstm", "--imdb-folder", small_imdb, "--epochs", "10",
                            "--json", "--no-progress")
    result = json.loads(out)
    assert result["test_acc"] >= 0.9, result
    assert max(result["val_acc"]) == result["val_acc"][result["best_epoch"] - 1]
    assert Path(result["checkpoint"]) == tmp_path / "data" / "checkpoints" / "lstm.pt"  # the default place


def test_refit_trains_on_train_and_valid_without_validation(capsys, tiny_imdb, tmp_path):
    code, out, err = run_main(capsys, "--model", "gru", "--imdb-folder", tiny_imdb, "--epochs", "2",
                              "--json", "--no-progress", "--refit")
    assert code == 0
    result = json.loads(out)
    assert result["refit"] is True and result["epochs"] == 2 and result["best_epoch"] == 2
    assert result["val_acc"] == [] and 0 <= result["test_acc"] <= 1
    assert result["train_reviews"] == 39 + 9  # the training and the validation reviews
    assert Path(result["checkpoint"]) == tmp_path / "data" / "checkpoints" / "gru-refit.pt"
    assert "no validation" in err
    plain = json.loads(run_main(capsys, "--model", "gru", "--imdb-folder", tiny_imdb, "--epochs", "1",
                                "--json", "--no-progress")[1])
    assert plain["refit"] is False and plain["train_reviews"] == 39 and len(plain["val_acc"]) == 1


def test_plain_output_without_json(capsys, tiny_imdb):
    code, out, err = run_main(capsys, "--model", "rnn", "--imdb-folder", tiny_imdb, "--epochs", "1", "--no-progress")
    assert code == 0
    assert "epoch 1/1" in out and "test accuracy" in out


def assert_one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--model", "transformer"], ["invalid choice", *train.RECIPES]),
        ([], ["--model", *train.RECIPES]),
        (["--model", "lstm", "--epochs", "0"], ["--epochs", "positive integer"]),
        (["--model", "lstm", "--epochs", "two"], ["--epochs", "positive integer"]),
        (["--model", "lstm", "--limit", "-5"], ["--limit", "positive integer"]),
        (["--model", "lstm", "--learning-rate", "1"], ["unrecognized arguments", "--epochs", "--json"]),
    ],
)
def test_argument_errors_are_one_line_with_the_choices(capsys, args, fragments):
    with pytest.raises(SystemExit) as exit_info:
        train.main(args)
    assert exit_info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)


def test_a_folder_that_is_not_aclimdb(capsys, tmp_path):
    code, out, err = run_main(capsys, "--model", "lstm", "--imdb-folder", tmp_path)
    assert code == 2
    assert_one_line_error(err, "not an aclImdb folder")


def test_train_model_refuses_unknown_names(tiny_imdb):
    data = train.prepare_imdb(folder=tiny_imdb)
    with pytest.raises(ValueError, match="lstm"):
        train.train_model("transformer", data)


def test_a_result_predicts_any_split_as_it_was_tested(tiny_imdb):
    data = train.prepare_imdb(folder=tiny_imdb)
    result = train.train_model("best", data, epochs=1, save=False, progress=False, log=None)
    assert torch.allclose(result.probabilities(data.test), result.test_probabilities)
    assert result.test_acc == pytest.approx(accuracy_of(result.test_probabilities, [label for _, label in data.test]))
    recipe = train.RECIPES["best"]
    cut = recipe.shorten([(list(range(recipe.max_len + 10)), 1)])
    assert cut == [(truncate(list(range(recipe.max_len + 10)), recipe.max_len, recipe.head), 1)]
    assert len(cut[0][0]) == recipe.max_len


def test_module_runs_as_a_command(tiny_imdb, tmp_path):
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path / "data")}
    env.pop("IMDB_ARCHIVE", None)
    ok = subprocess.run(
        [sys.executable, "-m", "course_utils.train", "--model", "gru", "--imdb-folder", str(tiny_imdb),
         "--epochs", "1", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["model"] == "gru"
    bad = subprocess.run([sys.executable, "-m", "course_utils.train", "--model", "nope"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert_one_line_error(bad.stderr, "invalid choice", "bilstm")
