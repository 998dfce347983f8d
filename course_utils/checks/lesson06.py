"""Checkers for the exercises of lesson 6, training on IMDb
(``notebooks/exercises/06_exercises.ipynb``; tests in ``tests/test_checks_lesson06.py``).

Each checker builds a tiny model and data, runs the student's code and compares it with an oracle:
the course's ``course_utils.training`` / ``course_utils.predict``, which lesson 6 writes out in the
open. When the answer is wrong it also runs the *mistakes students often make* (forgetting
``model.eval()`` or ``optimizer.zero_grad()``, keeping the last epoch instead of the best, ...) and
names the one that matches. Every checker takes a ``seed`` and a ``device`` (``None``: the
notebooks' default, see ``_common``): the model lives on ``device``, batches come from the CPU as a
``DataLoader`` gives them, and results are compared on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from ..batching import collate_batch, padding_mask
from ..models import ModelConfig, SentimentClassifier
from ..text import PAD_INDEX, Vocab, tokenize
from ._common import exact_float32  # the whole check in full float32 on a GPU (no TF32)
from ._common import (
    Device,
    as_scalar_tensor,
    call_student,
    describe,
    generator,
    is_close,
    random_lengths,
    resolve_device,
    result_on,
    success,
)

Tensor = torch.Tensor
# A measured accuracy or loss may have been computed in float32 and then turned into a Python
# float: compare with float32's round-off, relatively (the mistakes below differ by far more).
RTOL = 1e-5


def _number(got: Any) -> Optional[float]:
    """A Python number or a 0-d / one-element tensor as a float, else ``None``."""
    value = as_scalar_tensor(got)
    return None if value is None or value.numel() != 1 or value.dtype == torch.bool else float(value.item())


@contextlib.contextmanager
def _seeded_on(device: torch.device, seed: int) -> Iterator[None]:
    """A block with its own random stream on the CPU and on ``device`` (dropout draws there)."""
    gpus = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        yield


def _tiny_model(seed: int, vocab_size: int = 20, dropout: float = 0.5) -> SentimentClassifier:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SentimentClassifier(ModelConfig(vocab_size=vocab_size, embedding_dim=4, hidden_size=5, cell="lstm",
                                               pooling="max", dropout=dropout))


def _tiny_batch(rng: random.Random, vocab_size: int = 20) -> tuple[Tensor, Tensor, Tensor]:
    batch, longest = rng.randint(4, 8), rng.randint(3, 7)
    lengths = random_lengths(rng, batch, longest)
    ids = torch.randint(2, vocab_size, (batch, longest), generator=generator(rng.randrange(10**6)))
    labels = torch.tensor([float(rng.random() < 0.5) for _ in range(batch)])
    return ids.masked_fill(~padding_mask(lengths, longest), PAD_INDEX), labels, lengths


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 1: one training step
# ----------------------------------------------------------------------------------------------
def _reference_step(model, ids, labels, lengths, optimizer) -> float:
    model.train()
    loss = nn.BCEWithLogitsLoss()(model(ids, lengths), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@exact_float32
def check_train_step(train_step: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``train_step(model, ids, labels, lengths, optimizer) -> float``: model in training mode,
    forward, ``BCEWithLogitsLoss`` on the logits, zero the old gradients, backward, optimizer step,
    and return the loss as a Python float. ``ids`` and ``labels`` are on the model's device."""
    device = resolve_device(device)
    rng = random.Random(seed)
    for trial in range(2):
        model = _tiny_model(seed * 10 + trial).to(device).eval()  # the step must switch to training mode
        reference = copy.deepcopy(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        reference_optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
        stale = generator(seed + trial)
        for parameter, twin in zip(model.parameters(), reference.parameters()):  # gradients of an earlier batch
            parameter.grad = torch.randn(parameter.shape, generator=stale).to(device)
            twin.grad = parameter.grad.clone()
        ids, labels, lengths = _tiny_batch(rng)
        ids, labels = ids.to(device), labels.to(device)
        before = copy.deepcopy(model.state_dict())
        with _seeded_on(device, 100 + trial):
            got = call_student(train_step, model, ids, labels, lengths, optimizer, name="train_step")
        with _seeded_on(device, 100 + trial):
            expected = _reference_step(reference, ids, labels, lengths, reference_optimizer)
        if isinstance(got, Tensor):
            raise AssertionError("train_step returned a tensor: return the loss as a Python float with loss.item() "
                                 "(a tensor would keep the whole graph of the batch alive).")
        if not isinstance(got, float):
            raise AssertionError(f"train_step should return the loss as a float, got {type(got).__name__}.")
        if all(torch.equal(before[k], v) for k, v in model.state_dict().items()):
            raise AssertionError("The weights did not change: call optimizer.step() after loss.backward().")
        if not model.training:
            raise AssertionError("The model is still in eval mode: call model.train() first, so that dropout is on "
                                 "while training.")
        with torch.no_grad():
            probe, probe_reference = model.eval()(ids, lengths), reference.eval()(ids, lengths)
        if math.isclose(got, expected, rel_tol=RTOL) and is_close(probe.cpu(), probe_reference.cpu()):
            continue
        clone = _tiny_model(seed * 10 + trial).to(device)
        with torch.no_grad(), _seeded_on(device, 100 + trial):
            sigmoid_loss = nn.BCEWithLogitsLoss()(torch.sigmoid(clone.train()(ids, lengths)), labels).item()
            eval_loss = nn.BCEWithLogitsLoss()(clone.eval()(ids, lengths), labels).item()
        if math.isclose(got, sigmoid_loss, rel_tol=RTOL):
            hint = ("The loss was computed on sigmoid(logits): BCEWithLogitsLoss takes the logits themselves "
                    "(it applies the sigmoid inside).")
        elif math.isclose(got, eval_loss, rel_tol=RTOL):
            hint = "The forward pass ran without dropout: call model.train() BEFORE the forward pass."
        elif math.isclose(got, expected, rel_tol=RTOL):
            hint = ("The loss is right but the weights after the step are not: call optimizer.zero_grad() before "
                    "loss.backward(), otherwise the gradients of earlier batches are added to this one's.")
        else:
            hint = (f"train_step returned the loss {got:.5f}, expected {expected:.5f}: "
                    "use nn.BCEWithLogitsLoss()(model(ids, lengths), labels).")
        raise AssertionError(hint)
    success("train_step: training mode, BCEWithLogitsLoss on the logits, zero_grad, backward, step, "
            "loss returned as a float.")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 2: accuracy on a data set
# ----------------------------------------------------------------------------------------------
class _SpyModel(nn.Module):
    """Logits fixed per review (from its first token); other logits in training mode (as dropout
    would give); records how it was called, and refuses a batch left on another device."""

    def __init__(self, logit_of_token: Tensor):
        super().__init__()
        self.register_buffer("logit_of_token", logit_of_token)
        self.scale = nn.Parameter(torch.ones(()))  # so that there is a gradient graph to build
        self.grad_enabled_seen = False
        self.training_seen = False

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        if ids.device != self.scale.device:
            raise RuntimeError(f"the batch is on {ids.device.type} but the model on {self.scale.device.type}: "
                               "move ids (and labels) to the model's device, next(model.parameters()).device")
        self.grad_enabled_seen |= torch.is_grad_enabled()
        self.training_seen |= self.training
        logits = self.logit_of_token[ids[:, 0]] * self.scale
        return -logits if self.training else logits


def _hits(logits: Tensor, labels: Tensor, threshold: float = 0.0) -> Tensor:
    return ((logits > threshold).float() == labels).float()


def check_accuracy(accuracy: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``accuracy(model, loader) -> float``: the fraction of reviews whose prediction
    (logit > 0, i.e. probability > 0.5) equals the label, over the whole data set, computed in
    ``eval()`` mode without gradients. A Python number or a 0-d tensor is accepted, computed in
    float32 or float64. The model is on ``device``; the loader gives CPU batches.

    ``loader`` is a real ``torch.utils.data.DataLoader`` of 27 reviews in batches of 8, 8, 8 and 3
    (as the lesson's ``make_loader`` gives: ``collate_batch`` batches ``(ids, labels, lengths)``),
    so ``len(loader.dataset)`` is the number of reviews and ``len(loader)`` the number of batches.
    """
    device = resolve_device(device)
    rng = random.Random(seed)
    g = generator(seed)
    logit_of_token = torch.randn(30, generator=g) * 0.6
    logit_of_token[2:6] = torch.tensor([0.2, 0.3, -0.2, 0.4])  # logits between 0 and 0.5 matter
    reviews = [(torch.randint(2, 30, (4,), generator=g).tolist(), int(rng.random() < 0.5)) for _ in range(27)]
    loader = torch.utils.data.DataLoader(reviews, batch_size=8, shuffle=False, collate_fn=collate_batch,
                                         generator=generator(seed))  # its own: the global one is left alone
    batches = list(loader)  # a smaller last batch (3 reviews): per-batch averages would be wrong
    model = _SpyModel(logit_of_token).to(device).train()
    got = call_student(accuracy, model, loader, name="accuracy")
    hits = [_hits(logit_of_token[ids[:, 0]], labels) for ids, labels, _ in batches]
    expected = torch.cat(hits).double().mean().item()
    value = _number(got)
    if value is None:
        raise AssertionError(f"accuracy should return a number (a float, or a 0-d tensor), got {describe(got)}.")
    if model.training_seen:
        raise AssertionError("The model ran in training mode (dropout on): call model.eval() before evaluating.")
    if model.grad_enabled_seen:
        raise AssertionError("The forward pass built a gradient graph: evaluate inside `with torch.no_grad():` "
                             "(it saves memory and time).")
    if math.isclose(value, expected, rel_tol=RTOL):
        success(f"accuracy = {expected:.4f}: eval mode, no gradients, logits > 0, counted over all reviews.")
        return
    total = sum(len(labels) for _, labels, _ in batches)
    mistakes = [
        (sum(h.mean().item() for h in hits) / len(hits),
         "That is the mean of the per-batch accuracies; batches differ in size, so count the correct reviews "
         "and divide by the total number of reviews."),
        (sum(_hits(logit_of_token[ids[:, 0]], labels, 0.5).sum().item() for ids, labels, _ in batches) / total,
         "The threshold 0.5 applies to probabilities; on logits it is 0 (sigmoid(0) = 0.5): logits > 0."),
        (100 * expected, "Return a fraction between 0 and 1, not a percentage."),
        (hits[-1].mean().item(), "That is the accuracy of the last batch only: count over all the batches."),
        (torch.cat(hits).sum().item() / len(loader),
         "That divides by len(loader), the number of BATCHES: divide by the number of reviews, "
         "len(loader.dataset) (or add up len(labels) over the batches)."),
    ]
    hint = next((h for wrong, h in mistakes if math.isclose(value, wrong, rel_tol=RTOL)),
                "Count the reviews where (logits > 0) equals the label, over all batches, divided by their number.")
    raise AssertionError(f"accuracy returned {value}, expected {expected:.4f}. {hint}")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 3: a fit loop that keeps the best validation epoch
# ----------------------------------------------------------------------------------------------
class _ScriptedModel(nn.Module):
    """A stand-in model whose weights say which epoch it is at (all equal to the epoch number);
    records how its state is restored."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))
        self.restored_from_itself = False

    def epoch(self) -> float:
        return self.weight.detach().cpu()[0].item()

    def load_state_dict(self, state_dict, *args: Any, **kwargs: Any):
        weight = state_dict.get("weight") if hasattr(state_dict, "get") else None
        if isinstance(weight, Tensor) and weight.untyped_storage().data_ptr() == \
                self.weight.untyped_storage().data_ptr():
            self.restored_from_itself = True
        return super().load_state_dict(state_dict, *args, **kwargs)


# (validation accuracies in eval mode, training accuracies) per epoch. In each script the best
# validation epoch is neither the last one nor the best training epoch.
_SCRIPTS = [
    ([0.60, 0.71, 0.78, 0.74, 0.76], [0.62, 0.77, 0.85, 0.93, 0.92]),
    ([0.70, 0.80, 0.80, 0.60], [0.70, 0.90, 0.84, 0.88]),   # a tie: the earlier epoch is kept
    ([0.81, 0.64, 0.66], [0.55, 0.71, 0.69]),               # the first epoch is the best
]


def _run_fit(fit_best: Callable, script: tuple[list, list], device: torch.device) -> tuple[Any, dict]:
    """Run the student's fit_best on a scripted model; return its result and what the spies saw."""
    valid, train = script
    model = _ScriptedModel().to(device)
    seen = {"train_calls": 0, "valid_in_training_mode": False, "valid_calls": 0}

    def train_epoch(m: nn.Module) -> float:
        m.train()
        seen["train_calls"] += 1
        with torch.no_grad():
            model.weight.add_(1.0)  # in place, as an optimizer step: the next epoch's weights
        return train[min(int(model.epoch()), len(train)) - 1]

    def valid_accuracy(m: nn.Module) -> float:
        seen["valid_calls"] += 1
        seen["valid_in_training_mode"] |= m.training
        epoch = min(max(int(model.epoch()), 1), len(valid))
        return valid[epoch - 1] - (0.05 * epoch if m.training else 0.0)  # dropout on: other numbers

    got = call_student(fit_best, model, train_epoch, valid_accuracy, len(valid), name="fit_best")
    seen["final_epoch"], seen["restored_from_itself"] = model.epoch(), model.restored_from_itself
    return got, seen


def check_fit_best(fit_best: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``fit_best(model, train_epoch, valid_accuracy, epochs) -> list``: train ``epochs``
    epochs; after each, measure ``valid_accuracy(model)`` with the model in eval mode; keep a COPY
    of the weights of the epoch with the best validation accuracy (the earlier one on a tie) and
    load it back into ``model`` at the end; return the validation accuracies, one per epoch.

    The model is a stand-in whose weights tell which epoch they come from; ``train_epoch`` changes
    them in place as an optimizer does. ``seed`` picks the order of the scripts.
    """
    device = resolve_device(device)
    scripts = _SCRIPTS[seed % len(_SCRIPTS):] + _SCRIPTS[:seed % len(_SCRIPTS)]
    for valid, train in scripts:
        got, seen = _run_fit(fit_best, (valid, train), device)
        epochs = len(valid)
        where = f"(validation accuracies {valid}, training accuracies {train})"
        if seen["train_calls"] != epochs:
            raise AssertionError(f"fit_best(..., epochs={epochs}) called train_epoch {seen['train_calls']} times: "
                                 "once per epoch.")
        if seen["valid_in_training_mode"]:
            raise AssertionError("valid_accuracy ran with the model in training mode (dropout on gives other "
                                 "numbers): call model.eval() before measuring the validation accuracy.")
        values = [_number(v) for v in got] if isinstance(got, (list, tuple)) else None
        if values is None or None in values or len(values) != epochs:
            raise AssertionError(f"fit_best should return the list of the {epochs} validation accuracies, one per "
                                 f"epoch; it returned {describe(got)}.")
        if values == train:
            raise AssertionError(f"fit_best returned the TRAINING accuracies {where}: return (and compare) the "
                                 "validation accuracies.")
        if any(not math.isclose(v, w, rel_tol=RTOL) for v, w in zip(values, valid)):
            raise AssertionError(f"fit_best returned {values}, expected the validation accuracies {valid}.")
        best = valid.index(max(valid)) + 1
        final = seen["final_epoch"]
        if final == best:
            continue
        tied = [i + 1 for i, v in enumerate(valid) if v == max(valid)]
        if seen["restored_from_itself"] or (final == epochs and seen["restored_from_itself"]):
            hint = ("The weights you kept are model.state_dict() itself: its tensors ARE the model's weights, so "
                    "later epochs overwrite them. Keep a copy: copy.deepcopy(model.state_dict()).")
        elif final == epochs:
            hint = ("The model holds the LAST epoch's weights: load the best epoch's copy back at the end "
                    "(model.load_state_dict(best_state)).")
        elif final == train.index(max(train)) + 1:
            hint = "That is the best TRAINING epoch: choose by validation accuracy (the training accuracy flatters)."
        elif final in tied:
            hint = (f"Epochs {tied} tie at {max(valid)}: keep the earlier one (replace only when strictly better, "
                    "with >).")
        elif best == 1:
            hint = "The first epoch can be the best: keep its weights too (start from best = -1 or None)."
        else:
            hint = "Keep a copy of the weights whenever the validation accuracy is the best so far."
        raise AssertionError(f"After fit_best the model holds the weights of epoch {final:g}, but the best "
                             f"validation epoch is {best} {where}. {hint}")
    success("fit_best keeps a copy of the best validation epoch's weights (not the last, not the best "
            "training epoch, the earlier on a tie) and restores it, measuring in eval mode.")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 4: predict_sentiment with clear errors on bad input
# ----------------------------------------------------------------------------------------------
_CHECK_WORDS = ["<pad>", "<unk>", "good", "bad", "great", "awful", "movie", "the", "plot", "was"]


def _expected_probability(model: nn.Module, ids: list[int]) -> tuple[float, float]:
    """(probability, logit) of a CPU copy of ``model`` in eval mode for one review."""
    reference = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        logit = reference(torch.tensor([ids]), torch.tensor([len(ids)]))
    return torch.sigmoid(logit).item(), logit.item()


@exact_float32
def check_predict_sentiment(predict_sentiment: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``predict_sentiment(text, model, vocab) -> float``: the probability of "positive"
    (sigmoid of the logit, in eval mode, on the model's device); ``TypeError`` for non-strings;
    ``ValueError`` for empty or whitespace-only text and for text with no word at all ("!!!",
    "<br />"); a prediction (not an error) for text made only of unknown words."""
    device = resolve_device(device)
    vocab = Vocab(_CHECK_WORDS)
    model = _tiny_model(seed, vocab_size=len(vocab), dropout=0.5).to(device)
    model.train()  # the student's function must switch to eval mode itself
    texts = ["The movie was GOOD!", "awful plot, bad movie<br />", "great", "the the the plot was... bad?",
             "zyzzyva quokka flibbertigibbet"]
    for text in texts:
        got = call_student(predict_sentiment, text, model, vocab, name="predict_sentiment")
        if isinstance(got, Tensor):
            raise AssertionError("predict_sentiment returned a tensor: return a Python float with .item().")
        if not isinstance(got, float):
            raise AssertionError(f"predict_sentiment should return a float, got {type(got).__name__}.")
        want, logit = _expected_probability(model, vocab.encode(tokenize(text)))
        if math.isclose(got, want, rel_tol=RTOL, abs_tol=1e-6):
            continue
        if model.training:
            hint = "The model is still in training mode (dropout on, random answers): call model.eval() first."
        elif math.isclose(got, logit, rel_tol=RTOL, abs_tol=1e-6):
            hint = "That is the logit: apply torch.sigmoid to get a probability."
        elif not 0.0 <= got <= 1.0:
            hint = "A probability lies between 0 and 1: apply torch.sigmoid to the logit."
        else:
            hint = ("Tokenize with course_utils.text.tokenize, encode with the vocabulary, call model.eval() and run "
                    "the model on a batch of one review (ids of shape (1, n), lengths tensor([n])).")
        raise AssertionError(f"predict_sentiment({text!r}) returned {got:.5f}, expected {want:.5f}. {hint}")
    for bad, error in ((None, TypeError), (42, TypeError), (["good", "movie"], TypeError), (b"good", TypeError),
                       ("", ValueError), ("   ", ValueError), ("\n\t ", ValueError),
                       ("!!!", ValueError), ("<br />", ValueError), ("... ?!", ValueError)):
        try:
            predict_sentiment(bad, model, vocab)
        except error:
            continue
        except Exception as exc:  # noqa: BLE001 - any other error is the mistake we report
            words = isinstance(bad, str) and bad.strip()
            hint = ("It has no word at all: tokenize gives [], and the model cannot read a review of 0 tokens. "
                    "Raise ValueError when the token list is empty." if words else
                    "Check the input first: isinstance(text, str), then text.strip().")
            raise AssertionError(f"predict_sentiment({bad!r}) raised {type(exc).__name__}: {str(exc)[:120]}; "
                                 f"expected a {error.__name__} with a clear message. {hint}") from None
        raise AssertionError(f"predict_sentiment({bad!r}) returned a value; expected a {error.__name__}: "
                             + ("only strings can be read." if error is TypeError
                                else "a text without words has nothing to rate."))
    success("predict_sentiment: probabilities in eval mode, unknown words accepted, TypeError for non-strings, "
            "ValueError for empty text and text without words.")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 5: the confusion matrix
# ----------------------------------------------------------------------------------------------
def check_confusion_matrix(confusion_matrix: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``confusion_matrix(probabilities, labels) -> (2, 2)`` counts (an integer tensor, or
    floats holding whole numbers): row = true class, column = predicted class (probability > 0.5
    means positive), index 0 = negative, 1 = positive. The inputs are on ``device``."""
    device = resolve_device(device)
    g = generator(seed)
    for n in (40, 7):
        probabilities = torch.rand(n, generator=g)
        labels = (torch.rand(n, generator=g) < 0.6).long()
        expected = torch.zeros(2, 2, dtype=torch.long)
        for true, guess in zip(labels.tolist(), (probabilities > 0.5).long().tolist()):
            expected[true, guess] += 1
        got = call_student(confusion_matrix, probabilities.to(device), labels.to(device), name="confusion_matrix")
        got = result_on(got, device, "confusion_matrix(probabilities, labels)")
        if tuple(got.shape) != (2, 2):
            raise AssertionError(f"confusion_matrix has shape {tuple(got.shape)}, expected (2, 2).")
        if got.is_floating_point() and not torch.equal(got, got.round()):
            fractions = math.isclose(got.sum().item(), 1.0, abs_tol=1e-5) or torch.allclose(got.sum(1), torch.ones(2))
            raise AssertionError(f"confusion_matrix should hold whole counts, got {got.tolist()}."
                                 + (" These look like fractions: count reviews (integers), don't normalize."
                                    if fractions else ""))
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
