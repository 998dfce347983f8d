"""Checkers for the exercises of lesson 3, from text to tensors
(``notebooks/exercises/03_exercises.ipynb``; tests in ``tests/test_checks_lesson03.py``).

Each checker makes random inputs (texts, vocabularies), runs the student's function and compares it
with an oracle: the course's own ``course_utils.text``. When the answer is wrong, the checker also
runs the *mistakes students often make* (forgetting ``<unk>``, counting specials, ...) and names the
one that matches. Every checker takes a ``seed``: the hidden tests call it again with other seeds.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Callable, Optional

import torch

from ..text import PAD_INDEX, UNK_INDEX, Vocab, tokenize
from ._common import (
    StudentCodeError,
    call_student,
    describe,
    first_matching_mistake,
    keeps_random_state,
    success,
)

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------
# Lesson 3, exercise 1: a tokenizer (the rules of course_utils.text.tokenize, stated in the exercise)
# ----------------------------------------------------------------------------------------------
_WORDS = ["the", "Movie", "was", "GREAT", "acting", "plot", "Bad", "boring", "film", "loved",
          "Amélie", "café", "naïve", "Ñandú", "10", "2001", "b_movie", "Hitchcock", "ÉTÉ", "東京物語",
          "x2", "3D", "don't", "ISN'T", "rock'n'roll", "it's", "Rating:Decent", "Note:Poor", "wow:D"]
_EMOTICONS = [":)", ":(", ";)", ":D", ":P", ":-)", ":-(", ";-)", ":-D", ";(", ";D", "=)", "=(", "=P",
              ":p", ";-p", "=D", ":Dgreat", ";)yes", "=Pno"]  # the last three: glued to letters
_PUNCTUATION = [".", ",", "!", "?", "...", "!!", "\"", "(", ")", " - ", "/", "*", "&", "%", "'", ":", "="]
_TAGS = ["<br />", "<br /><br />", "<i>", "</i>", "<b>", "</b>", "<br/>", "<p>", "<hr>"]


def _random_review(rng: random.Random) -> str:
    """A review-like string: words, punctuation, HTML tags, emoticons (some glued), in random order."""
    parts = []
    for _ in range(rng.randint(6, 20)):
        kind = rng.random()
        pool = _WORDS if kind < 0.5 else _PUNCTUATION if kind < 0.65 else _TAGS if kind < 0.8 else _EMOTICONS
        parts += [rng.choice(pool), rng.choice([" ", " ", " ", "", "\n"])]
    return "".join(parts)


# Each text isolates one rule where a naive reading of it disagrees with the lesson's tokenizer.
_FIXED_REVIEWS = [
    "A GREAT film!<br /><br />Loved it :)",
    "Boring...<br />The plot? Bad :-( <i>so</i> bad.",
    "Wow;) really good:D",
    "Rating:Decent. Note:Poor.",
    "I don't think it's 10/10",
    "Fun =) but =( too",
    "so cute :p and ;-p",
    "Amélie, café & 東京物語 — 10/10!",
    "",
    "<br /><br />",
    "end<br/>start",
]


def _tokens(text: str, *, tag: str | None = " ", eyes: str = ":;=", mouths: str = "()DPp",
            glued: bool = False, apostrophes: bool = True, ascii_only: bool = False,
            lower_words: bool = True, lower_emoticons: bool = False, emoticons: str = "inline",
            nose: bool = True) -> list[str]:
    """The lesson's tokenizer with switches that reproduce common mistakes (defaults: the lesson's).

    ``emoticons``: "inline" (in place), "end" (appended, as the classic tutorials) or "none"."""
    if tag is not None:
        text = re.sub(r"<[^<>]+>", tag, text)
    w = "[A-Za-z0-9_]" if ascii_only else r"\w"
    emoticon = f"[{re.escape(eyes)}]-?[{re.escape(mouths)}]" + ("" if glued else f"(?!{w})")
    word = f"{w}+(?:'{w}+)*" if apostrophes else f"{w}+"
    found = re.findall(f"{emoticon}|{word}" if emoticons == "inline" else word, text)
    if emoticons == "end":
        found += re.findall(emoticon, text)
    tokens = [t if t[0] not in eyes else t.lower() if lower_emoticons else t
              for t in (t.lower() if lower_words and t[0] not in eyes else t for t in found)]
    return tokens if nose else [t.replace("-", "") if t[0] in eyes else t for t in tokens]


def _tokenizer_variants(text: str) -> list[tuple[Callable[[], Any], str]]:
    mistakes = [
        (dict(tag=None), "HTML tags are still there (tokens such as 'br'): replace every tag <...> by a space first."),
        (dict(tag=""), "Two words separated only by a tag are glued together: replace each tag by a SPACE, not by ''."),
        (dict(lower_words=False), "Words must be lower-cased (emoticons keep their case)."),
        (dict(eyes=":;"), "'=' is an emoticon's eyes too: '=)' and '=P' are emoticons."),
        (dict(mouths="()DP"), "A lower-case 'p' is a mouth too: ':p' is an emoticon."),
        (dict(emoticons="none"), "The emoticons are missing: find them and the words in one pass, "
         "re.findall(emoticon + '|' + word, text)."),
        (dict(lower_emoticons=True), "Emoticons must keep their case: ':D' stays ':D' (lower-case only the words)."),
        (dict(emoticons="end"), "The emoticons are all at the end: keep every token where it is in the text "
         "(the classic tutorials append them at the end; this exercise asks for the text's order)."),
        (dict(emoticons="end", nose=False), "The emoticons are at the end and without their nose: keep them unchanged, where they are."),
        (dict(nose=False), "The nose of the emoticons is gone: keep ':-)' as ':-)'."),
        (dict(glued=True), "An emoticon is never followed by a letter or digit: 'Rating:Decent' holds no ':D' "
         "(end the emoticon's pattern with the look-ahead (?!\\w))."),
        (dict(apostrophes=False), "Apostrophes inside a word are kept: \"don't\" is one token, not 'don', 't' "
         "(a word is \\w+(?:'\\w+)*)."),
        (dict(ascii_only=True), "Letters outside a-z are lost (é, ñ, 東): \\w matches the letters of every alphabet."),
        (dict(eyes=":;", mouths="()DP", glued=True, apostrophes=False), "These are not the lesson's rules: eyes "
         ": ; =, mouths ) ( D P p, no letter or digit right after an emoticon, apostrophes kept inside words."),
    ]
    variants = [(lambda switches=switches: _tokens(text, **switches), hint) for switches, hint in mistakes]
    no_tags = re.sub(r"<[^<>]+>", " ", text)
    return variants + [(lambda: no_tags.lower().split(), "Punctuation is still attached to the words: find "
                        "the runs of word characters (re.findall), do not split on spaces.")]


@keeps_random_state
def check_tokenize_review(tokenize_review: Callable, seed: int = 0, trials: int = 30) -> None:
    """Check ``tokenize_review(text) -> list[str]`` against ``course_utils.text.tokenize``.

    The rules (lesson 3, section 2): every HTML tag ``<...>`` becomes a space; emoticons (eyes
    ``:`` ``;`` ``=``, an optional nose ``-``, a mouth ``)`` ``(`` ``D`` ``P`` ``p``, not followed by a
    letter or digit) are kept unchanged where they are; the other tokens are words, runs of word
    characters with apostrophes kept inside (``\\w+(?:'\\w+)*``), lower-cased. The texts include
    the cases where a looser reading differs ("Rating:Decent", "don't", "=)", ":p", glued emoticons).
    """
    rng = random.Random(seed)
    texts = _FIXED_REVIEWS + [_random_review(rng) for _ in range(trials)]
    for text in texts:
        got = call_student(tokenize_review, text, name="tokenize_review")
        expected = tokenize(text)
        if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
            raise AssertionError(
                f"tokenize_review({text!r}) should return a list of strings, got {describe(got)}: {got!r}.")
        if got == expected:
            continue
        hint = first_matching_mistake(got, _tokenizer_variants(text), lambda a, b: a == b)
        if hint is None:
            wrong = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            hint = (f"The first difference is at token {wrong}: got "
                    f"{got[wrong] if wrong < len(got) else 'nothing'!r}, expected "
                    f"{expected[wrong] if wrong < len(expected) else 'nothing'!r}.")
        raise AssertionError(f"tokenize_review({text!r}) returned {got!r}, expected {expected!r}. {hint}")
    success(f"tokenize_review gives the expected tokens for {len(texts)} texts "
            "(HTML tags, emoticons, apostrophes, punctuation, accents, empty text).")


# ----------------------------------------------------------------------------------------------
# Lesson 3, exercise 2: build a vocabulary
# ----------------------------------------------------------------------------------------------
_VOCAB_WORDS = ["the", "a", "film", "movie", "good", "bad", "great", "plot", "actor", "story",
                "boring", "funny", "scene", "end", ":)", "music", "long", "best", "worst", "ok"]


def _random_corpus(rng: random.Random) -> list[list[str]]:
    """Tokenized texts with Zipf-like frequencies, so that there are frequent and rare words and ties."""
    words = rng.sample(_VOCAB_WORDS, len(_VOCAB_WORDS))
    weights = [1 / (rank + 1) for rank in range(len(words))]
    return [rng.choices(words, weights, k=rng.randint(3, 12)) for _ in range(rng.randint(8, 15))]


def _vocab_variants(texts: list[list[str]], min_freq: int, max_size: Optional[int]):
    counts = Counter(t for text in texts for t in text)

    def order(keep: Callable[[int], bool], key=lambda t: (-counts[t], t)) -> list[str]:
        return sorted((t for t in counts if keep(counts[t])), key=key)

    def cut(tokens: list[str], size: Optional[int]) -> list[str]:
        return tokens if size is None else tokens[:size]

    room = None if max_size is None else max_size - 2
    first_seen = list(dict.fromkeys(t for text in texts for t in text))
    keep = lambda n: n >= min_freq  # noqa: E731
    return [
        (lambda: cut(order(keep), room),
         "The special tokens are missing: the list must start with '<pad>', '<unk>' (ids 0 and 1)."),
        (lambda: ["<unk>", "<pad>", *cut(order(keep), room)],
         "The special tokens are swapped: '<pad>' must get id 0 and '<unk>' id 1."),
        (lambda: cut([*order(keep), "<pad>", "<unk>"], max_size),
         "The special tokens must come FIRST ('<pad>' = 0, '<unk>' = 1), not at the end."),
        (lambda: ["<pad>", "<unk>", *cut(order(lambda n: n > min_freq), room)],
         "Words seen exactly min_freq times are missing: keep a word when its count is >= min_freq."),
        (lambda: ["<pad>", "<unk>", *cut(order(keep), max_size)],
         "The vocabulary is 2 tokens too long: max_size counts '<pad>' and '<unk>' too."),
        (lambda: ["<pad>", "<unk>", *cut(sorted((t for t in first_seen if keep(counts[t])),
                                                key=lambda t: -counts[t]), room)],
         "Words with the same count are in the order first seen: break ties alphabetically "
         "(sort by (-count, token)), so that the same texts always give the same ids."),
        (lambda: ["<pad>", "<unk>", *cut(order(keep, key=lambda t: t), room)],
         "The words are only sorted alphabetically: sort by frequency first (most frequent first)."),
        (lambda: ["<pad>", "<unk>", *cut(order(keep, key=lambda t: (counts[t], t)), room)],
         "The rarest words come first: the most frequent words must get the smallest ids."),
        (lambda: ["<pad>", "<unk>", *cut(order(lambda n: True), room)],
         "min_freq is ignored: drop the words seen fewer than min_freq times."),
        (lambda: ["<pad>", "<unk>", *order(keep)],
         "max_size is ignored: keep at most max_size tokens in all ('<pad>' and '<unk>' included)."),
    ]


@keeps_random_state
def check_build_vocab(build_vocab: Callable, seed: int = 0) -> None:
    """Check ``build_vocab(tokenized_texts, min_freq=1, max_size=None) -> list[str]`` (id -> token).

    The oracle is ``course_utils.text.Vocab.build(...).itos``: '<pad>', '<unk>', then the words
    seen at least ``min_freq`` times, most frequent first, ties alphabetically, at most
    ``max_size`` tokens in all.
    """
    rng = random.Random(seed)
    cases = []
    for min_freq, max_size in ((1, None), (2, None), (3, None), (1, 6), (2, 5), (1, 1000)):
        cases.append((_random_corpus(rng), min_freq, max_size))
    for texts, min_freq, max_size in cases:
        copy = [list(text) for text in texts]
        call = f"build_vocab(texts, min_freq={min_freq}, max_size={max_size})"
        got = call_student(build_vocab, copy, min_freq=min_freq, max_size=max_size, name="build_vocab")
        if copy != texts:
            raise AssertionError("build_vocab changed the texts it was given: only count them.")
        expected = Vocab.build(texts, min_freq=min_freq, max_size=max_size).itos
        if not isinstance(got, list):
            raise AssertionError(f"{call} should return a list of tokens (index = id), got {describe(got)}.")
        if got == expected:
            continue
        hint = first_matching_mistake(got, _vocab_variants(texts, min_freq, max_size), lambda a, b: a == b)
        if hint is None:
            if len(got) != len(set(got)):
                hint = "A token appears twice: each token must get exactly one id."
            elif len(got) != len(expected):
                hint = f"It has {len(got)} tokens, expected {len(expected)}."
            else:
                hint = "Check the order: '<pad>', '<unk>', then by count (descending), ties alphabetically."
        counts = Counter(t for text in texts for t in text).most_common()
        raise AssertionError(f"{call} returned {got}, expected {expected} (the counts: {counts}). {hint}")
    success(f"build_vocab matches Vocab.build on {len(cases)} random corpora and cut-offs.")


# ----------------------------------------------------------------------------------------------
# Lesson 3, exercise 3: encode with <unk>
# ----------------------------------------------------------------------------------------------
@keeps_random_state
def check_encode(encode: Callable, seed: int = 0) -> None:
    """Check ``encode(tokens, stoi) -> list[int]``: each token's id, ``UNK_INDEX`` (1) when unknown."""
    rng = random.Random(seed)
    vocab_words = rng.sample(_VOCAB_WORDS, 10) + [":D"]
    stoi = {token: i for i, token in enumerate(["<pad>", "<unk>", *vocab_words])}
    unknown = [w for w in _VOCAB_WORDS if w not in stoi] + ["zebra", "The", ":d"]
    cases = [[], [vocab_words[0]], ["zebra"], [":D", ":d", "The", "the"]]
    for _ in range(6):
        cases.append([rng.choice(vocab_words if rng.random() < 0.6 else unknown) for _ in range(rng.randint(5, 15))])
    for tokens in cases:
        stoi_copy = dict(stoi)
        try:
            got = call_student(encode, list(tokens), stoi_copy, name="encode")
        except StudentCodeError as error:
            if "KeyError" in str(error):
                raise StudentCodeError(
                    f"{error} A word that is not in stoi must become UNK_INDEX (1): "
                    "use stoi.get(token, UNK_INDEX).") from None
            raise
        if stoi_copy != stoi:
            raise AssertionError("encode changed stoi: unknown words must not be added to the vocabulary.")
        expected = [stoi.get(t, UNK_INDEX) for t in tokens]
        if isinstance(got, Tensor):
            raise AssertionError("encode should return a list of ints, not a tensor (collate makes the tensors).")
        if not isinstance(got, list) or not all(isinstance(i, int) for i in got):
            raise AssertionError(f"encode should return a list of ints, got {describe(got)}: {got!r}.")
        if got == expected:
            continue
        variants = [
            (lambda: [stoi[t] for t in tokens if t in stoi],
             "Unknown words are dropped: map them to UNK_INDEX (1) instead, so the model still sees that a word was there."),
            (lambda: [stoi.get(t, PAD_INDEX) for t in tokens],
             "Unknown words became 0, the id of '<pad>': use UNK_INDEX (1); padding means 'nothing here'."),
            (lambda: [stoi.get(t, len(stoi)) for t in tokens],
             "Unknown words got id len(stoi), which has no embedding row: use UNK_INDEX (1)."),
            (lambda: [stoi.get(t, -1) for t in tokens], "Unknown words became -1: use UNK_INDEX (1)."),
            (lambda: [stoi.get(t.lower(), UNK_INDEX) for t in tokens],
             "The tokens are lower-cased again: encode them exactly as they are (':D' is not ':d')."),
            (lambda: [stoi[t] for t in dict.fromkeys(tokens) if t in stoi],
             "Repeated or unknown words are lost: encode every token, in order, one id each."),
            (lambda: [stoi.get(t, UNK_INDEX) for t in dict.fromkeys(tokens)],
             "Repeated words are encoded once: encode every token, one id each, even repeated ones."),
            (lambda: [stoi.get(t, UNK_INDEX) for t in sorted(tokens)],
             "The order is changed: keep the tokens' order (a review read in another order is another review)."),
        ]
        hint = first_matching_mistake(got, variants, lambda a, b: a == b) or "Each token gives stoi[token], or 1 when it is not in stoi."
        raise AssertionError(f"encode({tokens!r}, stoi) returned {got!r}, expected {expected!r}. {hint}")
    success(f"encode gives the right ids, <unk> for unknown words, on {len(cases)} token lists.")
