"""Checkers for the exercises of lesson 5, models for sentiment
(``notebooks/exercises/05_exercises.ipynb``; tests in ``tests/test_checks_lesson05.py``).

Each checker builds small random inputs, runs the student's code and compares it with an oracle:
PyTorch's own packed ``nn.LSTM`` / ``nn.GRU``, or the course's ``course_utils.models``. When the
answer is wrong it also runs the *mistakes students often make* (the first layer's states instead
of the top layer's, an unmasked max, ...) and names the one that matches. Every checker takes a
``seed`` (hidden tests call it with other seeds) and a ``device`` (``None``: the notebooks' default,
see ``_common``): the student's code runs on ``device``, lengths stay on the CPU, and the results are
compared on the CPU.
"""

from __future__ import annotations

import random
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..batching import masked_max, masked_mean, padding_mask
from ..models import ModelConfig, SentimentClassifier
from ..text import PAD_INDEX
from ._common import exact_float32  # the whole check in full float32 on a GPU (no TF32)
from ._common import (Device, call_student, first_matching_mistake, is_close, random_lengths,
                      resolve_device, result_on, seeded, success)

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------
# Lesson 5, exercise 1: the final state of a bidirectional layer
# ----------------------------------------------------------------------------------------------
def check_bidirectional_final_state(final_state: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``final_state(output, lengths) -> (batch, 2 * hidden)``: from the top layer's padded
    ``output`` of a bidirectional layer, each review's last forward state (at step lengths[i] - 1)
    and last backward state (at step 0), concatenated in that order: what ``h_n[-2]`` and
    ``h_n[-1]`` hold.

    The oracle is PyTorch: ``h_n`` of a packed, bidirectional ``nn.LSTM`` / ``nn.GRU`` with 1 to 3
    layers. The padded steps of ``output`` hold garbage, and the batch is padded one step beyond
    its longest review.
    """
    device = resolve_device(device)
    rng = random.Random(seed)
    for num_layers, cell in ((1, nn.LSTM), (2, nn.GRU), (3, nn.LSTM)):
        batch, hidden, features, longest = rng.randint(3, 6), rng.randint(2, 5), rng.randint(2, 4), rng.randint(4, 8)
        lengths = random_lengths(rng, batch, longest)
        with seeded(seed * 10 + num_layers):
            layer = cell(features, hidden, num_layers=num_layers, bidirectional=True, batch_first=True)
            x = torch.randn(batch, longest, features)
        with torch.no_grad():
            packed, h_n = layer(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            output, _ = pad_packed_sequence(packed, batch_first=True, total_length=longest + 1)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n
        output = output.masked_fill(~padding_mask(lengths, longest + 1).unsqueeze(2), 7.0)  # garbage
        expected = torch.cat([h_n[-2], h_n[-1]], dim=1)
        got = call_student(final_state, output.to(device), lengths.clone(), name="final_state")
        got = result_on(got, device, "final_state(output, lengths)")
        where = f"(a {num_layers}-layer bidirectional {cell.__name__}, lengths {lengths.tolist()}, hidden {hidden})"
        if tuple(got.shape) != tuple(expected.shape):
            hint = ("That is one direction only: concatenate the forward AND the backward half."
                    if tuple(got.shape) == (batch, hidden) else "One row per review, 2 * hidden numbers.")
            raise AssertionError(f"final_state(output, lengths) has shape {tuple(got.shape)}, expected "
                                 f"{tuple(expected.shape)} {where}. {hint}")
        if is_close(got, expected):
            continue
        rows, H = torch.arange(batch), hidden
        last, first = output[rows, lengths - 1], output[:, 0]
        variants = [
            (lambda: output[:, -1], "output[:, -1] is the last time step: padding for every review here, and even "
                                    "without padding the backward half there has read a single word."),
            (lambda: last, "Both halves are read at step lengths[i] - 1: right for the forward half, but the "
                           "backward direction ENDS at step 0 (it reads the review from the end)."),
            (lambda: first, "Both halves are read at step 0: right for the backward half, but the forward "
                            "direction ends at the last real token, step lengths[i] - 1."),
            (lambda: torch.cat([first[:, :H], last[:, H:]], dim=1),
             "The ends are swapped: the forward half ends at step lengths[i] - 1, the backward half at step 0."),
            (lambda: torch.cat([first[:, H:], last[:, :H]], dim=1),
             "The halves are in the wrong order: the forward state first, then the backward one."),
        ]
        hint = first_matching_mistake(got, variants) or (
            "Row i is cat(output[i, lengths[i] - 1, :hidden], output[i, 0, hidden:]).")
        raise AssertionError(f"final_state(output, lengths) differs from h_n of PyTorch's packed layer {where}. {hint}")
    success("final_state reads each review's forward state at its last token and its backward state at step 0, "
            "as h_n of PyTorch's packed LSTM/GRU (1, 2 and 3 layers).")


# ----------------------------------------------------------------------------------------------
# Lesson 5, exercise 2: max pooling over the real steps
# ----------------------------------------------------------------------------------------------
def _padded_output(rng: random.Random, garbage: float) -> tuple[Tensor, Tensor]:
    batch, longest, features = rng.randint(3, 6), rng.randint(4, 9), rng.randint(2, 5)
    lengths = random_lengths(rng, batch, longest)
    output = torch.randn(batch, longest, features)
    shortest = int(lengths.argmin())
    output[shortest] = -output[shortest].abs() - 0.1  # a review whose features are all negative: 0 must not win
    mask = padding_mask(lengths, longest).unsqueeze(2)
    # padding holds ``garbage``, a little more at each later step (so that "one step too many" shows)
    junk = garbage + 0.5 * torch.arange(longest, dtype=output.dtype).view(1, -1, 1)
    return torch.where(mask, output, junk.expand_as(output)), lengths


def check_masked_max(max_pool: Callable, seed: int = 0, trials: int = 4, device: Device = None) -> None:
    """Check ``max_pool(output, lengths) -> (batch, features)``: for each review and feature, the
    largest value over the review's REAL steps (``0 .. lengths[i] - 1``); the padded steps may hold
    anything, even values larger than every real one."""
    device = resolve_device(device)
    rng = random.Random(seed)
    for trial in range(trials):
        garbage = (5.0, 0.0, 100.0, -3.0)[trial % 4]
        with seeded(seed * 10 + trial):
            output, lengths = _padded_output(rng, garbage)
        batch, longest, features = output.shape
        expected = masked_max(output, lengths)
        given = output.to(device, copy=True)
        got = call_student(max_pool, given, lengths, name="max_pool")
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], Tensor):
            raise AssertionError("max_pool returned a (values, indices) pair: torch.max(x, dim) and x.max(dim) return "
                                 "both; take .values (or use x.amax(dim)).")
        got = result_on(got, device, "max_pool(output, lengths)")
        if not torch.equal(given.cpu(), output):
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
@exact_float32
def check_bigru_classifier(model_class: Callable, seed: int = 0, device: Device = None) -> None:
    """Check a ``model_class(vocab_size, embedding_dim, hidden_size)`` whose ``forward(ids, lengths)``
    returns one logit per review: embedding -> bidirectional GRU -> [max, mean] over the real steps
    -> linear head. The oracle is ``course_utils.models.SentimentClassifier`` with the same weights.
    """
    device = resolve_device(device)
    rng = random.Random(seed)
    for trial in range(3):
        vocab_size, embedding_dim, hidden = rng.randint(12, 30), rng.randint(3, 6), rng.randint(2, 5)
        with seeded(seed * 10 + trial):
            model = call_student(model_class, vocab_size, embedding_dim, hidden, name="BiGRUClassifier(...)")
        config = ModelConfig(vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_size=hidden, cell="gru",
                             bidirectional=True, pooling="max+mean")
        with seeded(0):  # its initial weights are replaced by the student's below
            reference = SentimentClassifier(config)
        try:
            reference.load_state_dict(model.state_dict())
        except (RuntimeError, AttributeError) as exc:
            raise AssertionError("The model's layers are not those of the exercise (self.embedding, self.rnn, "
                                 f"self.head with the given sizes): keep the __init__ as given. ({exc})"[:400]) from None
        model.to(device).eval()
        reference.eval()
        batch, longest = rng.randint(3, 6), rng.randint(4, 9)
        lengths = random_lengths(rng, batch, longest)
        with seeded(seed * 10 + trial):
            ids = torch.randint(2, vocab_size, (batch, longest))
        ids = ids.masked_fill(~padding_mask(lengths, longest), PAD_INDEX)
        with torch.no_grad():
            expected = reference(ids, lengths)
            got = call_student(model, ids.to(device), lengths, name="forward")
        got = result_on(got, device, "forward(ids, lengths)")
        if tuple(got.shape) != (batch,):
            hint = ("Squeeze the last dimension: the head gives (batch, 1), the loss wants (batch,)."
                    if tuple(got.shape) == (batch, 1) else "Return one logit per review.")
            raise AssertionError(f"forward(ids, lengths) has shape {tuple(got.shape)}, expected {(batch,)}. {hint}")
        if is_close(got, expected):
            extra = torch.cat([ids, torch.zeros(batch, 3, dtype=torch.long)], dim=1)
            with torch.no_grad():
                again = call_student(model, extra.to(device), lengths, name="forward")
            if not is_close(result_on(again, device, "forward(ids, lengths)"), expected):
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
