"""The IMDb Large Movie Review Dataset: download once, verify, extract, cache, load.

Maas et al. (2011) collected 50,000 movie reviews from IMDb, half positive and half negative,
split into 25,000 for training and 25,000 for testing. The archive unpacks to::

    aclImdb/train/pos/*.txt   12,500 positive training reviews   (file name: <id>_<rating>.txt)
    aclImdb/train/neg/*.txt   12,500 negative training reviews
    aclImdb/test/pos/*.txt    12,500 positive test reviews
    aclImdb/test/neg/*.txt    12,500 negative test reviews
    aclImdb/train/unsup/*.txt 50,000 unlabeled reviews (for language models, lesson 8)

A labeled review's file name carries its star rating: negative reviews have 1-4 stars, positive
ones 7-10 (``load_imdb_ratings``); unlabeled reviews carry ``_0``.

Where the data comes from, in this order:

1. ``IMDB_ARCHIVE`` (environment variable) names a local ``aclImdb_v1.tar.gz`` or an extracted
   ``aclImdb/`` folder. A folder is used where it is; an archive is extracted into the cache.
   Both are checked by their content (12,500 reviews in each folder), because a repacked archive
   has a different checksum from the official one.
2. A complete copy already extracted in the cache folder (``data/aclImdb``).
3. The official archive, downloaded once with pooch (progress bar, MD5 verified).

Extraction goes to a temporary folder that is renamed only once every file is there, so an
interrupted run never leaves a half-extracted copy that a later call would mistake for complete.
"""

from __future__ import annotations

import os
import random
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Optional

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
ARCHIVE_ENV = "IMDB_ARCHIVE"
LABELED_FOLDERS = ("train/pos", "train/neg", "test/pos", "test/neg")
REVIEWS_PER_FOLDER = 12_500
SPLITS = ("train", "test")
NEGATIVE_RATINGS = (1, 2, 3, 4)
POSITIVE_RATINGS = (7, 8, 9, 10)
RATINGS = NEGATIVE_RATINGS + POSITIVE_RATINGS  # the 8 star ratings a labeled review can have

# A file written inside the extracted folder once it has been checked; its absence means "incomplete".
_COMPLETE_MARKER = ".complete"

Review = tuple[str, int]  # (text, label) with label 1 = positive, 0 = negative


class IMDBDataError(RuntimeError):
    """The IMDb data could not be found, downloaded or read; the message says what to do."""


def default_data_dir() -> Path:
    """The folder where downloads and caches land.

    ``COURSE_DATA_DIR`` wins if set; otherwise the repository's ``data/`` folder when the course
    is installed from a clone (``pip install -e .``), else ``./data`` in the working directory.
    """
    if os.environ.get("COURSE_DATA_DIR"):
        return Path(os.environ["COURSE_DATA_DIR"]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists() and (repo / "notebooks").is_dir():
        return repo / "data"
    return Path.cwd() / "data"


def count_reviews(folder: Path) -> dict[str, int]:
    """Number of ``.txt`` review files in each labelled folder under an ``aclImdb`` folder."""
    return {name: len(list((folder / name).glob("*.txt"))) for name in LABELED_FOLDERS}


def check_imdb_folder(folder: Path, expected_per_folder: int = REVIEWS_PER_FOLDER) -> None:
    """Raise ``IMDBDataError`` unless ``folder`` holds the four labelled folders, each complete."""
    if not folder.is_dir():
        raise IMDBDataError(f"The IMDb folder {folder} does not exist.")
    counts = count_reviews(folder)
    wrong = {name: n for name, n in counts.items() if n != expected_per_folder}
    if wrong:
        details = ", ".join(f"{name} has {n}" for name, n in wrong.items())
        raise IMDBDataError(
            f"The IMDb folder {folder} is incomplete ({details}; expected {expected_per_folder:,} "
            f"reviews in each): delete it and extract aclImdb_v1.tar.gz again."
        )


def extract_archive(
    archive: Path, data_dir: Path, expected_per_folder: int = REVIEWS_PER_FOLDER
) -> Path:
    """Extract ``archive`` into ``data_dir/aclImdb``, check it, and return that folder.

    Files are extracted into a temporary folder next to the target, checked, and only then
    renamed, so the target either does not exist or is complete. A corrupt or truncated archive
    raises ``IMDBDataError`` and leaves nothing behind.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "aclImdb"
    staging = Path(tempfile.mkdtemp(prefix=".aclImdb-extracting-", dir=data_dir))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise IMDBDataError(
                f"The archive {archive} is corrupt or truncated ({type(exc).__name__}: {exc}): "
                f"delete it and download {IMDB_URL} again."
            ) from None
        extracted = staging / "aclImdb"
        try:
            check_imdb_folder(extracted, expected_per_folder)
        except IMDBDataError:
            counts = count_reviews(extracted) if extracted.is_dir() else {}
            raise IMDBDataError(
                f"The archive {archive} does not hold the complete IMDb data set "
                f"(found {counts or 'no aclImdb/ folder'}): use the official {IMDB_URL}."
            ) from None
        (extracted / _COMPLETE_MARKER).write_text(f"extracted from {archive.name}\n")
        if target.exists():  # an old, incomplete copy: replace it
            shutil.rmtree(target)
        extracted.rename(target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_archive(url: str = IMDB_URL, md5: str = IMDB_MD5, data_dir: Optional[Path] = None) -> Path:
    """Download the archive once with pooch (progress bar, MD5 checked) and return its path.

    pooch writes to a temporary file and moves it into place only when the checksum matches,
    so a failed or interrupted download leaves nothing that looks complete.
    """
    import pooch  # imported here: importing course_utils.data never touches the network
    import requests

    data_dir = Path(data_dir or default_data_dir())
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"md5:{md5}",
            fname=url.rsplit("/", 1)[-1],
            path=data_dir,
            progressbar=True,
        )
    except ValueError as exc:  # pooch: the checksum does not match
        raise IMDBDataError(
            f"The file downloaded from {url} failed its MD5 check ({exc}); nothing was kept: "
            f"try again later, or set {ARCHIVE_ENV} to a local copy."
        ) from None
    except (requests.RequestException, OSError) as exc:
        raise IMDBDataError(
            f"Could not download the IMDb data set from {url} ({type(exc).__name__}); without "
            f"network, set {ARCHIVE_ENV} to a local aclImdb_v1.tar.gz or an extracted aclImdb/ folder."
        ) from None
    return Path(path)


def _is_complete(folder: Path) -> bool:
    return (folder / _COMPLETE_MARKER).exists()


def imdb_dir(
    data_dir: Optional[Path] = None,
    url: str = IMDB_URL,
    md5: str = IMDB_MD5,
    expected_per_folder: int = REVIEWS_PER_FOLDER,
) -> Path:
    """Return the path of a complete ``aclImdb`` folder, extracting or downloading it if needed.

    A second call does no network and no extraction: it finds the checked copy in the cache.
    """
    data_dir = Path(data_dir or default_data_dir())
    local = os.environ.get(ARCHIVE_ENV)
    if local:
        source = Path(local).expanduser()
        if source.is_dir():
            folder = source / "aclImdb" if (source / "aclImdb").is_dir() else source
            check_imdb_folder(folder, expected_per_folder)
            return folder
        cached = data_dir / "aclImdb"
        if _is_complete(cached):
            return cached
        if not source.is_file():
            raise IMDBDataError(
                f"{ARCHIVE_ENV} is set to {source}, which does not exist: point it at "
                f"aclImdb_v1.tar.gz or an extracted aclImdb/ folder, or unset it to download {url}."
            )
        return extract_archive(source, data_dir, expected_per_folder)

    cached = data_dir / "aclImdb"
    if _is_complete(cached):
        return cached
    archive = download_archive(url, md5, data_dir)
    return extract_archive(archive, data_dir, expected_per_folder)


def _review_sort_key(path: Path) -> tuple[int, int]:
    """Sort review files by their numeric id, then rating (``123_8.txt`` -> (123, 8))."""
    try:
        review_id, rating = path.stem.split("_")
        return int(review_id), int(rating)
    except ValueError:
        raise IMDBDataError(f"{path} is not named <id>_<rating>.txt as IMDb's reviews are.") from None


def rating_of(path: Path) -> int:
    """The star rating in a review's file name: ``aclImdb/train/pos/123_8.txt`` -> 8."""
    return _review_sort_key(Path(path))[1]


def _split_folder(split: str, data_dir: Optional[Path], folder: Optional[Path]) -> Path:
    """``folder`` (checked) or the full data set's folder, for ``split``."""
    if folder is None:
        folder = imdb_dir(data_dir)
    elif not (Path(folder) / split).is_dir():
        raise IMDBDataError(f"{folder} has no {split}/ folder: it is not an aclImdb folder.")
    return Path(folder)


def _labeled_files(split: str, data_dir: Optional[Path], folder: Optional[Path]) -> list[tuple[Path, int]]:
    """Every ``(file, label)`` of a split: negatives by file id, then positives by file id."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    folder = _split_folder(split, data_dir, folder)
    files: list[tuple[Path, int]] = []
    for label, name in ((0, "neg"), (1, "pos")):
        files.extend((path, label) for path in sorted((folder / split / name).glob("*.txt"), key=_review_sort_key))
    return files


def load_imdb(
    split: str, data_dir: Optional[Path] = None, folder: Optional[Path] = None
) -> list[Review]:
    """Load one split as a list of ``(text, label)`` pairs, label 1 = positive, 0 = negative.

    The order is stable on every machine: all negative reviews by file id, then all positive ones.
    ``folder`` reads an ``aclImdb``-shaped folder of any size instead (tests use tiny ones);
    by default the full data set is found, extracted or downloaded by ``imdb_dir``.
    """
    return [(path.read_text(encoding="utf-8"), label) for path, label in _labeled_files(split, data_dir, folder)]


def load_imdb_ratings(
    split: str, data_dir: Optional[Path] = None, folder: Optional[Path] = None
) -> list[tuple[str, int]]:
    """Load one split as ``(text, stars)`` pairs, stars in 1-4 (negative) or 7-10 (positive).

    Same reviews in the same order as ``load_imdb``, so ``train_valid_split`` with the same seed
    picks the same validation reviews.
    """
    reviews = []
    for path, label in _labeled_files(split, data_dir, folder):
        stars = rating_of(path)
        if stars not in (NEGATIVE_RATINGS if label == 0 else POSITIVE_RATINGS):
            raise IMDBDataError(f"{path} has {stars} stars, which a {'negative' if label == 0 else 'positive'} "
                                "review cannot have: the folder is not the IMDb data set.")
        reviews.append((path.read_text(encoding="utf-8"), stars))
    return reviews


def load_unlabeled(data_dir: Optional[Path] = None, folder: Optional[Path] = None) -> list[str]:
    """The unlabeled training reviews (``train/unsup``, 50,000 in the full data set), by file id.

    They carry no label (rating ``_0``), only text: what a language model learns from (lesson 8).
    """
    folder = _split_folder("train", data_dir, folder)
    unsup = folder / "train" / "unsup"
    if not unsup.is_dir():
        raise IMDBDataError(f"{folder} has no train/unsup/ folder of unlabeled reviews.")
    return [path.read_text(encoding="utf-8") for path in sorted(unsup.glob("*.txt"), key=_review_sort_key)]


def train_valid_split(
    reviews: list[Review], n_valid: int = 5_000, seed: int = 0
) -> tuple[list[Review], list[Review]]:
    """Split the training reviews into (train, validation) with a fixed seed.

    Python's ``random.Random(seed)`` gives the same shuffle on every machine and Python version
    since 3.2, so the 20,000 / 5,000 split is identical everywhere. The test split is never used
    for any choice: the validation reviews are.
    """
    if not 0 < n_valid < len(reviews):
        raise ValueError(f"n_valid must be between 1 and {len(reviews) - 1}, got {n_valid}.")
    order = list(range(len(reviews)))
    random.Random(seed).shuffle(order)
    valid = [reviews[i] for i in sorted(order[:n_valid])]
    train = [reviews[i] for i in sorted(order[n_valid:])]
    return train, valid
