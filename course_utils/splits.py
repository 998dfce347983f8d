"""IMDb made ready for a network: the fixed split, the tokens, the vocabulary and the ids.

Lessons 3 and 6 show these steps one by one; later lessons and both command lines
(``course_utils.train``, ``course_utils.lm``) call them through ``prepare_imdb``::

    data = prepare_imdb()          # 20,000 train / 5,000 validation / 25,000 test, as token ids
    data.vocab, data.train[0]      # the vocabulary (built from the 20,000 only) and (ids, label)

``load_splits`` gives the same split as texts (for a bag-of-words baseline or a language model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .baselines import class_of_stars, stars_of_class
from .data import default_data_dir, load_imdb, load_imdb_ratings, train_valid_split
from .text import Vocab, tokenize_all
from .training import Example

TARGETS = ("polarity", "stars")  # what a label is: 1 positive / 0 negative, or the class index 0..7 of the rating

MIN_FREQ = 5  # words seen fewer than 5 times in the 20,000 training reviews become <unk>


@dataclass
class ImdbData:
    """The three splits as ``(token ids, label)`` lists, and the vocabulary built from ``train`` only.

    ``target`` says what the labels are: ``"polarity"`` (1 positive, 0 negative) or ``"stars"``
    (the class index 0..7 of the rating, see ``baselines.class_of_stars``).
    """

    vocab: Vocab
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    target: str = "polarity"

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(getattr(self, name)):,}" for name in ("train", "valid", "test"))
        target = "" if self.target == "polarity" else f", target={self.target!r}"
        return f"ImdbData({sizes}, vocab={len(self.vocab):,}{target})"


def polarity_of(label: int, target: str = "polarity") -> int:
    """1 for a positive review, 0 for a negative one, whatever the label means.

    A polarity label is already that; a star class is positive when its rating is 7 or more.
    """
    if target == "stars":
        return int(stars_of_class(label) >= 7)
    return int(label)


def _subset(reviews: list, limit: Optional[int], target: str = "polarity") -> list:
    """At most ``limit`` reviews, half negative and half positive (the lists hold negatives first)."""
    if limit is None or limit >= len(reviews):
        return reviews
    negatives = [r for r in reviews if polarity_of(r[1], target) == 0]
    positives = [r for r in reviews if polarity_of(r[1], target) == 1]
    return negatives[: limit // 2] + positives[: limit - limit // 2]


def load_splits(
    limit: Optional[int] = None, folder: Optional[Path] = None, seed: int = 0, target: str = "polarity"
) -> dict[str, list[tuple[str, int]]]:
    """The reviews of the three splits as ``(text, label)`` lists: ``{"train", "valid", "test"}``.

    The 25,000 training reviews are split 20,000 / 5,000 (a fifth for validation, fixed seed).
    ``target="polarity"``: label 1 = positive, 0 = negative (``load_imdb``). ``target="stars"``:
    label = the class index 0..7 of the rating (``load_imdb_ratings``). Both loaders list the same
    reviews in the same order, and the split depends only on their number and the seed, so both
    targets get exactly the same reviews in every split.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}.")
    loaded = {}
    for split in ("train", "test"):
        if target == "polarity":
            reviews = load_imdb(split, folder=folder)
        else:
            reviews = [(text, class_of_stars(stars)) for text, stars in load_imdb_ratings(split, folder=folder)]
        loaded[split] = _subset(reviews, limit, target)
    train, valid = train_valid_split(loaded["train"], n_valid=len(loaded["train"]) // 5, seed=seed)
    return {"train": train, "valid": valid, "test": loaded["test"]}


def tokenize_splits(splits: dict[str, list[tuple[str, int]]], cache: bool = False) -> dict[str, list[list[str]]]:
    """The tokens of every review of every split; ``cache=True`` keeps them in ``data/cache`` (``tokenize_all``)."""
    cache_dir = default_data_dir() / "cache" if cache else None
    return {name: tokenize_all([text for text, _ in reviews], cache_dir=cache_dir) for name, reviews in splits.items()}


def prepare_imdb(
    min_freq: int = MIN_FREQ,
    limit: Optional[int] = None,
    folder: Optional[Path] = None,
    seed: int = 0,
    cache: bool = True,
    target: str = "polarity",
) -> ImdbData:
    """Load, split, tokenize and encode IMDb: the steps lessons 3 and 6 show one by one.

    The 25,000 training reviews are split 20,000 / 5,000 (a fifth for validation, fixed seed); the
    vocabulary is built from the 20,000 only. ``limit`` keeps that many reviews of each split,
    ``folder`` reads a (tiny) aclImdb-shaped folder; tokenized texts are cached only for the full data.
    ``target="stars"`` labels each review with its rating's class index 0..7 instead of its
    polarity (lesson 8): same reviews, same split, same vocabulary, only the labels differ.
    """
    splits = load_splits(limit, folder, seed, target)
    tokens = tokenize_splits(splits, cache=cache and limit is None and folder is None)
    vocab = Vocab.build(tokens["train"], min_freq=min_freq)
    encoded = {
        name: [(vocab.encode(t) or [1], label) for t, (_, label) in zip(tokens[name], reviews)]  # [1] = <unk>: never empty
        for name, reviews in splits.items()
    }
    return ImdbData(vocab, encoded["train"], encoded["valid"], encoded["test"], target)
