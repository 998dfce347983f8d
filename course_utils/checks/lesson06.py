"""Checkers for the exercises of lesson 6, training on IMDb
(``notebooks/exercises/06_exercises.ipynb``; tests in ``tests/test_checks_lesson06.py``).

Each checker builds a tiny model and data, runs the student's code and compares it with an oracle:
the course's ``course_utils.training``, which lesson 6 writes out in the open. When the answer is
wrong it also runs the *mistakes students often make* (forgetting ``model.eval()`` or
``optimizer.zero_grad()``, ...) and names the one that matches. Every checker takes a ``seed``.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Callable

import torch
from torch import nn

from ..batching import padding_mask
from ..models import ModelConfig, SentimentClassifier
from ..text import PAD_INDEX, UNK_INDEX, Vocab, tokenize
from ._common import assert_tensor, call_student, random_lengths, success

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 1: one training step
# ----------------------------------------------------------------------------------------------
def _tiny_model(seed: int, vocab_size: int = 20, dropout: float = 0.5) -> SentimentClassifier:
    torch.manual_seed(seed)
    return SentimentClassifier(ModelConfig(vocab_size=vocab_size, embedding_dim=4, hidden_size=5, cell="lstm",
                                           pooling="max", dropout=dropout))


def _tiny_batch(rng: random.Random, vocab_size: int = 20) -> tuple[Tensor, Tensor, Tensor]:
    batch, longest = rng.randint(4, 8), rng.randint(3, 7)
    lengths = random_lengths(rng, batch, longest)
    ids = torch.randint(2, vocab_size, (batch, longest)).masked_fill(~padding_mask(lengths, longest), PAD_INDEX)
    labels = torch.tensor([float(rng.random() < 0.5) for _ in range(batch)])
    return ids, labels, lengths


def _reference_step(model, ids, labels, lengths, optimizer) -> float:
    model.train()
    logits = model(ids, lengths)
    loss = nn.BCEWithLogitsLoss()(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def check_train_step(train_step: Callable, seed: int = 0) -> None:
    """Check ``train_step(model, ids, labels, lengths, optimizer) -> float``: model in training mode,
    forward, ``BCEWithLogitsLoss`` on the logits, zero the old gradients, backward, optimizer step,
    and return the loss as a Python float."""
    rng = random.Random(seed)
    for trial in range(2):
        model = _tiny_model(seed * 10 + trial)
        model.eval()  # the student's step must switch it to training mode
        reference = copy.deepcopy(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        reference_optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
        for parameter, twin in zip(model.parameters(), reference.parameters()):  # stale gradients from before
            parameter.grad = torch.randn_like(parameter)
            twin.grad = parameter.grad.clone()
        ids, labels, lengths = _tiny_batch(rng)
        before = copy.deepcopy(model.state_dict())
        torch.manual_seed(100 + trial)
        got = call_student(train_step, model, ids, labels, lengths, optimizer, name="train_step")
        torch.manual_seed(100 + trial)
        expected = _reference_step(reference, ids, labels, lengths, reference_optimizer)
        if isinstance(got, Tensor):
            raise AssertionError("train_step returned a tensor: return the loss as a Python float with loss.item() "
                                 "(a tensor would keep the whole graph of the batch alive).")
        if not isinstance(got, float):
            raise AssertionError(f"train_step should return the loss as a float, got {type(got).__name__}.")
        unchanged = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        if unchanged:
            raise AssertionError("The weights did not change: call optimizer.step() after loss.backward().")
        if not model.training:
            raise AssertionError("The model is still in eval mode: call model.train() first, so that dropout is on "
                                 "while training.")
        with torch.no_grad():
            model.eval()
            probe = model(ids, lengths)
            reference.eval()
            probe_reference = reference(ids, lengths)
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-5) and torch.allclose(probe, probe_reference, atol=1e-5):
            continue
        clone = _tiny_model(seed * 10 + trial)
        with torch.no_grad():
            torch.manual_seed(100 + trial)
            sigmoid_loss = nn.BCEWithLogitsLoss()(torch.sigmoid(clone.train()(ids, lengths)), labels).item()
            eval_loss = nn.BCEWithLogitsLoss()(clone.eval()(ids, lengths), labels).item()
        if math.isclose(got, sigmoid_loss, rel_tol=1e-4):
            raise AssertionError("The loss was computed on sigmoid(logits): BCEWithLogitsLoss takes the logits "
                                 "themselves (it applies the sigmoid inside).")
        if math.isclose(got, eval_loss, rel_tol=1e-4):
            raise AssertionError("The forward pass ran without dropout: call model.train() BEFORE the forward pass.")
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-5):
            raise AssertionError("The loss is right but the weights after the step are not: call "
                                 "optimizer.zero_grad() before loss.backward(), otherwise the gradients of earlier "
                                 "batches are added to this one's.")
        raise AssertionError(f"train_step returned the loss {got:.5f}, expected {expected:.5f}: "
                             "use nn.BCEWithLogitsLoss()(model(ids, lengths), labels).")
    success("train_step: training mode, BCEWithLogitsLoss on the logits, zero_grad, backward, step, "
            "loss returned as a float.")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 2: accuracy on a data set
# ----------------------------------------------------------------------------------------------
class _SpyModel(nn.Module):
    """Logits fixed per review (from its first token); noisy in training mode; records how it was called."""

    def __init__(self, logit_of_token: Tensor):
        super().__init__()
        self.logit_of_token = logit_of_token
        self.scale = nn.Parameter(torch.ones(()))  # so that there is a gradient graph to build
        self.grad_enabled_seen = False
        self.training_seen = False

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        self.grad_enabled_seen |= torch.is_grad_enabled()
        self.training_seen |= self.training
        logits = self.logit_of_token[ids[:, 0]] * self.scale
        if self.training:  # dropout-like noise: a model in training mode gives other answers
            logits = -logits
        return logits


def check_accuracy(accuracy: Callable, seed: int = 0) -> None:
    """Check ``accuracy(model, loader) -> float``: the fraction of reviews whose prediction
    (logit > 0, i.e. probability > 0.5) equals the label, over the whole data set, computed in
    ``eval()`` mode without gradients."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    logit_of_token = torch.randn(30, generator=generator) * 0.6
    logit_of_token[2:6] = torch.tensor([0.2, 0.3, -0.2, 0.4])  # logits between 0 and 0.5 matter
    batches = []
    for size in (8, 8, 8, 3):  # a smaller last batch: per-batch averages would be wrong
        first = torch.randint(2, 30, (size,), generator=generator)
        ids = torch.cat([first.unsqueeze(1), torch.randint(2, 30, (size, 3), generator=generator)], dim=1)
        labels = torch.tensor([float(rng.random() < 0.5) for _ in range(size)])
        batches.append((ids, labels, torch.full((size,), 4)))
    model = _SpyModel(logit_of_token)
    model.train()
    got = call_student(accuracy, model, batches, name="accuracy")
    correct = sum(((logit_of_token[ids[:, 0]] > 0).float() == labels).sum().item() for ids, labels, _ in batches)
    expected = correct / sum(len(labels) for _, labels, _ in batches)
    if isinstance(got, Tensor):
        raise AssertionError("accuracy returned a tensor: return a Python float (e.g. correct / total with "
                             "correct counted via .item()).")
    if not isinstance(got, (float, int)):
        raise AssertionError(f"accuracy should return a float, got {type(got).__name__}.")
    if model.training_seen:
        raise AssertionError("The model ran in training mode (dropout on): call model.eval() before evaluating.")
    if model.grad_enabled_seen:
        raise AssertionError("The forward pass built a gradient graph: evaluate inside `with torch.no_grad():` "
                             "(it saves memory and time).")
    if math.isclose(got, expected, abs_tol=1e-9):
        success(f"accuracy = {expected:.4f}: eval mode, no gradients, logits > 0, counted over all reviews.")
        return
    per_batch = sum(((logit_of_token[ids[:, 0]] > 0).float() == labels).float().mean().item()
                    for ids, labels, _ in batches) / len(batches)
    at_half = sum(((logit_of_token[ids[:, 0]] > 0.5).float() == labels).sum().item()
                  for ids, labels, _ in batches) / sum(len(labels) for _, labels, _ in batches)
    if math.isclose(got, per_batch, abs_tol=1e-9):
        hint = ("That is the mean of the per-batch accuracies; batches differ in size, so count the correct "
                "reviews and divide by the total number of reviews.")
    elif math.isclose(got, at_half, abs_tol=1e-9):
        hint = "The threshold 0.5 applies to probabilities; on logits it is 0 (sigmoid(0) = 0.5): logits > 0."
    elif math.isclose(got, 100 * expected, abs_tol=1e-7):
        hint = "Return a fraction between 0 and 1, not a percentage."
    else:
        hint = "Count the reviews where (logits > 0) equals the label, over all batches, divided by their number."
    raise AssertionError(f"accuracy returned {got}, expected {expected:.4f}. {hint}")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 3: predict_sentiment with clear errors on bad input
# ----------------------------------------------------------------------------------------------
_CHECK_WORDS = ["<pad>", "<unk>", "good", "bad", "great", "awful", "movie", "the", "plot", "was"]


def check_predict_sentiment(predict_sentiment: Callable, seed: int = 0) -> None:
    """Check ``predict_sentiment(text, model, vocab) -> float``: the probability of "positive"
    (sigmoid of the logit, in eval mode); ``TypeError`` for non-strings; ``ValueError`` for empty or
    whitespace-only text; a prediction (not an error) for text made only of unknown words."""
    vocab = Vocab(_CHECK_WORDS)
    model = _tiny_model(seed, vocab_size=len(vocab), dropout=0.5)
    model.train()  # the student's function must switch to eval mode itself

    def expected(text: str) -> float:
        ids = vocab.encode(tokenize(text))
        reference = copy.deepcopy(model).eval()
        with torch.no_grad():
            return torch.sigmoid(reference(torch.tensor([ids]), torch.tensor([len(ids)]))).item()

    texts = ["The movie was GOOD!", "awful plot, bad movie<br />", "great", "the the the plot was... bad?"]
    for text in texts:
        got = call_student(predict_sentiment, text, model, vocab, name="predict_sentiment")
        if isinstance(got, Tensor):
            raise AssertionError("predict_sentiment returned a tensor: return a Python float with .item().")
        if not isinstance(got, float):
            raise AssertionError(f"predict_sentiment should return a float, got {type(got).__name__}.")
        want = expected(text)
        if math.isclose(got, want, abs_tol=1e-5):
            continue
        ids = vocab.encode(tokenize(text))
        with torch.no_grad():
            logit = copy.deepcopy(model).eval()(torch.tensor([ids]), torch.tensor([len(ids)])).item()
        if model.training:
            hint = "The model is still in training mode (dropout on, random answers): call model.eval() first."
        elif math.isclose(got, logit, abs_tol=1e-5):
            hint = "That is the logit: apply torch.sigmoid to get a probability."
        elif not 0.0 <= got <= 1.0:
            hint = "A probability lies between 0 and 1: apply torch.sigmoid to the logit."
        else:
            hint = ("Tokenize with course_utils.text.tokenize, encode with the vocabulary, call model.eval() and run "
                    "the model on a batch of one review (ids of shape (1, n), lengths tensor([n])).")
        raise AssertionError(f"predict_sentiment({text!r}) returned {got:.5f}, expected {want:.5f}. {hint}")
    unknown = "zyzzyva quokka flibbertigibbet"
    try:
        got = predict_sentiment(unknown, model, vocab)
    except Exception as exc:  # noqa: BLE001 - any error here is the mistake we report
        raise AssertionError(f"predict_sentiment({unknown!r}) raised {type(exc).__name__}: {exc}. A text made only of "
                             "unknown words is valid: every word becomes <unk> and the model still answers.") from None
    unk_ids = [UNK_INDEX] * 3
    with torch.no_grad():
        want = torch.sigmoid(copy.deepcopy(model).eval()(torch.tensor([unk_ids]), torch.tensor([3]))).item()
    if not (isinstance(got, float) and math.isclose(got, want, abs_tol=1e-5)):
        raise AssertionError(f"predict_sentiment({unknown!r}) returned {got!r}, expected {want:.5f} (three <unk>).")
    for bad, error in ((None, TypeError), (42, TypeError), (["good", "movie"], TypeError), (b"good", TypeError),
                       ("", ValueError), ("   ", ValueError), ("\n\t ", ValueError)):
        try:
            predict_sentiment(bad, model, vocab)
        except error:
            continue
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"predict_sentiment({bad!r}) raised {type(exc).__name__}: {exc}; expected a "
                                 f"{error.__name__} with a clear message. Check the input first: "
                                 "isinstance(text, str), then text.strip().") from None
        raise AssertionError(f"predict_sentiment({bad!r}) returned a value; expected a {error.__name__}: "
                             + ("only strings can be read." if error is TypeError
                                else "an empty or blank text has nothing to rate."))
    success("predict_sentiment: probabilities in eval mode, unknown words accepted, TypeError for non-strings, "
            "ValueError for empty text.")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 4: the confusion matrix
# ----------------------------------------------------------------------------------------------
def check_confusion_matrix(confusion_matrix: Callable, seed: int = 0) -> None:
    """Check ``confusion_matrix(probabilities, labels) -> (2, 2)`` integer counts: row = true class,
    column = predicted class (probability > 0.5 means positive), index 0 = negative, 1 = positive."""
    generator = torch.Generator().manual_seed(seed)
    for n in (40, 7):
        probabilities = torch.rand(n, generator=generator)
        labels = (torch.rand(n, generator=generator) < 0.6).long()
        predicted = (probabilities > 0.5).long()
        expected = torch.zeros(2, 2, dtype=torch.long)
        for true, guess in zip(labels.tolist(), predicted.tolist()):
            expected[true, guess] += 1
        got = call_student(confusion_matrix, probabilities.clone(), labels.clone(), name="confusion_matrix")
        got = assert_tensor(got, "confusion_matrix(probabilities, labels)")
        if tuple(got.shape) != (2, 2):
            raise AssertionError(f"confusion_matrix has shape {tuple(got.shape)}, expected (2, 2).")
        if got.is_floating_point() and not torch.equal(got, got.round()):
            hint = (" These look like fractions: count reviews (integers), don't normalize."
                    if math.isclose(got.sum().item(), 1.0, abs_tol=1e-5) or torch.allclose(got.sum(1), torch.ones(2))
                    else "")
            raise AssertionError(f"confusion_matrix should hold whole counts, got {got.tolist()}.{hint}")
        got = got.long()
        if torch.equal(got, expected):
            continue
        if torch.equal(got, expected.T):
            hint = "It is transposed: rows are the TRUE classes, columns the predicted ones."
        elif torch.equal(got, expected.flip(0).flip(1)):
            hint = "Index 0 is negative and index 1 positive (you put positive first)."
        elif got.sum().item() != n:
            hint = f"The counts add up to {got.sum().item()}, but there are {n} reviews."
        else:
            hint = "Predicted positive means probability > 0.5; count (true, predicted) pairs."
        raise AssertionError(f"confusion_matrix returned {got.tolist()}, expected {expected.tolist()}. {hint}")
    success("confusion_matrix counts (true, predicted) pairs with the threshold 0.5.")
