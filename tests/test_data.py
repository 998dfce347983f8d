"""Tests of course_utils.data, all offline.

The download path is tested against a throw-away HTTP server on 127.0.0.1 that serves a small
archive this file builds itself; the real archive is used only when IMDB_ARCHIVE is set.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from course_utils import data
from course_utils.data import (
    IMDBDataError,
    imdb_dir,
    load_imdb,
    load_imdb_ratings,
    load_unlabeled,
    rating_of,
    train_valid_split,
)

PER_FOLDER = 3  # reviews in each labelled folder of the small test archives


def make_archive(path: Path, per_folder: int = PER_FOLDER, skip: str | None = None) -> Path:
    """Write a small aclImdb_v1.tar.gz with ``per_folder`` reviews in each labelled folder."""
    with tarfile.open(path, "w:gz") as tar:
        for folder in data.LABELED_FOLDERS:
            if folder == skip:
                continue
            for i in range(per_folder):
                rating = 8 if folder.endswith("pos") else 2
                text = f"{folder} review {i}: {'great' if rating > 5 else 'awful'} film<br />".encode()
                info = tarfile.TarInfo(f"aclImdb/{folder}/{i}_{rating}.txt")
                info.size = len(text)
                tar.addfile(info, io.BytesIO(text))
    return path


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def no_env(monkeypatch):
    """Run without IMDB_ARCHIVE, as on a student's machine with network."""
    monkeypatch.delenv(data.ARCHIVE_ENV, raising=False)


@pytest.fixture
def http_server(tmp_path):
    """Serve tmp_path/'served' on 127.0.0.1; yield (base_url, served_dir, request_log)."""
    served = tmp_path / "served"
    served.mkdir()
    requests_seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):  # keep test output clean
            requests_seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served, requests_seen
    finally:
        server.shutdown()
        server.server_close()


# --- the local copy named by IMDB_ARCHIVE -----------------------------------------------------


def test_local_archive_is_extracted_checked_and_cached(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz")
    monkeypatch.setenv(data.ARCHIVE_ENV, str(archive))
    cache = tmp_path / "cache"
    folder = imdb_dir(cache, expected_per_folder=PER_FOLDER)
    assert folder == cache / "aclImdb"
    assert data.count_reviews(folder) == {name: PER_FOLDER for name in data.LABELED_FOLDERS}
    # No staging folder is left behind.
    assert [p.name for p in cache.iterdir()] == ["aclImdb"]

    # A second call reuses the cache: it works even once the archive is gone.
    archive.unlink()
    assert imdb_dir(cache, expected_per_folder=PER_FOLDER) == folder


def test_local_folder_is_used_where_it_is(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "a.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    monkeypatch.setenv(data.ARCHIVE_ENV, str(tmp_path / "extracted" / "aclImdb"))
    assert imdb_dir(tmp_path / "cache", expected_per_folder=PER_FOLDER) == tmp_path / "extracted" / "aclImdb"
    # The parent folder of aclImdb/ is accepted too.
    monkeypatch.setenv(data.ARCHIVE_ENV, str(tmp_path / "extracted"))
    assert imdb_dir(tmp_path / "cache", expected_per_folder=PER_FOLDER) == tmp_path / "extracted" / "aclImdb"
    assert not (tmp_path / "cache").exists()


def test_local_folder_with_missing_files_says_so(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "a.tar.gz", skip="test/neg")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    monkeypatch.setenv(data.ARCHIVE_ENV, str(tmp_path / "extracted" / "aclImdb"))
    with pytest.raises(IMDBDataError, match=r"incomplete \(test/neg has 0"):
        imdb_dir(tmp_path / "cache", expected_per_folder=PER_FOLDER)


def test_missing_local_path_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ARCHIVE_ENV, str(tmp_path / "nowhere.tar.gz"))
    with pytest.raises(IMDBDataError, match="IMDB_ARCHIVE is set to .*does not exist"):
        imdb_dir(tmp_path / "cache", expected_per_folder=PER_FOLDER)


def test_truncated_archive_is_rejected_and_nothing_is_left(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz", per_folder=50)
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])
    monkeypatch.setenv(data.ARCHIVE_ENV, str(archive))
    cache = tmp_path / "cache"
    with pytest.raises(IMDBDataError, match="corrupt or truncated"):
        imdb_dir(cache, expected_per_folder=50)
    assert list(cache.iterdir()) == []  # no half-extracted aclImdb/, no staging folder


def test_archive_with_too_few_reviews_is_rejected(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "a.tar.gz", skip="train/pos")
    monkeypatch.setenv(data.ARCHIVE_ENV, str(archive))
    cache = tmp_path / "cache"
    with pytest.raises(IMDBDataError, match="does not hold the complete IMDb data set"):
        imdb_dir(cache, expected_per_folder=PER_FOLDER)
    assert list(cache.iterdir()) == []


def test_an_incomplete_cached_copy_is_not_trusted(tmp_path, monkeypatch):
    """A folder left by an interrupted extraction (no completion marker) is replaced."""
    cache = tmp_path / "cache"
    (cache / "aclImdb" / "train" / "pos").mkdir(parents=True)
    archive = make_archive(tmp_path / "a.tar.gz")
    monkeypatch.setenv(data.ARCHIVE_ENV, str(archive))
    folder = imdb_dir(cache, expected_per_folder=PER_FOLDER)
    assert data.count_reviews(folder)["test/neg"] == PER_FOLDER


# --- the download path, against a server on 127.0.0.1 ----------------------------------------


def test_download_verifies_extracts_and_caches(tmp_path, http_server, no_env):
    base_url, served, requests_seen = http_server
    archive = make_archive(served / "aclImdb_v1.tar.gz")
    url, md5 = f"{base_url}/aclImdb_v1.tar.gz", md5_of(archive)
    cache = tmp_path / "cache"

    folder = imdb_dir(cache, url=url, md5=md5, expected_per_folder=PER_FOLDER)
    assert data.count_reviews(folder) == {name: PER_FOLDER for name in data.LABELED_FOLDERS}
    assert len(requests_seen) == 1

    # Second call: no network, no extraction (the folder's timestamp does not change).
    stamp = folder.stat().st_mtime_ns
    assert imdb_dir(cache, url=url, md5=md5, expected_per_folder=PER_FOLDER) == folder
    assert len(requests_seen) == 1
    assert folder.stat().st_mtime_ns == stamp


def test_download_with_wrong_md5_keeps_nothing(tmp_path, http_server, no_env):
    base_url, served, _ = http_server
    make_archive(served / "aclImdb_v1.tar.gz")
    cache = tmp_path / "cache"
    with pytest.raises(IMDBDataError, match="failed its MD5 check"):
        imdb_dir(cache, url=f"{base_url}/aclImdb_v1.tar.gz", md5="0" * 32, expected_per_folder=PER_FOLDER)
    leftovers = list(cache.iterdir()) if cache.exists() else []
    assert leftovers == []


def test_no_network_and_no_local_copy_gives_one_clear_sentence(tmp_path, http_server, no_env):
    base_url, _, _ = http_server  # the server has no such file: like a dead link
    with pytest.raises(IMDBDataError) as info:
        imdb_dir(tmp_path / "cache", url=f"{base_url}/missing.tar.gz", expected_per_folder=PER_FOLDER)
    message = str(info.value)
    assert "IMDB_ARCHIVE" in message and "missing.tar.gz" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback


def test_unreachable_host_gives_the_same_clear_message(tmp_path, no_env):
    # Port 9 on 127.0.0.1 ("discard") is closed here: the connection is refused at once.
    with pytest.raises(IMDBDataError, match="Could not download .*set IMDB_ARCHIVE"):
        imdb_dir(tmp_path / "cache", url="http://127.0.0.1:9/aclImdb_v1.tar.gz")


# --- loading and splitting ---------------------------------------------------------------------


def test_load_imdb_labels_and_stable_order(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ARCHIVE_ENV, str(make_archive(tmp_path / "a.tar.gz", per_folder=12)))
    folder = imdb_dir(tmp_path / "cache", expected_per_folder=12)
    train = load_imdb("train", folder=folder)
    assert [label for _, label in train] == [0] * 12 + [1] * 12
    # Numeric order of ids: 2 comes before 10.
    ids = [int(text.split()[2].rstrip(":")) for text, _ in train[:12]]
    assert ids == list(range(12))
    assert load_imdb("train", folder=folder) == train
    with pytest.raises(ValueError, match="split must be one of"):
        load_imdb("valid", folder=folder)
    with pytest.raises(IMDBDataError, match="not an aclImdb folder"):
        load_imdb("test", folder=tmp_path)


def test_train_valid_split_is_deterministic_and_disjoint():
    reviews = [(f"review {i}", i % 2) for i in range(1000)]
    train, valid = train_valid_split(reviews, n_valid=200, seed=0)
    assert len(train) == 800 and len(valid) == 200
    assert set(train).isdisjoint(valid) and set(train) | set(valid) == set(reviews)
    assert train_valid_split(reviews, n_valid=200, seed=0) == (train, valid)
    assert train_valid_split(reviews, n_valid=200, seed=1)[1] != valid
    # The same on every machine: Python's random.Random(seed).shuffle is platform-independent.
    assert [text for text, _ in valid[:3]] == ["review 6", "review 21", "review 25"]
    with pytest.raises(ValueError):
        train_valid_split(reviews, n_valid=0)


def write_review(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_ratings_come_from_the_file_names_in_load_imdb_order(tmp_path):
    for split in ("train", "test"):
        write_review(tmp_path / split / "neg", "10_1.txt", "awful")
        write_review(tmp_path / split / "neg", "2_4.txt", "meh")
        write_review(tmp_path / split / "pos", "7_10.txt", "superb")
        write_review(tmp_path / split / "pos", "3_7.txt", "fine")
    ratings = load_imdb_ratings("train", folder=tmp_path)
    assert ratings == [("meh", 4), ("awful", 1), ("fine", 7), ("superb", 10)]  # negatives, then positives, by id
    assert [text for text, _ in ratings] == [text for text, _ in load_imdb("train", folder=tmp_path)]
    assert rating_of(Path("aclImdb/train/pos/123_8.txt")) == 8
    assert data.RATINGS == (1, 2, 3, 4, 7, 8, 9, 10)


def test_a_rating_that_contradicts_its_folder_is_refused(tmp_path):
    write_review(tmp_path / "train" / "neg", "1_9.txt", "a negative review with 9 stars?")
    with pytest.raises(IMDBDataError, match="9 stars"):
        load_imdb_ratings("train", folder=tmp_path)
    write_review(tmp_path / "test" / "pos", "review.txt", "no rating in the name")
    with pytest.raises(IMDBDataError, match="not named <id>_<rating>.txt"):
        load_imdb_ratings("test", folder=tmp_path)


def test_unlabeled_reviews_are_read_by_id_and_a_missing_folder_is_named(tmp_path):
    write_review(tmp_path / "train" / "pos", "1_8.txt", "labeled")
    with pytest.raises(IMDBDataError, match="no train/unsup/ folder"):
        load_unlabeled(folder=tmp_path)
    write_review(tmp_path / "train" / "unsup", "10_0.txt", "ten")
    write_review(tmp_path / "train" / "unsup", "9_0.txt", "nine")
    assert load_unlabeled(folder=tmp_path) == ["nine", "ten"]


@pytest.mark.skipif(not os.environ.get(data.ARCHIVE_ENV), reason="IMDB_ARCHIVE is not set")
def test_real_archive_ratings_and_unlabeled_reviews():
    ratings = load_imdb_ratings("train")
    assert [stars >= 7 for _, stars in ratings] == [label == 1 for _, label in load_imdb("train")]
    assert {stars for _, stars in ratings} == set(data.RATINGS)
    unlabeled = load_unlabeled()
    assert len(unlabeled) == 50_000 and all(unlabeled[:100])


@pytest.mark.skipif(not os.environ.get(data.ARCHIVE_ENV), reason="IMDB_ARCHIVE is not set")
def test_real_archive_counts_and_balance():
    train, test = load_imdb("train"), load_imdb("test")
    assert len(train) == len(test) == 25_000
    assert sum(label for _, label in train) == sum(label for _, label in test) == 12_500
    assert all(isinstance(text, str) and text for text, _ in train[:100])
    tr, va = train_valid_split(train)
    assert (len(tr), len(va)) == (20_000, 5_000)
    assert abs(sum(label for _, label in va) - 2_500) < 150  # roughly balanced
