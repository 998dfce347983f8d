"""Checkers for the exercises of lessons 5 (models for sentiment) and 6 (training on IMDb).

Each checker builds small random inputs, runs the student's code and compares it with an oracle:
PyTorch's own packed ``nn.LSTM`` / ``nn.GRU``, or the course's ``course_utils.models`` and
``course_utils.training``, which the lessons prove equal to PyTorch. When the answer is wrong it
also runs the *mistakes students often make* (the first layer's states instead of the top
layer's, an unmasked max, forgetting ``model.eval()`` or ``optimizer.zero_grad()``, ...) and names
the one that matches. Every checker takes a ``seed``; hidden tests call it with other seeds.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..batching import masked_max, masked_mean, padding_mask
from ..models import ModelConfig, SentimentClassifier
from ..text import PAD_INDEX, UNK_INDEX, Vocab, tokenize
from ._common import assert_tensor, call_student, first_matching_mistake, is_close, success

Tensor = torch.Tensor






def _lengths(rng: random.Random, batch: int, longest: int) -> Tensor:
    """Random lengths in 1..longest, with ``longest`` itself present and at least one short one."""
    lengths = [rng.randint(1, longest) for _ in range(batch)]
    lengths[rng.randrange(batch)] = longest
    lengths[rng.randrange(batch)] = max(1, longest // 3)
    return torch.tensor(lengths)


# ----------------------------------------------------------------------------------------------
# Lesson 5, exercise 1: the final state of a bidirectional layer
# ----------------------------------------------------------------------------------------------
def check_bidirectional_final_state(final_state: Callable, seed: int = 0) -> None:
    """Check ``final_state(h_n) -> (batch, 2 * hidden)``: the top layer's last forward state
    (``h_n[-2]``) and last backward state (``h_n[-1]``), concatenated in that order.

    The oracle is PyTorch: a packed, bidirectional ``nn.LSTM`` / ``nn.GRU`` with 1 to 3 layers,
    whose output gives the forward state at each review's last token and the backward state at
    its first token.
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    for num_layers, cell in ((1, nn.LSTM), (2, nn.GRU), (3, nn.LSTM)):
        batch, hidden, features, longest = rng.randint(3, 6), rng.randint(2, 5), rng.randint(2, 4), rng.randint(4, 8)
        layer = cell(features, hidden, num_layers=num_layers, bidirectional=True, batch_first=True)
        lengths = _lengths(rng, batch, longest)
        x = torch.randn(batch, longest, features)
        packed, h_n = layer(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        h_n = (h_n[0] if isinstance(h_n, tuple) else h_n).detach()
        output, _ = pad_packed_sequence(packed, batch_first=True)
        rows = torch.arange(batch)
        expected = torch.cat([output[rows, lengths - 1, :hidden], output[:, 0, hidden:]], dim=1).detach()
        got = call_student(final_state, h_n.clone(), name="final_state")
        assert_tensor(got, "final_state(h_n)")
        where = f"(a {num_layers}-layer bidirectional {cell.__name__}, h_n of shape {tuple(h_n.shape)})"
        if tuple(got.shape) != tuple(expected.shape):
            hints = {
                (batch, hidden): "That is one direction only: concatenate the forward AND the backward state.",
                (2 * batch, hidden): "You concatenated along dim 0 (the batch): use dim=1, the features.",
                (2, batch, hidden): "Concatenate the two states into one vector per review (torch.cat(..., dim=1)), "
                                    "don't stack them.",
            }
            hint = hints.get(tuple(got.shape), "")
            raise AssertionError(f"final_state(h_n) has shape {tuple(got.shape)}, expected {tuple(expected.shape)} "
                                 f"{where}. {hint}".strip())
        if is_close(got, expected):
            continue
        variants = [
            (lambda: torch.cat([h_n[-1], h_n[-2]], dim=1),
             "The two halves are swapped: the forward state h_n[-2] comes first, then the backward state h_n[-1]."),
            (lambda: torch.cat([h_n[0], h_n[1]], dim=1),
             "Those are the FIRST layer's states: h_n lists layer 0 first, so the top layer is at the end: "
             "h_n[-2] (forward) and h_n[-1] (backward)."),
            (lambda: torch.cat([h_n[1], h_n[0]], dim=1),
             "Those are the first layer's states, swapped: use h_n[-2] (forward) then h_n[-1] (backward)."),
            (lambda: h_n[-2:].reshape(batch, 2 * hidden),
             "reshape/view mixes numbers of different reviews: h_n[-2:] is (2, batch, hidden), so "
             "reshaping it to (batch, 2 * hidden) does not put each review's two states side by side. "
             "Use torch.cat([h_n[-2], h_n[-1]], dim=1)."),
        ]
        hint = first_matching_mistake(got, variants) or (
            "Each review's final state is cat(h_n[-2], h_n[-1]): the forward state at its last real token "
            "and the backward state at its first token.")
        raise AssertionError(f"final_state(h_n) returned wrong values {where}. {hint}")
    success("final_state picks the top layer's forward and backward states, as PyTorch's packed LSTM/GRU "
            "(1, 2 and 3 layers).")


# ----------------------------------------------------------------------------------------------
# Lesson 5, exercise 2: max pooling over the real steps
# ----------------------------------------------------------------------------------------------
def _padded_output(rng: random.Random, garbage: float) -> tuple[Tensor, Tensor]:
    batch, longest, features = rng.randint(3, 6), rng.randint(4, 9), rng.randint(2, 5)
    lengths = _lengths(rng, batch, longest)
    output = torch.randn(batch, longest, features)
    shortest = int(lengths.argmin())
    output[shortest] = -output[shortest].abs() - 0.1  # a review whose features are all negative: 0 must not win
    mask = padding_mask(lengths, longest).unsqueeze(2)
    # padding holds ``garbage``, a little more at each later step (so that "one step too many" shows)
    junk = garbage + 0.5 * torch.arange(longest, dtype=output.dtype).view(1, -1, 1)
    return torch.where(mask, output, junk.expand_as(output)), lengths


def check_masked_max(max_pool: Callable, seed: int = 0, trials: int = 4) -> None:
    """Check ``max_pool(output, lengths) -> (batch, features)``: for each review and feature, the
    largest value over the review's REAL steps (``0 .. lengths[i] - 1``); the padded steps may hold
    anything, even values larger than every real one."""
    rng = random.Random(seed)
    for trial in range(trials):
        garbage = (5.0, 0.0, 100.0, -3.0)[trial % 4]
        output, lengths = _padded_output(rng, garbage)
        batch, longest, features = output.shape
        expected = masked_max(output, lengths)
        original = output.clone()
        got = call_student(max_pool, output, lengths, name="max_pool")
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], Tensor):
            raise AssertionError("max_pool returned a (values, indices) pair: torch.max(x, dim) and x.max(dim) return "
                                 "both; take .values (or use x.amax(dim)).")
        assert_tensor(got, "max_pool(output, lengths)")
        if not torch.equal(output, original):
            raise AssertionError("max_pool changed `output` in place (e.g. with masked_fill_ or an indexed "
                                 "assignment): work on a copy, or use the out-of-place masked_fill.")
        if tuple(got.shape) != (batch, features):
            hint = ("Take the max over the TIME dimension, dim=1." if tuple(got.shape) == (batch, longest)
                    else "The result has one row per review and one column per feature.")
            raise AssertionError(f"max_pool(output, lengths) has shape {tuple(got.shape)}, expected "
                                 f"{(batch, features)} for output of shape {tuple(output.shape)}. {hint}")
        if is_close(got, expected):
            continue
        mask = padding_mask(lengths, longest).unsqueeze(2)
        wider = padding_mask(lengths + 1, longest).unsqueeze(2)
        variants = [
            (lambda: output.amax(1),
             "The padded steps took part: their values (here "
             f"{garbage} and more) can be larger than the real ones. Set them to -inf before the max."),
            (lambda: output.masked_fill(~wider, float("-inf")).amax(1),
             "One padded step too many is included (off by one): review i has steps 0 .. lengths[i] - 1."),
            (lambda: (output * mask).amax(1),
             "Zeros at the padded steps (multiplying by the mask, or filling with 0) beat a review whose values "
             "are all negative: fill the padded steps with -inf (masked_fill) instead."),
        ]
        hint = first_matching_mistake(got, variants) or "Mask the padded steps with -inf, then take the max over dim=1."
        raise AssertionError(f"max_pool returned wrong values (lengths {lengths.tolist()}, padded steps holding "
                             f"{garbage} and more). {hint}")
    success(f"max_pool ignores the padded steps ({trials} random batches, padding holding large, zero and "
            "negative values).")


# ----------------------------------------------------------------------------------------------
# Lesson 5, exercise 3: the forward pass of a BiGRU classifier with max+mean pooling
# ----------------------------------------------------------------------------------------------
def check_bigru_classifier(model_class: Callable, seed: int = 0) -> None:
    """Check a ``model_class(vocab_size, embedding_dim, hidden_size)`` whose ``forward(ids, lengths)``
    returns one logit per review: embedding -> bidirectional GRU -> [max, mean] over the real steps
    -> linear head. The oracle is ``course_utils.models.SentimentClassifier`` with the same weights.
    """
    rng = random.Random(seed)
    for trial in range(3):
        vocab_size, embedding_dim, hidden = rng.randint(12, 30), rng.randint(3, 6), rng.randint(2, 5)
        torch.manual_seed(seed * 10 + trial)
        model = call_student(model_class, vocab_size, embedding_dim, hidden, name="BiGRUClassifier(...)")
        config = ModelConfig(vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_size=hidden, cell="gru",
                             bidirectional=True, pooling="max+mean")
        reference = SentimentClassifier(config)
        try:
            reference.load_state_dict(model.state_dict())
        except (RuntimeError, AttributeError) as exc:
            raise AssertionError("The model's layers are not those of the exercise (self.embedding, self.rnn, "
                                 f"self.head with the given sizes): keep the __init__ as given. ({exc})"[:400]) from None
        model.eval()
        reference.eval()
        batch, longest = rng.randint(3, 6), rng.randint(4, 9)
        lengths = _lengths(rng, batch, longest)
        ids = torch.randint(2, vocab_size, (batch, longest))
        ids = ids.masked_fill(~padding_mask(lengths, longest), PAD_INDEX)
        with torch.no_grad():
            expected = reference(ids, lengths)
            got = call_student(model, ids, lengths, name="forward")
        assert_tensor(got, "forward(ids, lengths)")
        if tuple(got.shape) != (batch,):
            hint = ("Squeeze the last dimension: the head gives (batch, 1), the loss wants (batch,)."
                    if tuple(got.shape) == (batch, 1) else "Return one logit per review.")
            raise AssertionError(f"forward(ids, lengths) has shape {tuple(got.shape)}, expected {(batch,)}. {hint}")
        if is_close(got, expected):
            extra = torch.cat([ids, torch.zeros(batch, 3, dtype=torch.long)], dim=1)
            with torch.no_grad():
                again = call_student(model, extra, lengths, name="forward")
            if not is_close(again, expected):
                raise AssertionError("Adding padding at the end of the batch changed the logits: pool over the "
                                     "real steps only (pass `lengths` to the recurrent layer and to the pooling).")
            continue

        def pooled_head(first: Tensor, second: Tensor) -> Tensor:
            return reference.head(torch.cat([first, second], dim=1)).squeeze(1)

        with torch.no_grad():
            output, h_n = reference.rnn(reference.embedding(ids), lengths)
            mean, maximum = masked_mean(output, lengths), masked_max(output, lengths)
            variants = [
                (lambda: torch.sigmoid(expected),
                 "Return the LOGITS, not probabilities: no sigmoid in forward (BCEWithLogitsLoss applies it)."),
                (lambda: pooled_head(mean, maximum),
                 "The pooled vectors are in the wrong order: max first, then mean (torch.cat([max, mean], dim=1))."),
                (lambda: pooled_head(output.amax(1), mean),
                 "The max includes the padded steps (their output is 0, which beats negative values): use a "
                 "masked max (fill the padding with -inf)."),
                (lambda: pooled_head(maximum, output.mean(1)),
                 "The mean divides by the padded length: sum the real steps and divide by `lengths`."),
                (lambda: pooled_head(output.amax(1), output.mean(1)),
                 "Both poolings include the padded steps: mask them (max: -inf; mean: divide by the true lengths)."),
            ]
        hint = first_matching_mistake(got, variants) or (
            "Expected head(cat([masked max, masked mean] of the GRU output over time, dim=1)).squeeze(1).")
        raise AssertionError(f"forward(ids, lengths) returned wrong logits (lengths {lengths.tolist()}). {hint}")
    success("BiGRUClassifier.forward equals course_utils.models.SentimentClassifier(cell='gru', bidirectional=True, "
            "pooling='max+mean') and ignores padding.")


# ----------------------------------------------------------------------------------------------
# Lesson 6, exercise 1: one training step
# ----------------------------------------------------------------------------------------------
def _tiny_model(seed: int, vocab_size: int = 20, dropout: float = 0.5) -> SentimentClassifier:
    torch.manual_seed(seed)
    return SentimentClassifier(ModelConfig(vocab_size=vocab_size, embedding_dim=4, hidden_size=5, cell="lstm",
                                           pooling="max", dropout=dropout))


def _tiny_batch(rng: random.Random, vocab_size: int = 20) -> tuple[Tensor, Tensor, Tensor]:
    batch, longest = rng.randint(4, 8), rng.randint(3, 7)
    lengths = _lengths(rng, batch, longest)
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
