"""Checkers for the exercises of lesson 7, attention
(``notebooks/exercises/07_exercises.ipynb``; tests in ``tests/test_checks_lesson07.py``).

The oracle is the course's ``course_utils.attention`` (itself proved equal to PyTorch's
``scaled_dot_product_attention`` in lesson 7) and ``Seq2Seq.decode_step``. When an answer is wrong,
the checker runs the mistakes students often make (softmax over the wrong dimension, the mask
applied after the softmax, padding not masked, scores not scaled...) and names the one that matches.
Inputs are small and random, drawn from a local generator: the student's random state is untouched.
Each checker takes a ``device`` (``None``: the notebooks' default, see ``_common``): the student's
code gets its tensors (and the decoder's layers) there, and its results must come back on it.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Callable

import torch

from ..attention import dot_product_attention, masked_softmax
from ..seq2seq import EOS_ID, PAD_ID, SOS_ID, Seq2Seq
from ._common import (Device, call_student, describe, first_matching_mistake, is_close, randomize, resolve_device,
                      result_on, success)

Tensor = torch.Tensor


def _inputs(seed: int, d: int = 0) -> dict:
    """A random batch: scores, keys, values, a query and a mask with real padding (lengths 1..steps)."""
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    batch, steps = rng.randint(3, 5), rng.randint(5, 8)
    d = d or rng.randint(4, 9)
    d_v = d + rng.randint(1, 3)
    lengths = [rng.randint(1, steps) for _ in range(batch)]
    lengths[0], lengths[1] = steps, max(1, steps // 2)  # a full row and a padded row, always
    lengths = torch.tensor(lengths)
    return {
        "scores": 2 * torch.randn(batch, steps, generator=g),
        "query": torch.randn(batch, d, generator=g),
        "keys": torch.randn(batch, steps, d, generator=g),
        "values": torch.randn(batch, steps, d_v, generator=g),
        "mask": torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1),
    }


def _check_shape(got: Tensor, expected: Tensor, what: str, hints: dict) -> None:
    if tuple(got.shape) != tuple(expected.shape):
        hint = hints.get(tuple(got.shape), "")
        raise AssertionError(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}".strip())


# ----------------------------------------------------------------------------------------------
# Exercise 1: masked attention weights
# ----------------------------------------------------------------------------------------------
def _weights_mistakes(scores: Tensor, mask: Tensor) -> list:
    inverted = "The mask is inverted: True marks the REAL steps, so fill where the mask is False (~mask)."
    return [
        (lambda: torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0),
         "The softmax runs over the wrong dimension (dim 0, the batch): each sequence's weights must sum to 1, "
         "so take the softmax over its steps, dim=1 (or dim=-1)."),
        (lambda: torch.softmax(scores, dim=1) * mask,
         "The mask is applied after the softmax: the padded steps took their share of the softmax and the "
         "weights no longer sum to 1. Set the padded scores to -inf BEFORE the softmax."),
        (lambda: torch.softmax(scores, dim=1),
         "The padded steps are not masked: they get weight. Set their scores to -inf before the softmax."),
        (lambda: torch.softmax(scores.masked_fill(~mask, 0.0), dim=1),
         "Padded scores set to 0 (masked_fill with 0, or scores * mask) still get weight, since exp(0) = 1: "
         "set them to -inf, so that exp(-inf) = 0."),
        (lambda: torch.softmax(scores.masked_fill(mask, -1e9), dim=1), inverted),
        (lambda: torch.softmax(scores.masked_fill(mask, float("-inf")), dim=1), inverted),
    ]


def check_masked_attention_weights(masked_attention_weights: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``masked_attention_weights(scores, mask) -> weights``: scores (batch, steps), mask
    (batch, steps) True at real steps; weights (batch, steps), >= 0, each row summing to 1, and
    exactly 0 at padded steps (a softmax over the steps after setting padded scores to -inf)."""
    device = resolve_device(device)
    for trial in range(3):
        x = _inputs(seed * 10 + trial)
        scores, mask = x["scores"], x["mask"]
        given = scores.to(device, copy=True)
        got = call_student(masked_attention_weights, given, mask.to(device, copy=True), name="masked_attention_weights")
        got = result_on(got, device, "masked_attention_weights(scores, mask)")
        if not torch.equal(given.cpu(), scores):
            raise AssertionError("masked_attention_weights changed `scores` in place: use masked_fill (no underscore), "
                                 "which returns a new tensor.")
        expected = masked_softmax(scores, mask)
        _check_shape(got, expected, "masked_attention_weights(scores, mask)",
                     {(scores.size(0),): "Keep one weight per step: don't sum or pick over the steps."})
        if is_close(got, expected):
            continue
        if torch.isnan(got).any():
            raise AssertionError("masked_attention_weights returned NaN: a row whose scores are all -inf. Is the mask "
                                 "inverted? True marks the REAL steps, so fill where the mask is False (~mask).")
        if torch.isfinite(got.masked_select(mask)).all() and is_close(got.exp(), expected):
            hint = ("These are the logarithms of the weights (log_softmax): attention weights are probabilities, "
                    ">= 0 and summing to 1 over the real steps, so take the softmax itself.")
        else:
            hint = first_matching_mistake(got, _weights_mistakes(scores, mask))
        if hint is None and torch.any(got.masked_select(~mask) != 0):
            hint = "Padded steps must get weight exactly 0."
        raise AssertionError(f"masked_attention_weights returned wrong weights (batch of {scores.size(0)}, "
                             f"lengths {mask.sum(1).tolist()}). "
                             + (hint or "Fill the padded scores with -inf, then softmax over dim=1."))
    success("masked_attention_weights: a softmax over each sequence's real steps, padding exactly 0.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: the context vector (scaled dot-product attention, one query per sequence)
# ----------------------------------------------------------------------------------------------
def _context_mistakes(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> list:
    d = query.size(-1)
    raw = (keys @ query.unsqueeze(2)).squeeze(2)

    def attend(scores: Tensor, weights_fn=None) -> tuple[Tensor, Tensor]:
        weights = masked_softmax(scores, mask) if weights_fn is None else weights_fn(scores)
        return (weights.unsqueeze(2) * values).sum(1), weights

    return [
        (lambda: attend(raw),
         "The scores are not scaled: divide the dot products by sqrt(d), d = query.size(-1), before the softmax."),
        (lambda: attend(raw / d),
         "The scores are divided by d: the formula divides by sqrt(d) (math.sqrt(d) or d ** 0.5)."),
        (lambda: attend(raw * math.sqrt(d)),
         "The scores are multiplied by sqrt(d): divide by it instead."),
        (lambda: attend(raw / math.sqrt(values.size(-1))),
         "The scores are divided by sqrt of the VALUES' size: scale by sqrt(d), d the size of the query and keys."),
        (lambda: attend(raw / math.sqrt(d), lambda s: torch.softmax(s, dim=1)),
         "The padded steps are not masked: set their scores to -inf before the softmax."),
        (lambda: attend(raw / math.sqrt(d), lambda s: torch.softmax(s, dim=1) * mask),
         "The mask is applied after the softmax: the weights no longer sum to 1. Mask the scores (-inf) before it."),
        (lambda: attend(raw / math.sqrt(d), lambda s: torch.softmax(s.masked_fill(~mask, float("-inf")), dim=0)),
         "The softmax runs over the batch (dim 0): run it over the steps (dim 1)."),
    ]


def check_attention_context(attention_context: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``attention_context(query, keys, values, mask) -> (context, weights)``: query (batch, d),
    keys (batch, steps, d), values (batch, steps, d_v), mask (batch, steps); scores
    ``keys . query / sqrt(d)``, masked softmax over the steps, ``context = sum_i weights_i * values_i``:
    context (batch, d_v), weights (batch, steps). The oracle equals F.scaled_dot_product_attention."""
    device = resolve_device(device)
    for trial in range(3):
        x = _inputs(seed * 10 + trial, d=(4, 9, 16)[trial])
        query, keys, values, mask = x["query"], x["keys"], x["values"], x["mask"]
        got = call_student(attention_context, *(t.to(device, copy=True) for t in (query, keys, values, mask)),
                           name="attention_context")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(f"attention_context should return a pair (context, weights), got {describe(got)}.")
        context = result_on(got[0], device, "context (the first value)")
        weights = result_on(got[1], device, "weights (the second value)")
        expected_context, expected_weights = dot_product_attention(query, keys, values, mask)
        batch, steps, d_v = values.shape
        _check_shape(context, expected_context, "context", {
            (batch, keys.size(-1)): "The context is a weighted sum of the VALUES, not of the keys.",
            (batch, steps, d_v): "Sum the weighted values over the steps (dim 1).",
            (steps, d_v): "Sum over the steps (dim 1), not over the batch (dim 0).",
        })
        _check_shape(weights, expected_weights, "weights", {})
        if is_close((context, weights), (expected_context, expected_weights)):
            continue
        hint = first_matching_mistake((context, weights), _context_mistakes(query, keys, values, mask))
        if hint is None and is_close(weights, expected_weights):
            hint = ("The weights are right but the context is not: it is the sum over the steps of each value "
                    "times its weight.")
        raise AssertionError(f"attention_context returned wrong values (d = {query.size(-1)}, lengths "
                             f"{mask.sum(1).tolist()}). " + (hint or "scores = keys @ query / sqrt(d), masked softmax "
                                                                    "over the steps, weighted sum of the values."))
    success("attention_context: scaled scores, masked softmax, weighted sum of the values "
            "(equal to F.scaled_dot_product_attention).")


# ----------------------------------------------------------------------------------------------
# Exercise 3: one decoder step with attention
# ----------------------------------------------------------------------------------------------
def _decoder_case(seed: int) -> tuple[Seq2Seq, dict]:
    rng = random.Random(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hidden = rng.randint(3, 6)
        model = Seq2Seq(vocab_size=12, embedding_dim=rng.randint(3, 6), hidden_size=hidden, attention="dot").eval()
        x = _inputs(seed, d=2 * hidden)
        batch, steps = x["mask"].shape
        case = {"previous": torch.randint(1, 12, (batch,)), "state": torch.randn(batch, 2 * hidden),
                "encoder_states": torch.randn(batch, steps, 2 * hidden), "mask": x["mask"]}
    return model, case


def _step_mistakes(model: Seq2Seq, c: dict) -> list:
    def step(query_old=False, order="state-context", tanh=True, scale=True, mask=True):
        with torch.no_grad():
            new = model.decoder(model.embedding(c["previous"]), c["state"])
            query = c["state"] if query_old else new
            m = c["mask"] if mask else torch.ones_like(c["mask"])
            context, weights = dot_product_attention(query, c["encoder_states"], c["encoder_states"], m, scale=scale)
            both = torch.cat([new, context] if order == "state-context" else [context, new], dim=1)
            hidden = model.combine(both)
            logits = model.out(torch.tanh(hidden) if tanh else hidden)
            return logits, new, weights

    return [
        (lambda: step(query_old=True),
         "The query is the OLD state: first update the state with the cell, then attend with the new state."),
        (lambda: step(order="context-state"),
         "combine expects torch.cat([state, context], dim=1), the state first."),
        (lambda: step(tanh=False), "Apply tanh to combine(...) before the output layer."),
        (lambda: step(scale=False), "The attention scores are not scaled: divide them by sqrt(d)."),
        (lambda: step(mask=False), "The padded encoder steps are not masked: use the mask before the softmax."),
    ]


def check_decoder_step(decoder_step: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``decoder_step(previous, state, encoder_states, mask, embedding, cell, combine, out)
    -> (logits, new_state, weights)``, one step of lesson 7's decoder with attention:
    ``new_state = cell(embedding(previous), state)``; scaled dot-product attention with ``new_state``
    as the query over ``encoder_states`` (keys and values) with ``mask``;
    ``logits = out(tanh(combine(cat[new_state, context])))``. Oracle: ``Seq2Seq.decode_step``."""
    device = resolve_device(device)
    for trial in range(3):
        model, c = _decoder_case(seed * 10 + trial)
        with torch.no_grad():
            expected = model.decode_step(c["previous"], c["state"], c["encoder_states"], c["mask"])
        student_model = copy.deepcopy(model).to(device)  # the student's layers, on the student's device
        args = [c[k].to(device, copy=True) for k in ("previous", "state", "encoder_states", "mask")]
        with torch.no_grad():
            got = call_student(decoder_step, *args, student_model.embedding, student_model.decoder,
                               student_model.combine, student_model.out, name="decoder_step")
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(f"decoder_step should return (logits, new_state, weights), got {describe(got)}.")
        got = tuple(result_on(t, device, name) for t, name in zip(got, ("logits", "new_state", "weights")))
        for g, e, name in zip(got, expected, ("logits", "new_state", "weights")):
            _check_shape(g, e, name, {})
        if is_close(got, tuple(expected)):
            continue
        if is_close(got[0], expected[0]) and not is_close(got[1], expected[1]):
            hint = "The logits are right but new_state is not: return the state the cell computed."
        else:
            hint = first_matching_mistake(got, _step_mistakes(model, c))
        raise AssertionError("decoder_step returned wrong values. " + (hint or (
            "Follow the three steps: the cell updates the state from the embedded previous ids; the new state "
            "attends over encoder_states (scaled, masked); the output layer reads tanh of combine applied to "
            "the state and the context, concatenated in that order.")))
    success("decoder_step: the cell, attention with the new state, and the output layer, as Seq2Seq.decode_step.")


# ----------------------------------------------------------------------------------------------
# Exercise 4: greedy decoding, the loop
# ----------------------------------------------------------------------------------------------
def _random_greedy_case(seed: int) -> tuple[Seq2Seq, Tensor, Tensor, int]:
    """A small random Seq2Seq (weights large enough that its predictions vary from step to step),
    a padded batch of input ids with their lengths (a full row and two short ones), and a number of steps."""
    rng = random.Random(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Seq2Seq(vocab_size=12, embedding_dim=rng.randint(3, 6), hidden_size=rng.randint(3, 6),
                        attention="dot")
        randomize(model, seed)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(3)
        batch, longest = rng.randint(6, 8), rng.randint(5, 8)
        lengths = [rng.randint(1, longest) for _ in range(batch)]
        lengths[0], lengths[1], lengths[2] = longest, 2, 3
        lengths = torch.tensor(lengths)
        inputs = torch.randint(3, 12, (batch, longest))
        inputs = inputs.masked_fill(torch.arange(longest).unsqueeze(0) >= lengths.unsqueeze(1), PAD_ID)
    return model.eval(), inputs, lengths, rng.randint(6, 9)


def _greedy_case(seed: int) -> tuple[Seq2Seq, Tensor, Tensor, int]:
    """The first random case (``_random_greedy_case``) on which every typical mistake gives ids of its
    own, different from the right ones and from each other's, so that a wrong loop is caught and its
    mistake named. (A random model can be too uniform for that; most cases are fine.)"""
    for attempt in range(1000):
        case = _random_greedy_case(1000 * seed + attempt)
        with torch.no_grad():
            results = [case[0].greedy(*case[1:])[0]] + [compute() for compute, _ in _greedy_mistakes(*case)]
        if all(not torch.equal(a, b) for i, a in enumerate(results) for b in results[:i]):
            return case
    raise RuntimeError(f"no case tells the greedy-decoding mistakes apart for seed {seed}")


def _greedy_mistakes(model: Seq2Seq, inputs: Tensor, lengths: Tensor, steps: int) -> list:
    """What typical wrong loops return, each with the hint that names its mistake."""
    def loop(first=SOS_ID, feed_back=True, carry_state=True, dim=1, start="encoder", mask_on=True, shift=False):
        with torch.no_grad():
            states, mask, initial = model.encode(inputs, lengths)
            mask = mask if mask_on else torch.ones_like(mask)
            state = initial if start == "encoder" else torch.zeros_like(initial)
            previous = torch.full((inputs.size(0),), first, dtype=torch.long)
            ids = []
            for _ in range(steps):
                logits, new_state, _ = model.decode_step(previous, state, states, mask)
                state = new_state if carry_state else state
                prediction = logits.argmax(dim=dim)
                ids.append(previous if shift else prediction)
                previous = prediction if feed_back else previous
            return torch.stack(ids, dim=1)

    return [
        (lambda: loop(feed_back=False),
         "Every step reads <sos>: feed each step's prediction (its most likely character) back as the next "
         "step's input."),
        (lambda: loop(carry_state=False),
         "Every step starts from the encoder's final state: carry on with the state each step returns."),
        (lambda: loop(first=PAD_ID), "The first input must be <sos> (SOS_ID), not <pad>."),
        (lambda: loop(first=EOS_ID), "The first input must be <sos> (SOS_ID), not <eos>."),
        (lambda: loop(start="zeros"),
         "The decoder starts from zeros: its first state is the encoder's final state (model.encode returns it)."),
        (lambda: loop(mask_on=False),
         "The padded input characters are attended: pass model.encode's mask to decode_step."),
        (lambda: loop(shift=True),
         "The ids start with <sos> and miss the last prediction: record what each step predicts, not what it read."),
    ]


def _refuse_greedy(*args, **kwargs):
    raise RuntimeError("model.greedy is the answer itself: write the loop with model.encode and model.decode_step")


def check_greedy_decode(greedy_decode: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``greedy_decode(model, inputs, lengths, steps) -> ids (batch, steps)``: encode the inputs
    (``model.encode``), start the decoder from the encoder's final state with ``<sos>``, and at each
    of ``steps`` steps run ``model.decode_step`` and feed its most likely character back in.
    Oracle: ``Seq2Seq.greedy``. The student's model and inputs are on ``device``."""
    device = resolve_device(device)
    for trial in range(3):
        model, inputs, lengths, steps = _greedy_case(seed * 10 + trial)
        with torch.no_grad():
            expected = model.greedy(inputs, lengths, steps)[0]
        student_model = copy.deepcopy(model).to(device)
        student_model.greedy = _refuse_greedy
        with torch.no_grad():
            got = call_student(greedy_decode, student_model, inputs.to(device, copy=True), lengths.to(device, copy=True),
                               steps, name="greedy_decode")
        if isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[0], torch.Tensor):
            raise AssertionError("greedy_decode should return the ids alone (batch, steps), not a pair.")
        got = result_on(got, device, "greedy_decode(model, inputs, lengths, steps)")
        batch = inputs.size(0)
        _check_shape(got, expected, "greedy_decode(...)", {
            (batch, steps + 1): "One column per step: leave out the <sos> the loop started with.",
            (steps, batch): "Stack the steps' predictions along dim=1: (batch, steps).",
            (batch, steps, 12): "Return the ids (the most likely character of each step), not the logits.",
            (batch, steps, 1): "Drop the last dimension: one id per step.",
        })
        if got.is_floating_point():
            raise AssertionError(f"greedy_decode returned {got.dtype} values: the ids are whole numbers "
                                 "(argmax gives a long tensor).")
        if torch.equal(got, expected):
            continue
        hint = first_matching_mistake(got, _greedy_mistakes(model, inputs, lengths, steps), same=torch.equal)
        if hint is None:
            with torch.no_grad():
                again = result_on(call_student(greedy_decode, student_model, inputs.to(device), lengths.to(device),
                                               steps, name="greedy_decode"), device, "greedy_decode(...)")
            if not torch.equal(again, got):
                hint = ("Two calls gave different ids: greedy decoding takes the most likely character (argmax), "
                        "it does not sample.")
        if hint is None and torch.equal(got[:, 0], expected[:, 0]):
            hint = ("The first step is right, the later ones are not: check what each step reads (the previous "
                    "prediction) and which state it starts from (the previous step's).")
        raise AssertionError(f"greedy_decode returned wrong ids (batch of {batch}, {steps} steps). " + (hint or (
            "Encode the inputs, start from the encoder's final state and <sos>, and at each step feed the most "
            "likely character back in.")))
    success("greedy_decode: encode, then each step feeds its most likely character back in, as Seq2Seq.greedy.")
