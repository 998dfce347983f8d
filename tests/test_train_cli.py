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
from course_utils.baselines import stars_of_class
from course_utils.data import load_imdb_ratings, train_valid_split
from course_utils.predict import load_predictor
from course_utils.training import accuracy_of, load_checkpoint, truncate

GOOD = ["great", "wonderful", "loved", "brilliant", "moving", "superb"]
BAD = ["awful", "boring", "hated", "terrible", "dull", "waste"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "a", "and", "it", "scene"]
# one word per rating, for a folder whose star ratings can be learned from the text
STAR_WORDS = {1: "abysmal", 2: "poor", 3: "weak", 4: "mediocre", 7: "decent", 8: "fine", 9: "excellent", 10: "masterpiece"}


def write_unlabeled(folder: Path, reviews: int = 40) -> None:
    """``train/unsup``: reviews without labels (rating 0), for the language model of the pretrained recipe."""
    rng = random.Random(1)
    directory = folder / "train" / "unsup"
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(reviews):
        tokens = rng.choices(NEUTRAL + GOOD + BAD, k=rng.randint(6, 14))
        (directory / f"{i}_0.txt").write_text(" ".join(tokens) + ".", encoding="utf-8")


def write_tiny_imdb(root: Path, per_folder: int = 24, star_words: bool = False) -> Path:
    """An aclImdb-shaped folder: short reviews whose sentiment words give the label away.

    Each file is named ``<id>_<rating>.txt`` with a random rating of its side (1-4 or 7-10);
    ``star_words=True`` also writes the rating's own word (``STAR_WORDS``) into the review.
    """
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
                if star_words:
                    tokens.append(STAR_WORDS[rating])
                (directory / f"{i}_{rating}.txt").write_text(" ".join(tokens) + ".<br />", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_imdb(tmp_path_factory):
    return write_tiny_imdb(tmp_path_factory.mktemp("imdb"))


@pytest.fixture(scope="module")
def small_imdb(tmp_path_factory):
    return write_tiny_imdb(tmp_path_factory.mktemp("imdb"), per_folder=100)


@pytest.fixture(scope="module")
def rated_imdb(tmp_path_factory):
    return write_tiny_imdb(tmp_path_factory.mktemp("imdb"), per_folder=100, star_words=True)


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


def test_refit_trains_for_the_epoch_validation_kept(capsys, tiny_imdb, tmp_path):
    """Without --epochs, a refit reads the kept epoch from the validation run's checkpoint and trains that many."""
    code, out, err = run_main(capsys, "--model", "gru", "--imdb-folder", tiny_imdb, "--refit", "--json", "--no-progress")
    assert code == 2 and "train the recipe with validation first" in err and len(err.strip().splitlines()) == 1
    validation = json.loads(run_main(capsys, "--model", "gru", "--imdb-folder", tiny_imdb, "--epochs", "3",
                                     "--json", "--no-progress")[1])
    kept = validation["best_epoch"]
    saved = torch.load(tmp_path / "data" / "checkpoints" / "gru.pt", weights_only=True)
    assert saved["epoch"] == kept and saved["epochs"] == 3
    assert train.kept_epoch(tmp_path / "data" / "checkpoints" / "gru.pt") == kept
    code, out, err = run_main(capsys, "--model", "gru", "--imdb-folder", tiny_imdb, "--refit", "--json", "--no-progress")
    assert code == 0
    refit = json.loads(out)
    assert refit["epochs"] == kept and refit["best_epoch"] == kept and refit["refit"] is True
    assert refit["refit_epochs_from"] == str(tmp_path / "data" / "checkpoints" / "gru.pt")
    assert f"refit: {kept} epoch(s), the epoch validation kept in" in err


def test_refit_schedule_spans_the_refit_epochs(small_imdb, monkeypatch):
    """The one-cycle schedule is rebuilt for the refit's own epochs and batches: it ends near zero."""
    from course_utils import training
    rates = []
    original = training.train_epoch

    def recording(model, loader, optimizer, *args, **kwargs):
        result = original(model, loader, optimizer, *args, **kwargs)
        rates.append(optimizer.param_groups[0]["lr"])
        return result

    monkeypatch.setattr(training, "train_epoch", recording)
    data = train.prepare_imdb(folder=small_imdb)
    result = train.train_model("best", data, epochs=2, refit=True, save=False, progress=False, log=None)
    assert len(rates) == 2 and result.history.best_epoch == 2
    assert rates[-1] < 0.1 * train.RECIPES["best"].lr  # annealed within the refit's 2 epochs (4 epochs: half the peak)


def test_kept_epoch_refuses_a_file_without_an_epoch(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="does not say which epoch"):
        train.kept_epoch(tmp_path / "old.pt")


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
        (["--model", "gpt"], ["invalid choice", *train.RECIPES]),
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
        train.train_model("gpt", data)


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


def expected_star_baselines(folder):
    """The constant and polarity baselines computed from the file names alone, for a perfect sentiment classifier."""
    train_reviews, _ = train_valid_split(load_imdb_ratings("train", folder=folder),
                                         n_valid=len(load_imdb_ratings("train", folder=folder)) // 5, seed=0)
    train_stars = [stars for _, stars in train_reviews]
    test_stars = [stars for _, stars in load_imdb_ratings("test", folder=folder)]
    n = len(test_stars)

    majority = min(set(train_stars), key=lambda s: (-train_stars.count(s), s))
    median = sorted(train_stars)[(len(train_stars) - 1) // 2]
    negatives, positives = sorted(s for s in train_stars if s <= 4), sorted(s for s in train_stars if s >= 7)
    side_median = {False: negatives[(len(negatives) - 1) // 2], True: positives[(len(positives) - 1) // 2]}
    side_mode = {False: min(set(negatives), key=lambda s: (-negatives.count(s), s)),  # ties: the extreme rating
                 True: min(set(positives), key=lambda s: (-positives.count(s), -s))}
    polarity = [side_mode[s >= 7] for s in test_stars]
    by_median = [side_median[s >= 7] for s in test_stars]
    return {
        "majority_acc": test_stars.count(majority) / n,
        "median_mae": sum(abs(median - s) for s in test_stars) / n,
        "baseline_acc": sum(p == s for p, s in zip(polarity, test_stars)) / n,
        "baseline_mae": sum(abs(p - s) for p, s in zip(by_median, test_stars)) / n,
    }


@pytest.mark.parametrize("limit", [None, 20])
def test_stars_have_the_same_reviews_split_and_vocabulary_as_polarity(tiny_imdb, limit):
    polarity = train.prepare_imdb(folder=tiny_imdb, limit=limit)
    stars = train.prepare_imdb(folder=tiny_imdb, limit=limit, target="stars")
    assert stars.target == "stars" and polarity.target == "polarity" and "stars" in repr(stars)
    assert stars.vocab.itos == polarity.vocab.itos
    for name in ("train", "valid", "test"):
        ours, theirs = getattr(stars, name), getattr(polarity, name)
        assert [ids for ids, _ in ours] == [ids for ids, _ in theirs], name
        assert [train.polarity_of(c, "stars") for _, c in ours] == [label for _, label in theirs], name
    assert {c for _, c in stars.train} == set(range(8))  # the tiny folder has every rating
    if limit is None:  # each test label is the rating in its file's name, in load_imdb's order
        ratings = [stars for _, stars in load_imdb_ratings("test", folder=tiny_imdb)]
        assert [stars_of_class(c) for _, c in stars.test] == ratings
    with pytest.raises(ValueError, match="target"):
        train.prepare_imdb(folder=tiny_imdb, target="rating")


def test_stars_json_has_the_star_fields_and_exact_baselines(capsys, tiny_imdb, tmp_path):
    checkpoint = tmp_path / "stars.pt"
    code, out, err = run_main(capsys, "--model", "stars", "--imdb-folder", tiny_imdb, "--epochs", "1",
                              "--json", "--no-progress", "--checkpoint", checkpoint)
    assert code == 0
    result = json.loads(out)
    for key in ("test_acc", "test_mae", "baseline_acc", "baseline_mae", "majority_acc", "median_mae",
                "val_acc", "training_seconds", "parameters", "star_rule"):
        assert key in result, key
    assert result["target"] == "stars" and result["star_rule"] in train.STAR_RULES
    assert set(result["val_stars"]) == set(train.STAR_RULES)
    assert 0 <= result["test_acc"] <= 1 and 0 <= result["test_mae"] <= 9
    assert result["baseline_polarity_acc"] == 1.0  # NBSVM tells the tiny reviews' sentiment words apart
    for key, value in expected_star_baselines(tiny_imdb).items():
        assert result[key] == pytest.approx(value, abs=1e-4), key
    model, saved = load_checkpoint(checkpoint)
    assert model.config.num_classes == 8 and saved["name"] == "stars"
    assert "polarity baseline" in err


def test_the_star_model_beats_both_baselines_when_the_words_tell_the_stars(capsys, rated_imdb):
    code, out, _ = run_main(capsys, "--model", "stars", "--imdb-folder", rated_imdb, "--epochs", "6",
                            "--json", "--no-progress")
    result = json.loads(out)
    assert result["val_stars"]["argmax"]["acc"] >= 0.8, result  # the rating words are learned (chance: 1 in 8)
    assert result["test_acc"] >= 0.5, result  # the recipe's median rule, on distributions still far from sharp
    assert result["test_acc"] > result["baseline_acc"] > result["majority_acc"], result
    assert result["test_mae"] < result["baseline_mae"] < result["median_mae"], result


def test_train_model_refuses_data_of_the_other_target(tiny_imdb):
    with pytest.raises(ValueError, match="target='stars'"):
        train.train_model("stars", train.prepare_imdb(folder=tiny_imdb), save=False)
    with pytest.raises(ValueError, match="target='polarity'"):
        train.train_model("lstm", train.prepare_imdb(folder=tiny_imdb, target="stars"), save=False)


def test_star_scores_by_hand():
    probabilities = torch.zeros(2, 8)
    probabilities[0, [0, 4, 7]] = torch.tensor([0.45, 0.15, 0.40])  # truly 10 stars (class 7)
    probabilities[1, 1] = 1.0  # truly 2 stars (class 1)
    loss, acc, mae = train.star_scores(probabilities, [7, 1], "argmax")  # predicts 1 and 2 stars
    assert (acc, mae) == (0.5, 4.5)
    assert loss == pytest.approx(-(torch.log(torch.tensor(0.40)).item() + torch.log(torch.tensor(1.0 - 0)).item()) / 2,
                                 abs=1e-6)
    assert train.star_scores(probabilities, [7, 1], "median")[1:] == (0.5, 1.5)  # 7 stars: off by 3, then exact


def test_nbsvm_from_the_command_line(capsys, tiny_imdb):
    code, out, err = run_main(capsys, "--model", "nbsvm", "--imdb-folder", tiny_imdb, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["model"] == "nbsvm" and result["test_acc"] >= 0.9
    assert len(result["val_acc"]) == 1 and result["train_reviews"] == 39
    assert result["training_seconds"] > 0 and result["parameters"] > 1
    assert "nbsvm: test accuracy" in err
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--model", "nbsvm", "--epochs", "2"])
    assert exit_info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "--epochs does not apply to --model nbsvm")


def test_pretrained_recipe_trains_two_language_models_and_two_classifiers_and_can_reuse_them(capsys, tmp_path):
    from course_utils import lm

    folder = write_tiny_imdb(tmp_path / "imdb")
    write_unlabeled(folder)
    code, out, _ = run_main(capsys, "--model", "pretrained", "--imdb-folder", folder, "--epochs", "1", "--json",
                            "--no-progress")
    assert code == 0
    first = json.loads(out)
    assert set(first["directions"]) == {"forward", "backward"}
    assert 0 < first["pretraining_seconds"] < first["training_seconds"]
    data = train.prepare_imdb(folder=folder)
    for direction, part in first["directions"].items():
        assert part["lm_reused"] is False and part["lm_valid_perplexity"] > 1 and len(part["val_acc"]) == 1
        language_model, vocabulary, saved = lm.load_lm(part["lm_checkpoint"])
        assert saved["backward"] == (direction == "backward") and vocabulary.itos == lm.lm_vocab(data.vocab).itos
        classifier, checkpoint = load_checkpoint(part["checkpoint"])
        assert checkpoint["reverse"] == (direction == "backward")
        # started from the language model, then fine-tuned (every layer, at most a few steps of lr 1e-2 here):
        # the LSTM and the word vectors moved, but only a little from the language model's
        lstm_change = (classifier.rnn.layers[0][0].weight_hh_l0 - language_model.rnn.weight_hh_l0).abs().max()
        word = data.vocab.itos[5]
        vector_change = (classifier.embedding.weight[5] - language_model.embedding.weight[vocabulary.stoi[word]]).abs().max()
        assert 0 < lstm_change < 0.05 and vector_change < 0.05
    assert Path(first["directions"]["forward"]["lm_checkpoint"]).name == "pretrained-lm.pt"
    assert Path(first["directions"]["backward"]["lm_checkpoint"]).name == "pretrained-lm-backward.pt"

    code, out, _ = run_main(capsys, "--model", "pretrained", "--imdb-folder", folder, "--epochs", "1", "--json",
                            "--no-progress", "--lm", first["directions"]["forward"]["lm_checkpoint"])
    again = json.loads(out)
    assert code == 0 and all(part["lm_reused"] for part in again["directions"].values())
    assert again["pretraining_seconds"] == pytest.approx(first["pretraining_seconds"], rel=1e-3)
    assert again["training_seconds"] >= again["pretraining_seconds"]
    with pytest.raises(ValueError, match="train_ulmfit"):
        train.train_model("pretrained", data)


def test_lm_option_errors_are_one_line(capsys, tiny_imdb, tmp_path):
    with pytest.raises(SystemExit):
        train.main(["--model", "best", "--lm", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "only to a pretrained recipe" in err
    with pytest.raises(SystemExit):
        train.main(["--model", "pretrained", "--lm", str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such file" in err
    (tmp_path / "forward-only.pt").write_bytes(b"")
    with pytest.raises(SystemExit):
        train.main(["--model", "pretrained", "--lm", str(tmp_path / "forward-only.pt")])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "forward-only-backward.pt" in err
    with pytest.raises(SystemExit):
        train.main(["--model", "pretrained", "--refit"])
    assert "--refit does not apply" in capsys.readouterr().err


def test_a_language_model_of_other_sizes_is_refused_in_one_line(capsys, tiny_imdb, tmp_path):
    from course_utils import lm

    data = train.prepare_imdb(folder=tiny_imdb)
    vocabulary = lm.lm_vocab(data.vocab)
    small = lm.build_lm(len(vocabulary), embedding_dim=4, hidden_size=4)
    path = lm.save_lm(tmp_path / "small-lm.pt", small, vocabulary, extra={"pretraining_seconds": 1.0})
    lm.save_lm(tmp_path / "small-lm-backward.pt", small, vocabulary, extra={"pretraining_seconds": 1.0, "backward": True})
    code, _, err = run_main(capsys, "--model", "pretrained", "--imdb-folder", tiny_imdb, "--lm", path, "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Embedding sizes differ" in err and "Traceback" not in err
