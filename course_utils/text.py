"""From text to token ids: a tokenizer and a vocabulary, in plain Python (lesson 3).

No torchtext: it is deprecated and no longer matches current PyTorch. A tokenizer is a regular
expression, and a vocabulary is a list (id -> token) plus a dict (token -> id).
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
PAD_INDEX, UNK_INDEX = 0, 1

# Bump this when tokenize() changes, so that cached token lists made by an older version are not reused.
TOKENIZER_VERSION = 1

_HTML_TAG = re.compile(r"<[^>]+>")
# An emoticon: eyes (: ; =), an optional nose (-), a mouth ( ) ( D P ). Examples: :) ;-( :D =P
_EMOTICON = r"[:;=]-?[()DPp]"
# A word: letters/digits (any alphabet), with apostrophes kept inside it ("don't", "isn't").
_WORD = r"\w+(?:'\w+)*"
_TOKEN = re.compile(f"(?P<emoticon>{_EMOTICON})|(?P<word>{_WORD})")


def tokenize(text: str) -> list[str]:
    """Split a review into lower-case tokens, dropping HTML tags and punctuation, keeping emoticons.

    >>> tokenize("Great film!<br /><br />I'd watch it again :D")
    ['great', 'film', "i'd", 'watch', 'it', 'again', ':D']

    Emoticons are found before lower-casing, so ``:D`` stays ``:D`` and is not confused with ``:d``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() expects a string, got {type(text).__name__}.")
    text = _HTML_TAG.sub(" ", text)
    tokens = []
    for match in _TOKEN.finditer(text):
        if match.group("emoticon"):
            tokens.append(match.group("emoticon"))
        else:
            tokens.append(match.group("word").lower())
    return tokens


class Vocab:
    """A mapping between tokens and integer ids, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Build it from the *training* texts only: words that appear only in validation or test
    reviews must look unknown to the model, exactly as new words will in real use.
    """

    def __init__(self, tokens: Sequence[str]):
        """``tokens`` lists every token in id order; it must start with ``<pad>``, ``<unk>``."""
        if list(tokens[:2]) != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError(f"A Vocab must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}.")
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("A Vocab cannot hold the same token twice.")

    @classmethod
    def build(
        cls,
        tokenized_texts: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: Optional[int] = None,
    ) -> "Vocab":
        """Count tokens and keep those seen at least ``min_freq`` times, most frequent first.

        ``max_size`` caps the total size, the two special tokens included. Ties in frequency are
        broken alphabetically, so the same texts always give the same ids.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}.")
        if max_size is not None and max_size < 2:
            raise ValueError(f"max_size must leave room for {PAD_TOKEN} and {UNK_TOKEN}, got {max_size}.")
        counts: Counter[str] = Counter()
        for tokens in tokenized_texts:
            counts.update(tokens)
        for special in (PAD_TOKEN, UNK_TOKEN):
            counts.pop(special, None)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([PAD_TOKEN, UNK_TOKEN, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token``, or ``UNK_INDEX`` if it is not in the vocabulary."""
        return self.stoi.get(token, UNK_INDEX)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token list -> id list; unknown tokens become ``UNK_INDEX``."""
        return [self.stoi.get(token, UNK_INDEX) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Id list -> token list (padding included, so you can see it)."""
        return [self.itos[int(i)] for i in ids]

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"


def _texts_fingerprint(texts: Sequence[str]) -> str:
    """A short hash of the texts and the tokenizer version, to name a cache file."""
    digest = hashlib.sha1(f"tokenizer-v{TOKENIZER_VERSION}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def tokenize_all(texts: Sequence[str], cache_dir: Optional[Path] = None) -> list[list[str]]:
    """Tokenize many texts, reusing a cached result from an earlier run when there is one.

    The cache file is named by a hash of the texts and of ``TOKENIZER_VERSION``, so a change of
    either makes a new one; an unreadable cache file is ignored and rewritten.
    """
    if cache_dir is None:
        return [tokenize(text) for text in texts]
    cache_dir = Path(cache_dir)
    cache_file = cache_dir / f"tokens-{_texts_fingerprint(texts)}.pkl"
    if cache_file.exists():
        try:
            with open(cache_file, "rb") as f:
                return pickle.load(f)
        except (pickle.UnpicklingError, EOFError, OSError):
            cache_file.unlink(missing_ok=True)
    tokenized = [tokenize(text) for text in texts]
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial")
    with open(partial, "wb") as f:
        pickle.dump(tokenized, f, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(cache_file)  # atomic: a crash never leaves a half-written cache file
    return tokenized
