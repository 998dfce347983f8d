"""Using a trained classifier on new text: ``predict_sentiment`` and word-by-word predictions (lesson 6).

A prediction repeats, for one text, exactly what training did for every review: tokenize, look the
tokens up in the *training* vocabulary (unknown words become ``<unk>``), shorten very long texts
the way training did, run the model, and turn the logit into a probability with a sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from .models import SentimentClassifier
from .text import Vocab, tokenize
from .training import load_checkpoint, truncate


def text_to_ids(text: str, vocab: Vocab) -> list[int]:
    """Check the input and turn it into token ids; raise a clear error on bad input.

    * not a string -> ``TypeError``;
    * empty, only whitespace, or no word at all (e.g. only punctuation) -> ``ValueError``;
    * words the vocabulary does not know are fine: they become ``<unk>``.
    """
    if not isinstance(text, str):
        raise TypeError(f"predict_sentiment() expects a string, got {type(text).__name__}.")
    if not text.strip():
        raise ValueError("predict_sentiment() got an empty text: write a review first.")
    tokens = tokenize(text)
    if not tokens:
        raise ValueError(f"predict_sentiment() found no words in {text[:40]!r}: write a review with words.")
    return vocab.encode(tokens)


@torch.no_grad()
def _check_binary(model: SentimentClassifier) -> None:
    """Refuse, in one sentence, a model that gives several classes (e.g. lesson 8's star ratings)."""
    classes = getattr(getattr(model, "config", None), "num_classes", 1)
    if classes != 1:
        raise ValueError(f"This model predicts {classes} classes (e.g. star ratings), not P(positive): "
                         "use course_utils.training.predict_probabilities for its distribution.")


def predict_sentiment(
    text: str,
    model: SentimentClassifier,
    vocab: Vocab,
    max_len: Optional[int] = None,
    head: float = 0.5,
    reverse: bool = False,
) -> float:
    """The model's probability that ``text`` is a positive review, between 0 and 1.

    ``max_len`` / ``head`` shorten long texts as the model's training did (``truncate``). Without
    gradients, one review of 100,000 words needs only the memory of its output sequence.
    ``reverse=True`` is for a model trained on reviews read from their end (lesson 9's backward
    classifier): the words are reversed after shortening, as in its training.
    """
    _check_binary(model)
    ids = truncate(text_to_ids(text, vocab), max_len, head)
    if reverse:
        ids = ids[::-1]
    model.eval()
    device = next(model.parameters()).device
    logit = model(torch.tensor([ids], device=device), torch.tensor([len(ids)]))
    return torch.sigmoid(logit).item()


@torch.no_grad()
def prediction_by_word(
    text: str, model: SentimentClassifier, vocab: Vocab, max_words: int = 2_000
) -> tuple[list[str], list[float]]:
    """The probability of "positive" after each word: what the model says if the text stopped there.

    Returns the tokens and one probability per token (the first ``max_words`` of them). The last
    probability equals ``predict_sentiment`` on the same (untruncated) words.
    """
    _check_binary(model)
    ids = text_to_ids(text, vocab)[:max_words]
    model.eval()
    device = next(model.parameters()).device
    logits = model.prefix_logits(torch.tensor(ids, device=device))
    return tokenize(text)[: len(ids)], torch.sigmoid(logits).tolist()


@dataclass
class Predictor:
    """A trained model with its vocabulary and its truncation: ``predictor("Great film!") -> 0.97``."""

    model: SentimentClassifier
    vocab: Vocab
    max_len: Optional[int] = None
    head: float = 0.5
    reverse: bool = False  # lesson 9's backward classifier reads each review from its end

    def __call__(self, text: str) -> float:
        return predict_sentiment(text, self.model, self.vocab, self.max_len, self.head, self.reverse)

    def by_word(self, text: str, max_words: int = 2_000) -> tuple[list[str], list[float]]:
        if self.reverse:
            raise ValueError("This model reads reviews from their end: what it says after each word from the start "
                             "is not defined. Use a forward model for prediction_by_word.")
        return prediction_by_word(text, self.model, self.vocab, max_words)


def load_predictor(path: Union[str, Path], device: Optional[torch.device] = None) -> Predictor:
    """Load a checkpoint saved by lesson 6 or ``python -m course_utils.train`` as a ``Predictor``."""
    model, checkpoint = load_checkpoint(path, device)
    if "vocab" not in checkpoint:
        raise ValueError(f"{path} has no vocabulary: it was not saved by course_utils.train.")
    _check_binary(model)
    return Predictor(model, Vocab(checkpoint["vocab"]), checkpoint.get("max_len"), checkpoint.get("head", 0.5),
                     bool(checkpoint.get("reverse", False)))
