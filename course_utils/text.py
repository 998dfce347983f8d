"""From text to token ids: a tokenizer and a vocabulary, in plain Python (lesson 3).

No torchtext: it is deprecated and no longer matches current PyTorch. A tokenizer is a regular
expression, and a vocabulary is a list (id -> token) plus a dict (token -> id).
"""

from __future__ import annotations

import hashlib
import pickle
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
EOS_TOKEN = "<eos>"  # the end of a review in a language model's stream (course_utils.lm)
PAD_INDEX, UNK_INDEX = 0, 1

# Bump this when tokenize() changes, so that cached token lists made by an older version are not reused.
TOKENIZER_VERSION = 2

# An HTML tag: "<", anything but angle brackets, ">". IMDb reviews hold almost only "<br />".
_HTML_TAG = re.compile(r"<[^<>]+>")
# An emoticon: eyes (: ; =), an optional nose (-), a mouth ( ) ( D P p ), and no letter or digit
# right after it, so that "Rating:Decent" is not read as ":D" + "ecent". Examples: :) ;-( :D =P
_EMOTICON = r"[:;=]-?[()DPp](?!\w)"
# A word: letters/digits (any alphabet), with apostrophes kept inside it ("don't", "isn't").
_WORD = r"\w+(?:'\w+)*"
# Emoticons are tried first. A word never starts with ":", ";" or "=", so a token that does is an emoticon.
_TOKEN = re.compile(f"{_EMOTICON}|{_WORD}")
_EMOTICON_EYES = (":", ";", "=")


def tokenize(text: str) -> list[str]:
    """Split a review into lower-case tokens, dropping HTML tags and punctuation, keeping emoticons.

    >>> tokenize("Great film!<br /><br />I'd watch it again :D")
    ['great', 'film', "i'd", 'watch', 'it', 'again', ':D']

    Three steps: replace every HTML tag by a space; find the emoticons and the words, left to right;
    lower-case the words. Emoticons keep their case, so ``:D`` stays ``:D`` (and ``:d`` is no emoticon).
    Everything else (punctuation, symbols, spaces) only separates tokens.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() expects a string, got {type(text).__name__}.")
    text = _HTML_TAG.sub(" ", text)
    return [
        token if token.startswith(_EMOTICON_EYES) else token.lower()
        for token in _TOKEN.findall(text)
    ]


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


# Bump this when the format of the cache files changes.
_CACHE_FORMAT = 2


def _texts_fingerprint(texts: Sequence[str]) -> str:
    """A short hash of the texts, the tokenizer version and the cache format, to name a cache file."""
    digest = hashlib.sha1(f"tokenizer-v{TOKENIZER_VERSION}-cache-v{_CACHE_FORMAT}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _tokenize_interned(texts: Sequence[str]) -> list[list[str]]:
    return [[sys.intern(token) for token in tokenize(text)] for text in texts]


def tokenize_all(texts: Sequence[str], cache_dir: Optional[Path] = None) -> list[list[str]]:
    """Tokenize many texts, reusing a cached result from an earlier run when there is one.

    ``cache_dir=None`` tokenizes without caching. Otherwise the result is saved in ``cache_dir``
    (pickle) under a name made from a hash of the texts and of ``TOKENIZER_VERSION``, so a change
    of either makes a new file; an unreadable cache file is ignored and rewritten.

    Equal tokens are stored once (``sys.intern``): 50,000 reviews hold 12 million tokens but only
    about 100,000 distinct ones, so this saves hundreds of megabytes of memory, halves the cache
    file, and makes reading it back several times faster (pickle stores each string only once).
    """
    if cache_dir is None:
        return _tokenize_interned(texts)
    cache_dir = Path(cache_dir)
    cache_file = cache_dir / f"tokens-{_texts_fingerprint(texts)}.pkl"
    if cache_file.exists():
        try:
            with open(cache_file, "rb") as f:
                cached = pickle.load(f)
            if isinstance(cached, list) and len(cached) == len(texts):
                return cached
        except (pickle.UnpicklingError, EOFError, OSError, ValueError, AttributeError):
            pass
        cache_file.unlink(missing_ok=True)  # unreadable or not ours: make it again
    tokenized = _tokenize_interned(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file of our own, then rename it: the rename is atomic, so neither a
    # crash nor two notebooks tokenizing at the same time can leave a half-written cache file.
    with tempfile.NamedTemporaryFile("wb", dir=cache_dir, suffix=".partial", delete=False) as f:
        pickle.dump(tokenized, f, protocol=pickle.HIGHEST_PROTOCOL)
    Path(f.name).replace(cache_file)
    return tokenized
