"""The checkers of lesson 3 (text to tensors; course_utils/checks/lesson03.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import torch

from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_build_vocab,
    check_encode,
    check_tokenize_review,
)




SEEDS = [0, 1, 2, 11]


# ----------------------------------------------------------------------------------------------
# tokenize_review
# ----------------------------------------------------------------------------------------------
EMOTICON = r"[:;]-?[()DP]"


def tokenize_review(text):
    text = re.sub(r"<[^>]+>", " ", text)
    return [t if re.fullmatch(EMOTICON, t) else t.lower() for t in re.findall(EMOTICON + r"|\w+", text)]


def tokenize_review_finditer(text):  # another right answer, written differently
    tokens = []
    for match in re.finditer(r"(?P<emo>[:;]-?[()DP])|(?P<word>\w+)", re.sub(r"<.*?>", " ", text)):
        tokens.append(match["emo"] or match["word"].lower())
    return tokens


@pytest.mark.parametrize("seed", SEEDS)
def test_tokenize_accepts_right_answers(seed, capsys):
    check_tokenize_review(tokenize_review, seed=seed)
    check_tokenize_review(tokenize_review_finditer, seed=seed)
    assert "tokenize_review gives the expected tokens" in capsys.readouterr().out


def classic_tutorial(text):  # Raschka's preprocessor: emoticons appended at the end, nose removed
    text = re.sub(r"<[^>]*>", "", text)
    emoticons = re.findall(r"(?::|;|=)(?:-)?(?:\)|\(|D|P)", text)
    return re.sub(r"[\W]+", " ", text.lower()).split() + [e.replace("-", "") for e in emoticons]


@pytest.mark.parametrize("broken, fragments", [
    (lambda t: [x if re.fullmatch(EMOTICON, x) else x.lower() for x in re.findall(EMOTICON + r"|\w+", t)],
     ["HTML tags are still there"]),
    (lambda t: tokenize_review(re.sub(r"<[^>]+>", "", t)), ["replace each tag by a SPACE"]),
    (lambda t: re.findall(EMOTICON + r"|\w+", re.sub(r"<[^>]+>", " ", t)), ["lower-cased"]),
    (lambda t: re.findall(r"\w+", re.sub(r"<[^>]+>", " ", t).lower()), ["emoticons are missing"]),
    (lambda t: [x.lower() for x in tokenize_review(t)], ["keep their case"]),
    (lambda t: re.findall(r"\w+", re.sub(r"<[^>]+>", " ", t).lower()) + re.findall(EMOTICON, re.sub(r"<[^>]+>", " ", t)),
     ["all at the end"]),
    (lambda t: [x.replace("-", "") for x in tokenize_review(t)], ["nose"]),
    (lambda t: re.sub(r"<[^>]+>", " ", t).lower().split(), ["NON-WORD"]),
    (lambda t: [x if re.fullmatch(EMOTICON, x) else x.lower()
                for x in re.findall(EMOTICON + r"|[A-Za-z0-9_]+", re.sub(r"<[^>]+>", " ", t))], ["outside a-z"]),
    (lambda t: tokenize_review(t) + ["the"], ["The first difference is at token", "expected 'nothing'"]),
    (lambda t: " ".join(tokenize_review(t)), ["should return a list of strings"]),
    (not_implemented, ["not implemented yet"]),
])
def test_tokenize_rejects_mistakes(broken, fragments):
    rejects(check_tokenize_review, broken, *fragments)


def test_the_classic_tutorial_preprocessor_is_told_what_differs():
    # it glues words across tags and appends emoticons: either hint is right, the first found wins
    message = rejects(check_tokenize_review, classic_tutorial)
    assert "SPACE" in message or "end" in message


# ----------------------------------------------------------------------------------------------
# build_vocab
# ----------------------------------------------------------------------------------------------
def build_vocab(tokenized_texts, min_freq=1, max_size=None):
    counts = Counter(token for tokens in tokenized_texts for token in tokens)
    kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
    itos = ["<pad>", "<unk>"] + kept
    return itos if max_size is None else itos[:max_size]


def make_vocab(*, specials=("<pad>", "<unk>"), at_end=False, strict=False, size_without_specials=False,
               key="freq_alpha", ignore_min=False, ignore_max=False):
    def broken(tokenized_texts, min_freq=1, max_size=None):
        counts = Counter(token for tokens in tokenized_texts for token in tokens)
        keep = (lambda n: True) if ignore_min else (lambda n: n > min_freq if strict else n >= min_freq)
        kept = [t for t in counts if keep(counts[t])]  # first-seen order
        if key == "freq_alpha":
            kept.sort(key=lambda t: (-counts[t], t))
        elif key == "freq_first_seen":
            kept.sort(key=lambda t: -counts[t])
        elif key == "alpha":
            kept.sort()
        elif key == "rare_first":
            kept.sort(key=lambda t: (counts[t], t))
        if at_end:
            itos = kept + list(specials)
            return itos if max_size is None or ignore_max else itos[:max_size]
        room = None if max_size is None or ignore_max else (max_size if size_without_specials else max_size - len(specials))
        return list(specials) + (kept if room is None else kept[:room])
    return broken


def test_build_vocab_accepts_the_right_answer(capsys):
    for seed in SEEDS:
        check_build_vocab(build_vocab, seed=seed)
    assert "build_vocab matches Vocab.build" in capsys.readouterr().out


@pytest.mark.parametrize("broken, fragments", [
    (make_vocab(specials=()), ["special tokens are missing"]),
    (make_vocab(specials=("<unk>", "<pad>")), ["swapped"]),
    (make_vocab(at_end=True), ["FIRST"]),
    (make_vocab(strict=True), [">= min_freq"]),
    (make_vocab(size_without_specials=True), ["max_size counts"]),
    (make_vocab(key="freq_first_seen"), ["alphabetically"]),
    (make_vocab(key="alpha"), ["only sorted alphabetically"]),
    (make_vocab(key="rare_first"), ["rarest words come first"]),
    (make_vocab(ignore_min=True), ["min_freq is ignored"]),
    (make_vocab(ignore_max=True), ["max_size is ignored"]),
    (lambda texts, min_freq=1, max_size=None: set(build_vocab(texts, min_freq, max_size)), ["should return a list"]),
    (lambda texts, min_freq=1, max_size=None: build_vocab(texts, min_freq, max_size) + ["<pad>"], ["appears twice"]),
    (not_implemented, ["not implemented yet"]),
])
def test_build_vocab_rejects_mistakes(broken, fragments):
    rejects(check_build_vocab, broken, *fragments)


def test_build_vocab_must_not_change_its_input():
    def clears(texts, min_freq=1, max_size=None):
        result = build_vocab(texts, min_freq, max_size)
        texts.clear()
        return result
    rejects(check_build_vocab, clears, "changed the texts")


# ----------------------------------------------------------------------------------------------
# encode
# ----------------------------------------------------------------------------------------------
def encode(tokens, stoi):
    return [stoi.get(token, 1) for token in tokens]


def test_encode_accepts_the_right_answer(capsys):
    for seed in SEEDS:
        check_encode(encode, seed=seed)
    check_encode(lambda tokens, stoi: [stoi[t] if t in stoi else stoi["<unk>"] for t in tokens])
    assert "encode gives the right ids" in capsys.readouterr().out


def adds_unknowns(tokens, stoi):
    for t in tokens:
        stoi.setdefault(t, len(stoi))
    return [stoi[t] for t in tokens]


@pytest.mark.parametrize("broken, fragments", [
    (lambda tokens, stoi: [stoi[t] for t in tokens if t in stoi], ["dropped"]),
    (lambda tokens, stoi: [stoi.get(t, 0) for t in tokens], ["id of '<pad>'"]),
    (lambda tokens, stoi: [stoi.get(t, len(stoi)) for t in tokens], ["len(stoi)"]),
    (lambda tokens, stoi: [stoi.get(t, -1) for t in tokens], ["-1"]),
    (lambda tokens, stoi: [stoi.get(t.lower(), 1) for t in tokens], ["lower-cased"]),
    (lambda tokens, stoi: [stoi.get(t, 1) for t in dict.fromkeys(tokens)], ["encoded once"]),
    (lambda tokens, stoi: [stoi.get(t, 1) for t in sorted(tokens)], ["order"]),
    (lambda tokens, stoi: [stoi[t] for t in tokens], ["KeyError", "stoi.get(token, UNK_INDEX)"]),
    (lambda tokens, stoi: torch.tensor([stoi.get(t, 1) for t in tokens]), ["not a tensor"]),
    (adds_unknowns, ["changed stoi"]),
    (not_implemented, ["not implemented yet"]),
])
def test_encode_rejects_mistakes(broken, fragments):
    rejects(check_encode, broken, *fragments)
