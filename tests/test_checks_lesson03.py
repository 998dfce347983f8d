"""The checkers of lesson 3 (text to tensors; course_utils/checks/lesson03.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest
import torch

from checker_testing import keeps_random_state, not_implemented, rejects
from course_utils.checks import (
    check_build_vocab,
    check_encode,
    check_tokenize_review,
)

SEEDS = [0, 1, 2, 11]


# ----------------------------------------------------------------------------------------------
# tokenize_review: the rules of lesson 3 (course_utils.text.tokenize), as the exercise states them
# ----------------------------------------------------------------------------------------------
EMOTICON = r"[:;=]-?[()DPp](?!\w)"
WORD = r"\w+(?:'\w+)*"


def tokenize_review(text):
    text = re.sub(r"<[^<>]+>", " ", text)
    return [t if t[0] in ":;=" else t.lower() for t in re.findall(f"{EMOTICON}|{WORD}", text)]


def tokenize_review_finditer(text):
    """Named groups with re.finditer, tags removed with a non-greedy pattern."""
    tokens = []
    for match in re.finditer(f"(?P<emo>{EMOTICON})|(?P<word>{WORD})", re.sub(r"<.*?>", " ", text)):
        tokens.append(match["emo"] or match["word"].lower())
    return tokens


def tokenize_review_by_pieces(text):
    """Splits on everything that is neither a word character, an apostrophe nor an emoticon
    character, then reads each piece from the left; no single regular expression for tokens."""
    tokens = []
    for piece in re.split(r"[^\w':;=()\-]+", re.sub(r"<[^<>]+>", " ", text)):
        while piece:
            emoticon = re.match(EMOTICON, piece)
            word = re.match(WORD, piece)
            if emoticon:
                tokens.append(emoticon.group())
                piece = piece[emoticon.end():]
            elif word:
                tokens.append(word.group().lower())
                piece = piece[word.end():]
            else:
                piece = piece[1:]
    return tokens


@pytest.mark.parametrize("right", [tokenize_review, tokenize_review_finditer, tokenize_review_by_pieces])
@pytest.mark.parametrize("seed", SEEDS)
def test_tokenize_accepts_right_answers_written_differently(right, seed, capsys):
    check_tokenize_review(right, seed=seed)
    assert "tokenize_review gives the expected tokens" in capsys.readouterr().out


def classic_tutorial(text):  # Raschka's preprocessor: emoticons appended at the end, nose removed
    text = re.sub(r"<[^>]*>", "", text)
    emoticons = re.findall(r"(?::|;|=)(?:-)?(?:\)|\(|D|P)", text)
    return re.sub(r"[\W]+", " ", text.lower()).split() + [e.replace("-", "") for e in emoticons]


def former_reference(text):  # the exercise's reference answer before its rules matched the lesson's
    text = re.sub(r"<[^>]+>", " ", text)
    return [t if t[0] in ":;" else t.lower() for t in re.findall(r"[:;]-?[()DP]|\w+", text)]


def tokenizer(*, tag=" ", eyes=":;=", mouths="()DPp", look_ahead=True, word=WORD, lower=True):
    """The lesson's tokenizer with one rule changed."""
    emoticon = f"[{re.escape(eyes)}]-?[{re.escape(mouths)}]" + ("(?!\\w)" if look_ahead else "")

    def broken(text):
        if tag is not None:
            text = re.sub(r"<[^<>]+>", tag, text)
        found = re.findall(f"{emoticon}|{word}", text)
        return [t if t[0] in eyes or not lower else t.lower() for t in found]
    return broken


@pytest.mark.parametrize("broken, fragments", [
    (tokenizer(tag=None), ["HTML tags are still there"]),
    (tokenizer(tag=""), ["replace each tag by a SPACE"]),
    (tokenizer(lower=False), ["lower-cased"]),
    (tokenizer(look_ahead=False), ["Rating:Decent", "never followed by a letter or digit"]),
    (tokenizer(word=r"\w+"), ["don't", "one token"]),
    (tokenizer(eyes=":;"), ["'=' is an emoticon's eyes too"]),
    (tokenizer(mouths="()DP"), ["lower-case 'p' is a mouth too"]),
    (tokenizer(word=r"[A-Za-z0-9_]+(?:'[A-Za-z0-9_]+)*"), ["outside a-z"]),
    (former_reference, ["Rating:Decent"]),
    (lambda t: re.findall(r"\w+", re.sub(r"<[^>]+>", " ", t).lower()), ["emoticons are missing"]),
    (lambda t: [x.lower() for x in tokenize_review(t)], ["keep their case"]),
    (lambda t: [x for x in tokenize_review(t) if x[0] not in ":;="] + [x for x in tokenize_review(t) if x[0] in ":;="],
     ["all at the end"]),
    (lambda t: [x.replace("-", "") for x in tokenize_review(t)], ["nose"]),
    (lambda t: re.sub(r"<[^>]+>", " ", t).lower().split(), ["do not split on spaces"]),
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


def test_the_texts_hold_every_case_where_a_looser_reading_differs():
    from course_utils.checks.lesson03 import _FIXED_REVIEWS
    from course_utils.text import tokenize

    texts = " ".join(_FIXED_REVIEWS)
    for case in ["Rating:Decent", "don't", "=)", ":p", "good:D"]:
        assert case in texts, case
    assert tokenize("Rating:Decent") == ["rating", "decent"] and tokenize("don't =) :p") == ["don't", "=)", ":p"]


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


def build_vocab_by_hand(tokenized_texts, min_freq=1, max_size=None):
    """A dict of counts, then sorted by count and word; the cut applied before adding specials."""
    counts = {}
    for tokens in tokenized_texts:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    kept = sorted(t for t in counts if counts[t] >= min_freq)
    kept.sort(key=lambda t: counts[t], reverse=True)  # stable: ties stay alphabetical
    if max_size is not None:
        kept = kept[:max_size - 2]
    return ["<pad>", "<unk>", *kept]


def build_vocab_most_common(tokenized_texts, min_freq=1, max_size=None):
    """Counter.most_common, re-sorted for ties."""
    pairs = Counter(itertools.chain.from_iterable(tokenized_texts)).most_common()
    kept = [t for t, n in sorted(pairs, key=lambda pair: (-pair[1], pair[0])) if n >= min_freq]
    return (["<pad>", "<unk>"] + kept)[:max_size]


@pytest.mark.parametrize("right", [build_vocab, build_vocab_by_hand, build_vocab_most_common])
def test_build_vocab_accepts_right_answers_written_differently(right, capsys):
    for seed in SEEDS:
        check_build_vocab(right, seed=seed)
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
    check_encode(lambda tokens, stoi: list(map(lambda t: stoi.get(t, 1), tokens)))
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


def test_checkers_leave_the_random_stream_alone():
    assert keeps_random_state(lambda: check_tokenize_review(tokenize_review))
    assert keeps_random_state(lambda: check_build_vocab(build_vocab))
    assert keeps_random_state(lambda: check_encode(encode))
