"""Train the course's models on IMDb, from a notebook or from the command line (lesson 6).

In a notebook::

    data = prepare_imdb()                       # 20,000 train / 5,000 validation / 25,000 test
    result = train_model("lstm", data)          # the same code the command line runs
    result.test_acc, result.history.val_acc

Headless, for instructors (progress on stderr; ``--json`` prints one JSON object on stdout)::

    python -m course_utils.train --model best --json
    python -m course_utils.train --model lstm --epochs 2
    python -m course_utils.train --model best --refit   # the chosen recipe, once more, on all 25,000
    python -m course_utils.train --model lstm --imdb-folder tests/tiny_aclImdb --epochs 1  # a tiny copy

Each named model is a ``Recipe``: the model's options and how to train it. The best checkpoint
(by validation accuracy) is saved as ``data/checkpoints/<name>.pt`` with the vocabulary, so
``course_utils.predict.load_predictor`` can use it later. ``--refit`` trains on all 25,000
training reviews without validation (``data/checkpoints/<name>-refit.pt``): the last step, once
validation has chosen the recipe.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from .data import default_data_dir, load_imdb, train_valid_split
from .models import SentimentClassifier, build_model, count_parameters
from .text import Vocab, tokenize_all
from .training import (Example, History, accuracy_of, fit, get_device, make_loader, predict_probabilities, set_seed,
                       truncate)


@dataclass
class Recipe:
    """A named model of the course: its architecture and how it is trained.

    ``max_len`` shortens training reviews to their first and last tokens (``training.truncate``);
    validation, test and ``predict_sentiment`` use the same length, so the model always sees what
    it was trained on.
    """

    description: str
    model: dict
    epochs: int = 3
    lr: float = 2e-3
    batch_size: int = 64
    max_len: Optional[int] = None
    head: float = 0.5
    clip: Optional[float] = 1.0
    schedule: Optional[str] = None
    weight_decay: float = 0.0

    def shorten(self, examples: Sequence[Example]) -> list[Example]:
        """The examples cut as this recipe trains, validates and tests: ``truncate`` with ``max_len``, ``head``."""
        return [(truncate(ids, self.max_len, self.head), label) for ids, label in examples]


RECIPES: dict[str, Recipe] = {
    "classic": Recipe(
        "the classic tutorial LSTM: Embedding 20, LSTM 64 -> Linear 64 -> ReLU -> Linear 1, full reviews",
        dict(cell="lstm", embedding_dim=20, hidden_size=64, head_hidden=64),
        epochs=6, lr=5e-3, schedule="onecycle",
    ),
    "rnn": Recipe(
        "plain RNN, final state, reviews cut to 256 tokens",
        dict(cell="rnn", embedding_dim=64, hidden_size=64),
        epochs=2, lr=4e-3, max_len=256, schedule="onecycle",
    ),
    "gru": Recipe(
        "GRU, final state, reviews cut to 256 tokens",
        dict(cell="gru", embedding_dim=64, hidden_size=64),
        epochs=2, lr=4e-3, max_len=256, schedule="onecycle",
    ),
    "lstm": Recipe(
        "LSTM, final state, reviews cut to 256 tokens",
        dict(cell="lstm", embedding_dim=64, hidden_size=64),
        epochs=2, lr=4e-3, max_len=256, schedule="onecycle",
    ),
    "bilstm": Recipe(
        "bidirectional LSTM, final forward + backward states, reviews cut to 256 tokens",
        dict(cell="lstm", embedding_dim=64, hidden_size=64, bidirectional=True),
        epochs=2, lr=4e-3, max_len=256, schedule="onecycle",
    ),
    "best": Recipe(
        "the course's best: BiLSTM, final states + max + mean over time, dropout 0.4, one-cycle schedule, 800 tokens",
        dict(cell="lstm", embedding_dim=100, hidden_size=64, bidirectional=True, pooling="last+max+mean",
             dropout=0.4, embedding_dropout=0.4),
        epochs=4, lr=6e-3, max_len=800, schedule="onecycle",
    ),
    "attention": Recipe(
        "lesson 7: the best recipe with attention pooling (one learned query over the BiLSTM's states) "
        "instead of last+max+mean",
        dict(cell="lstm", embedding_dim=100, hidden_size=64, bidirectional=True, pooling="attention-pool",
             dropout=0.4, embedding_dropout=0.4),
        epochs=4, lr=6e-3, max_len=800, schedule="onecycle",
    ),
}

MIN_FREQ = 5  # words seen fewer than 5 times in the 20,000 training reviews become <unk>


@dataclass
class ImdbData:
    """The three splits as ``(token ids, label)`` lists, and the vocabulary built from ``train`` only."""

    vocab: Vocab
    train: list[Example]
    valid: list[Example]
    test: list[Example]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(getattr(self, name)):,}" for name in ("train", "valid", "test"))
        return f"ImdbData({sizes}, vocab={len(self.vocab):,})"


def _subset(reviews: list, limit: Optional[int]) -> list:
    """At most ``limit`` reviews, half negative and half positive (the lists hold negatives first)."""
    if limit is None or limit >= len(reviews):
        return reviews
    negatives = [r for r in reviews if r[1] == 0]
    positives = [r for r in reviews if r[1] == 1]
    return negatives[: limit // 2] + positives[: limit - limit // 2]


def prepare_imdb(
    min_freq: int = MIN_FREQ,
    limit: Optional[int] = None,
    folder: Optional[Path] = None,
    seed: int = 0,
    cache: bool = True,
) -> ImdbData:
    """Load, split, tokenize and encode IMDb: the steps lessons 3 and 6 show one by one.

    The 25,000 training reviews are split 20,000 / 5,000 (a fifth for validation, fixed seed); the
    vocabulary is built from the 20,000 only. ``limit`` keeps that many reviews of each split,
    ``folder`` reads a (tiny) aclImdb-shaped folder; tokenized texts are cached only for the full data.
    """
    full = limit is None and folder is None
    train_reviews = _subset(load_imdb("train", folder=folder), limit)
    test_reviews = _subset(load_imdb("test", folder=folder), limit)
    train, valid = train_valid_split(train_reviews, n_valid=len(train_reviews) // 5, seed=seed)
    cache_dir = default_data_dir() / "cache" if (cache and full) else None
    splits = {}
    for name, reviews in (("train", train), ("valid", valid), ("test", test_reviews)):
        tokens = tokenize_all([text for text, _ in reviews], cache_dir=cache_dir)
        splits[name] = (tokens, [label for _, label in reviews])
    vocab = Vocab.build(splits["train"][0], min_freq=min_freq)
    encoded = {
        name: [(vocab.encode(t) or [1], label) for t, label in zip(tokens, labels)]  # [1] = <unk>: never empty
        for name, (tokens, labels) in splits.items()
    }
    return ImdbData(vocab, encoded["train"], encoded["valid"], encoded["test"])


@dataclass
class TrainResult:
    """What ``train_model`` returns: the trained model (best epoch restored) and its measurements."""

    name: str
    model: SentimentClassifier
    recipe: Recipe
    history: History
    test_loss: float
    test_acc: float
    parameters: int
    checkpoint: Optional[Path]
    device: str
    train_reviews: int = 0
    test_probabilities: Optional[torch.Tensor] = None  # P(positive) of each test review, in data.test order
    fit_seconds: float = 0.0  # the whole of fit(): training epochs and their validation passes
    refit: bool = False  # trained on train + valid, without validation (see ``train_model``)

    def probabilities(self, examples: Sequence[Example]) -> torch.Tensor:
        """P(positive) of each example (e.g. ``data.valid``), cut as the model was trained."""
        return predict_probabilities(self.model, self.recipe.shorten(examples), progress=False)

    @property
    def seconds_per_epoch(self) -> float:
        return sum(self.history.seconds) / len(self.history.seconds)

    @property
    def reviews_per_second(self) -> float:
        return self.train_reviews / self.seconds_per_epoch

    def summary(self) -> dict:
        """The JSON-friendly numbers printed by ``--json`` and shown in lesson 6's table."""
        return {
            "model": self.name,
            "description": self.recipe.description,
            "epochs": len(self.history.train_loss),
            "refit": self.refit,
            "max_len": self.recipe.max_len,
            "train_loss": [round(x, 4) for x in self.history.train_loss],
            "train_acc": [round(x, 4) for x in self.history.train_acc],
            "val_loss": [round(x, 4) for x in self.history.val_loss],
            "val_acc": [round(x, 4) for x in self.history.val_acc],
            "best_epoch": self.history.best_epoch,
            "test_loss": round(self.test_loss, 4),
            "test_acc": round(self.test_acc, 4),
            "seconds_per_epoch": _significant(self.seconds_per_epoch),  # tiny runs take milliseconds
            "training_seconds": _significant(self.fit_seconds),
            "reviews_per_second": _significant(self.reviews_per_second),
            "parameters": self.parameters,
            "train_reviews": self.train_reviews,
            "device": self.device,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
        }


def default_checkpoint(name: str) -> Path:
    return default_data_dir() / "checkpoints" / f"{name}.pt"


def train_model(
    name: str,
    data: ImdbData,
    epochs: Optional[int] = None,
    seed: int = 0,
    checkpoint: Optional[Path] = None,
    save: bool = True,
    progress: bool = True,
    log=print,
    device: Optional[torch.device] = None,
    refit: bool = False,
) -> TrainResult:
    """Train the recipe ``name`` on ``data``, keep the best epoch by validation accuracy, test it once.

    The test split is used exactly once, after training, and never for any choice.

    Returns a ``TrainResult``; the best checkpoint goes to ``data/checkpoints/<name>.pt`` unless
    ``save=False``. ``epochs`` overrides the recipe's number of epochs.

    ``refit=True`` is the last step, once validation has chosen the recipe and its epochs: train
    the same recipe on train + valid (all 25,000 training reviews), with no validation, keep the
    last epoch, and test it once. The checkpoint goes to ``data/checkpoints/<name>-refit.pt``.
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(RECIPES)}.")
    recipe = RECIPES[name]
    epochs = recipe.epochs if epochs is None else epochs
    device = device or get_device()
    set_seed(seed)
    model = build_model(len(data.vocab), **recipe.model)

    train_examples = data.train + data.valid if refit else data.train
    train_loader = make_loader(recipe.shorten(train_examples), recipe.batch_size, shuffle=True, seed=seed)
    valid_loader = None if refit else make_loader(recipe.shorten(data.valid), 256, shuffle=False)
    checkpoint = (checkpoint or default_checkpoint(f"{name}-refit" if refit else name)) if save else None
    extra = {"name": name, "vocab": data.vocab.itos, "max_len": recipe.max_len, "head": recipe.head}
    start = time.perf_counter()
    history = fit(
        model, train_loader, valid_loader, epochs=epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
        clip=recipe.clip, schedule=recipe.schedule, checkpoint=checkpoint, checkpoint_extra=extra,
        device=device, progress=progress, log=log,
    )
    fit_seconds = time.perf_counter() - start
    probabilities = predict_probabilities(model, recipe.shorten(data.test), progress=progress)
    labels = torch.tensor([float(label) for _, label in data.test])
    test_loss = nn.functional.binary_cross_entropy(probabilities.double().clamp(1e-7, 1 - 1e-7), labels.double()).item()
    test_acc = accuracy_of(probabilities, labels)
    return TrainResult(name, model, recipe, history, test_loss, test_acc, count_parameters(model),
                       checkpoint, str(device), train_reviews=len(train_examples), test_probabilities=probabilities,
                       fit_seconds=fit_seconds, refit=refit)


def _significant(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (never to 0 for a positive value)."""
    return float(f"{value:.{digits}g}")


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that lists the valid choices."""

    def error(self, message: str) -> None:  # type: ignore[override]
        usage = " ".join(self.format_usage().split())  # argparse's own usage line, on one line
        self.exit(2, f"{self.prog}: error: {message} ({usage})\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m course_utils.train",
        description="Train one of the course's sentiment models on IMDb and test it once.",
        epilog="Models: " + "; ".join(f"{name}: {r.description}" for name, r in RECIPES.items()),
    )
    parser.add_argument("--model", required=True, choices=list(RECIPES), help="which recipe to train")
    parser.add_argument("--epochs", type=_positive_int, metavar="N", help="number of epochs (default: the recipe's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="use at most N reviews of each split (quick runs)")
    parser.add_argument("--imdb-folder", type=Path, metavar="PATH", help="an aclImdb-shaped folder to use instead of the full data set")
    parser.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default 0)")
    parser.add_argument("--checkpoint", type=Path, metavar="PATH", help="where to save the best model (default data/checkpoints/NAME.pt)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--refit", action="store_true",
                        help="train on all training reviews (train + valid) without validation, keeping the last epoch: "
                             "the last step, once validation has chosen the recipe")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = make_parser().parse_args(argv)

    def log(message: str) -> None:  # progress and epoch lines go to stderr when stdout carries JSON
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.imdb_folder is not None and not (args.imdb_folder / "train").is_dir():
        print(f"python -m course_utils.train: error: {args.imdb_folder} is not an aclImdb folder "
              "(it has no train/ folder).", file=sys.stderr)
        return 2
    start = time.perf_counter()
    data = prepare_imdb(limit=args.limit, folder=args.imdb_folder)
    log(f"data: {data} ({time.perf_counter() - start:.1f} s)")
    result = train_model(args.model, data, epochs=args.epochs, seed=args.seed, checkpoint=args.checkpoint,
                         progress=not args.no_progress, log=log, refit=args.refit)
    log(f"{args.model}: test accuracy {result.test_acc:.4f}, {result.seconds_per_epoch:.1f} s per epoch, "
        f"checkpoint {result.checkpoint}")
    if args.json:
        print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
