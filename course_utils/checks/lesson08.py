"""Checkers for the exercises of lesson 8, language models
(``notebooks/exercises/08_exercises.ipynb``; tests in ``tests/test_checks_lesson08.py``).

A word-level language model is an LSTM that predicts the next word at every step. The exercises
take its four ideas one at a time: the inputs and targets of next-word prediction (the same ids,
shifted by one step), perplexity (the exponential of the mean loss per word), one step of
truncated backpropagation through time (the state carried from the previous chunk is detached),
and sampling the next word at a temperature. The oracle is PyTorch itself (``F.cross_entropy``, a
reference training step on a copy of the model, ``torch.softmax``, ``torch.multinomial`` drawing
from a copy of the student's generator). When an answer is wrong, the checker runs the mistakes
students often make (the targets not shifted, ``2 ** loss``, the state not detached,
``optimizer.zero_grad()`` forgotten, the temperature applied after the softmax...) and names the
one that matches.

The model of exercise 3 is :class:`TinyLM` (embedding, one ``nn.LSTM`` layer with
``batch_first=True``, a linear layer over the vocabulary); the exercise notebook shows the same
class. Every checker takes a ``seed`` (the hidden tests use other ones) and, where it builds
tensors, a ``device`` (``None``: the notebooks' default, see ``_common``). Random inputs come from
local generators; the student's global random state is left as it was.
"""

from __future__ import annotations

import copy
import math
import numbers
import random
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._common import exact_float32  # the whole check in full float32 on a GPU (no TF32)
from ._common import (
    Device,
    StudentCodeError,
    call_student,
    describe,
    first_matching_mistake,
    generator,
    is_close,
    keeps_random_state,
    resolve_device,
    result_on,
    seeded,
    success,
)

Tensor = torch.Tensor


class TinyLM(nn.Module):
    """A word-level language model: ids (batch, time) -> logits (batch, time, vocab_size).

    ``forward(ids, state=None)`` returns ``(logits, (h, c))``: the logits of the next word at every
    step and the LSTM's state after the last step, each of ``h`` and ``c`` (1, batch, hidden_size).
    ``state=None`` starts from zeros (the start of the stream).
    """

    def __init__(self, vocab_size: int = 30, embedding_dim: int = 8, hidden_size: int = 12):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: Tensor, state: Optional[Sequence[Tensor]] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        output, state = self.lstm(self.embedding(ids), None if state is None else tuple(state))
        return self.out(output), state


def _as_float(got: Any) -> Optional[float]:
    """A Python number (not a bool) as a float, else ``None``."""
    if isinstance(got, numbers.Real) and not isinstance(got, bool):
        return float(got)
    return None


def _close(got: float, expected: float) -> bool:
    """Relative closeness at float32's precision (an answer may have gone through float32)."""
    if math.isinf(got) or math.isinf(expected) or math.isnan(got) or math.isnan(expected):
        return got == expected
    return is_close(got, expected)


# ----------------------------------------------------------------------------------------------
# Exercise 1: inputs and targets of next-word prediction
# ----------------------------------------------------------------------------------------------
def _id_batches(seed: int) -> list[Tensor]:
    """Batches (batch, time + 1) of distinct ids (any wrong slice shows), batch != time and != time + 1."""
    rng = random.Random(seed)
    g = generator(seed)
    shapes = [(2, 5), (3, 7)] + [(rng.randint(3, 5), rng.randint(7, 10)) for _ in range(2)]
    return [torch.randperm(1000, generator=g)[: b * t].view(b, t) for b, t in shapes]


def _same_pair(got: Any, expected: tuple[Tensor, Tensor]) -> bool:
    return (isinstance(got, (tuple, list)) and len(got) == 2
            and all(isinstance(g, Tensor) and g.shape == e.shape and torch.equal(g.detach().cpu(), e)
                    for g, e in zip(got, expected)))


def _shift_mistakes(batch: Tensor) -> list:
    same = ("The targets equal the inputs: the model would learn to copy the word it reads. The target at "
            "step t is the NEXT word, batch[:, t + 1]: targets = batch[:, 1:].")
    missing = ("A sequence is missing: every row of the batch is a sequence of its own, keep them all. "
               "Slice only the time dimension (dim 1): batch[:, :-1] and batch[:, 1:].")
    return [
        (lambda: (batch[:, :-1], batch[:, :-1]), same),
        (lambda: (batch[:, 1:], batch[:, 1:]), same),
        (lambda: (batch, batch), same),
        (lambda: (batch[:, 1:], batch[:, :-1]),
         "Shifted the wrong way: these targets are the words BEFORE the inputs. inputs = batch[:, :-1] "
         "(all but the last word), targets = batch[:, 1:] (all but the first)."),
        (lambda: (batch[:-1], batch[1:]),
         "Shifted along dim 0, the batch: that pairs each sequence with the NEXT SEQUENCE. Shift along "
         "time, dim 1: batch[:, :-1] and batch[:, 1:]."),
        (lambda: (batch[1:], batch[:-1]),
         "Shifted along dim 0, the batch (and the wrong way): shift along time, dim 1: batch[:, :-1] and "
         "batch[:, 1:]."),
        (lambda: (batch.t()[:-1], batch.t()[1:]),
         "The result is time-major (time, batch): keep the batch's layout (batch, time), as the model "
         "(batch_first=True) wants: batch[:, :-1] and batch[:, 1:]."),
        (lambda: (batch[:-1, :-1], batch[:-1, 1:]), missing),
        (lambda: (batch[1:, :-1], batch[1:, 1:]), missing),
        (lambda: (batch[:, :-1], batch[:, 1:-1]),
         "The targets are one step short: targets = batch[:, 1:] has as many steps as the inputs."),
    ]


@keeps_random_state
def check_shift_for_next_word(shift_for_next_word: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``shift_for_next_word(batch) -> (inputs, targets)`` for ids ``batch`` (batch, time + 1):
    ``inputs = batch[:, :-1]`` and ``targets = batch[:, 1:]``, both (batch, time), int64, on the
    batch's device; the word at step t of ``targets`` is the word after step t of ``inputs``."""
    device = resolve_device(device)
    for batch in _id_batches(seed):
        given = batch.to(device).clone()
        got = call_student(shift_for_next_word, given, name="shift_for_next_word")
        if not torch.equal(given.cpu(), batch):
            raise AssertionError("shift_for_next_word changed `batch` in place: return slices of it "
                                 "(batch[:, :-1], batch[:, 1:]) and leave it as it is.")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(f"shift_for_next_word should return a pair (inputs, targets), got {describe(got)}.")
        inputs = result_on(got[0], device, "inputs (the first value shift_for_next_word returns)")
        targets = result_on(got[1], device, "targets (the second value shift_for_next_word returns)")
        expected = (batch[:, :-1], batch[:, 1:])
        if _same_pair((inputs, targets), expected):
            if inputs.dtype == targets.dtype == torch.long:
                continue
            raise AssertionError(f"inputs and targets are {inputs.dtype} / {targets.dtype}: keep the ids int64 "
                                 "(torch.long), as nn.Embedding and F.cross_entropy want them.")
        hint = first_matching_mistake((inputs, targets), _shift_mistakes(batch), same=_same_pair)
        if hint is None:
            shapes = f"shapes {tuple(inputs.shape)} and {tuple(targets.shape)}"
            hint = (f"For a batch {tuple(batch.shape)} the result has {shapes}, expected "
                    f"{tuple(expected[0].shape)} for both: inputs = batch[:, :-1], targets = batch[:, 1:].")
        raise AssertionError(f"shift_for_next_word returned the wrong (inputs, targets) for a batch of shape "
                             f"{tuple(batch.shape)}. {hint}")
    success("shift_for_next_word: inputs = all but the last word, targets = all but the first, every sequence kept.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: perplexity
# ----------------------------------------------------------------------------------------------
def _safe(compute: Callable[[], float]) -> Callable[[], float]:
    """``compute`` with an overflow read as infinity (math.exp(1000) raises; torch.exp gives inf)."""
    def run() -> float:
        try:
            return float(compute())
        except OverflowError:
            return math.inf
    return run


_SUM_HINT = ("That is the exponential of the SUM of the losses: divide by n_words first. Perplexity is exp of "
             "the MEAN loss per word, math.exp(total_loss_nats / n_words).")
_BITS_HINT = ("2 ** loss is for losses in bits (log base 2). F.cross_entropy's losses are in nats (natural log): "
              "use the natural exponential, math.exp.")


def _perplexity_mistakes(total: float, n: float) -> list:
    return [
        (_safe(lambda: total / n),
         "That is the mean loss per word (in nats), not the perplexity: take its exponential, "
         "math.exp(total_loss_nats / n_words)."),
        (_safe(lambda: 2 ** (total / n)), _BITS_HINT),
        (_safe(lambda: math.exp(total)), _SUM_HINT),
        (_safe(lambda: math.exp(total) / n),
         "exp(total) / n_words: divide the loss BEFORE the exponential: math.exp(total_loss_nats / n_words)."),
        (_safe(lambda: math.exp(n / total)),
         "The division is upside down: the mean loss is total_loss_nats / n_words."),
        (_safe(lambda: 10 ** (total / n)),
         "Use the natural exponential (math.exp), not 10 **: the losses are in nats."),
    ]


def _number_result(got: Any, name: str) -> float:
    if isinstance(got, Tensor):
        where = " that still holds a graph" if got.requires_grad else ""
        raise AssertionError(f"{name} returned a tensor{where}: return a Python float (float(...), or .item() of a "
                             "0-d tensor), which prints and compares as a number.")
    value = _as_float(got)
    if value is None:
        raise AssertionError(f"{name} should return a float, got {describe(got)}.")
    return value


_OVERFLOW_HINT = ("math.exp overflowed: the exponent must be the mean loss per WORD, a few nats. Add up the batches' "
                  "total losses, sum(loss_i * words_i), and divide by the total number of words, sum(words_i), not "
                  "by the number of batches.")


def _call_perplexity(fn: Callable, args: tuple, name: str, overflow_hint: str) -> Any:
    try:
        return call_student(fn, *args, name=name)
    except StudentCodeError as exc:
        if "OverflowError" in str(exc):
            raise AssertionError(f"{exc} {overflow_hint}") from None
        raise


@keeps_random_state
def check_perplexity_from_loss(perplexity_from_loss: Callable, seed: int = 0) -> None:
    """Check ``perplexity_from_loss(total_loss_nats, n_words) -> float``: ``exp(total / n_words)``.

    ``total_loss_nats`` is the cross-entropy summed over ``n_words`` predicted words (natural log),
    a Python float or a 0-d tensor (float32 or float64); ``n_words`` an int or a 0-d integer tensor.
    The result must be a Python float, compared at float32's precision.
    """
    rng = random.Random(seed)
    uniform_words = rng.randint(100, 200)
    cases: list[tuple[Any, Any]] = [(6.0, 3), (0.0, 10), (uniform_words * math.log(50), uniform_words)]
    for kind in ("float", "float32", "float64"):
        n = rng.randint(200, 3000)
        total = n * rng.uniform(3.0, 6.5)
        if kind == "float":
            cases.append((total, n))
        else:
            dtype = torch.float32 if kind == "float32" else torch.float64
            cases.append((torch.tensor(total, dtype=dtype), torch.tensor(n) if kind == "float64" else n))
    for total, n in cases:
        got = _call_perplexity(perplexity_from_loss, (total, n), "perplexity_from_loss", _SUM_HINT)
        value = _number_result(got, "perplexity_from_loss")
        expected = math.exp(float(total) / float(n))
        if _close(value, expected):
            continue
        described = f"perplexity_from_loss({float(total):.4g}, {int(n)})"
        hint = first_matching_mistake(value, _perplexity_mistakes(float(total), float(n)), same=_close)
        if hint is None and math.isinf(value):
            hint = _SUM_HINT
        raise AssertionError(f"{described} returned {value:.6g}, expected {expected:.6g}. "
                             + (hint or "Perplexity = exp(mean loss per word) = math.exp(total_loss_nats / n_words)."))
    success("perplexity_from_loss = exp(total / n_words): 1 for a perfect model, 50 for a uniform guess among "
            "50 words; floats and tensors.")


def _batches_mistakes(losses: list[float], words: list[int]) -> list:
    total, n = sum(l * w for l, w in zip(losses, words)), sum(words)
    by_batches = ("That divides by the number of batches: the last batch holds only "
                  f"{words[-1]} words but counts as much as a full one. Multiply each batch's mean loss by its "
                  "number of words (its total loss), add the totals and divide by the total number of words.")
    return [
        (_safe(lambda: math.exp(sum(losses) / len(losses))), by_batches),
        (_safe(lambda: math.exp(total / len(losses))), by_batches),
        (_safe(lambda: math.exp(sum(losses) / n)),
         "batch_losses are MEANS per word (what F.cross_entropy returns): multiply each by its batch's number of "
         "words before adding them up."),
        (_safe(lambda: sum(math.exp(l) for l in losses) / len(losses)),
         "That averages the batches' perplexities: average the LOSSES (weighted by words), then take exp once."),
        (_safe(lambda: sum(math.exp(l) * w for l, w in zip(losses, words)) / n),
         "That averages the batches' perplexities: average the LOSSES (weighted by words), then take exp once."),
        (_safe(lambda: total / n), "That is the mean loss per word: perplexity is its exponential."),
        (_safe(lambda: 2 ** (total / n)), _BITS_HINT),
        (_safe(lambda: math.exp(total)), _SUM_HINT),
    ]


@keeps_random_state
def check_perplexity_of_batches(perplexity_of_batches: Callable, seed: int = 0) -> None:
    """Check ``perplexity_of_batches(batch_losses, batch_words) -> float``: ``batch_losses[i]`` is
    batch i's MEAN cross-entropy per word (Python floats or 0-d tensors, as ``F.cross_entropy``
    returns), ``batch_words[i]`` its number of words; the result is the perplexity of all the words,
    ``exp(sum(loss_i * words_i) / sum(words_i))``, a Python float. The last batch is smaller."""
    rng = random.Random(seed)
    for trial in range(3):
        full = rng.choice([320, 640, 1280])
        words = [full] * rng.randint(2, 4) + [rng.randint(5, full // 10)]
        losses = [rng.uniform(4.0, 6.0) for _ in words[:-1]] + [rng.uniform(7.0, 9.0)]
        given: list[Any] = list(losses)
        if trial == 2:  # as a loop that keeps loss.detach() would collect them
            given = [torch.tensor(l, dtype=torch.float32) for l in losses]
            losses = [float(t) for t in given]
        got = _call_perplexity(perplexity_of_batches, (given, list(words)), "perplexity_of_batches",
                               _OVERFLOW_HINT)
        value = _number_result(got, "perplexity_of_batches")
        expected = math.exp(sum(l * w for l, w in zip(losses, words)) / sum(words))
        if _close(value, expected):
            continue
        hint = first_matching_mistake(value, _batches_mistakes(losses, words), same=_close)
        raise AssertionError(
            f"perplexity_of_batches(mean losses {[round(l, 3) for l in losses]}, words {words}) returned "
            f"{value:.6g}, expected {expected:.6g}. "
            + (hint or "Total loss = sum(loss_i * words_i); perplexity = exp(total / sum(words_i))."))
    success("perplexity_of_batches weighs each batch's mean loss by its number of words (a small last batch counts "
            "for little), then takes exp once.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: one step of truncated backpropagation through time
# ----------------------------------------------------------------------------------------------
LR = 0.5  # plain SGD: a missing zero_grad or a gradient from the previous chunk shows in the weights

_DETACH_HINT = ("Detach the state carried in before the forward pass (state = tuple(s.detach() for s in state), "
                "when it is not None): otherwise backward goes through the previous chunks too, and the graph "
                "(and the cost of backward) would grow with the whole stream.")


def _chunks(stream: Tensor, steps: int) -> list[tuple[Tensor, Tensor]]:
    """The stream (batch, 3 * steps + 1) cut into 3 chunks of (inputs, targets): slices of the stream, not
    contiguous in memory, as a language model's batches are (reshape works on them, view does not)."""
    return [(stream[:, k * steps:(k + 1) * steps], stream[:, k * steps + 1:(k + 1) * steps + 1]) for k in range(3)]


def _tbptt_case(seed: int, device: torch.device) -> tuple[TinyLM, Tensor, int]:
    """A tiny model, a stream of ids (batch, 3 * steps + 1) and the chunks' length; batch != steps."""
    rng = random.Random(seed)
    vocab, embedding, hidden = rng.randint(12, 20), rng.randint(4, 7), rng.randint(5, 8)
    batch, steps = rng.randint(2, 3), rng.randint(4, 6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyLM(vocab, embedding, hidden).to(device)
    stream = torch.randint(vocab, (batch, 3 * steps + 1), generator=generator(seed))
    return model, stream.to(device), steps


def _reference_step(model: TinyLM, inputs: Tensor, targets: Tensor, state: Any,
                    optimizer: torch.optim.Optimizer) -> tuple[float, tuple[Tensor, Tensor]]:
    if state is not None:
        state = tuple(s.detach() for s in state)
    logits, state = model(inputs, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), tuple(s.detach() for s in state)


def _loss_of(model: nn.Module, inputs: Tensor, targets: Tensor, state: Any, reduction: str = "mean") -> float:
    with torch.no_grad():
        logits, _ = model(inputs, None if state is None else tuple(s.detach() for s in state))
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction).item()


def _call_tbptt(tbptt_step: Callable, args: tuple, state_was_none: bool) -> Any:
    try:
        return call_student(tbptt_step, *args, name="tbptt_step")
    except StudentCodeError as exc:
        message = str(exc)
        if "backward through the graph a second time" in message:
            hint = ("The state passed in hangs on the graph of the previous chunk, which its backward() has "
                    "already freed. " + _DETACH_HINT)
        elif "modified by an inplace operation" in message:
            hint = ("backward() went back into the previous chunk (kept with retain_graph=True?), whose weights "
                    "optimizer.step() has changed since. " + _DETACH_HINT)
        elif "view size is not compatible" in message:
            hint = ("The chunks are slices of the stream, not contiguous in memory, so .view(-1) cannot flatten "
                    "them: use .reshape(-1) (it copies only when it must).")
        elif state_was_none and "NoneType" in message:
            hint = ("At the start of the stream the state is None (the model starts from zeros): detach it only "
                    "when it is not None.")
        elif "Expected target size" in message or "Expected input batch_size" in message:
            hint = ("F.cross_entropy wants the classes in dim 1: flatten the logits to (batch * time, vocab) and "
                    "the targets to (batch * time,): logits.reshape(-1, logits.size(-1)), targets.reshape(-1).")
        else:
            raise
        raise AssertionError(f"{message} {hint}") from None


def _as_state(got: Any, batch: int, hidden: int, given_none: bool) -> tuple[Tensor, Tensor]:
    if got is None and given_none:
        raise AssertionError("tbptt_step returned None as the new state: that is the state it was GIVEN (None at "
                             "the start of the stream). Return the new state, the one the model returned for this "
                             "chunk: logits, state = model(inputs, state).")
    if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(isinstance(s, Tensor) for s in got):
        raise AssertionError(f"The new state (the second value tbptt_step returns) should be the pair (h, c) the "
                             f"model returned for this chunk, got {describe(got)}.")
    for s, name in zip(got, ("h", "c")):
        if tuple(s.shape) != (1, batch, hidden):
            raise AssertionError(f"{name} of the new state has shape {tuple(s.shape)}, expected {(1, batch, hidden)}: "
                                 "return the state the model returned, (h, c).")
    return got[0].detach().cpu(), got[1].detach().cpu()


def _weights_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(is_close(p.detach().cpu(), q.detach().cpu()) for p, q in zip(a.parameters(), b.parameters()))


def _clipping_used(before: nn.Module, model: nn.Module, reference: nn.Module) -> Optional[str]:
    """Which gradient clipping explains the student's SGD update, or None.

    With plain SGD, ``before - after`` is ``LR`` times the gradient used. Clipping by norm scales the
    reference update by one number below 1; clipping by value cuts it at one bound.
    """
    def update(after: nn.Module) -> Tensor:
        return torch.cat([(p.detach() - q.detach()).cpu().reshape(-1).double()
                          for p, q in zip(before.parameters(), after.parameters())])
    got, expected = update(model), update(reference)
    scale = float(got @ expected / (expected @ expected).clamp_min(1e-30))
    if 0 < scale < 0.999 and is_close(got, scale * expected, rtol=1e-4, atol=1e-6):  # float32 weights
        return f"clip_grad_norm_ (the gradient was scaled by {scale:.3f})"
    bound = float(got.abs().max())
    if bound < 0.999 * float(expected.abs().max()) and is_close(got, expected.clamp(-bound, bound), rtol=1e-4, atol=1e-6):
        return "clip_grad_value_ (the gradient was cut at one bound)"
    return None


@exact_float32
@keeps_random_state
def check_tbptt_step(tbptt_step: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``tbptt_step(model, inputs, targets, state, optimizer) -> (loss, new_state)``, one step of
    truncated backpropagation through time for a :class:`TinyLM`: detach the state carried in
    (``None`` at the start of the stream), forward the chunk from it, mean cross-entropy per word
    over the vocabulary, ``optimizer.zero_grad()``, ``backward()``, ``optimizer.step()``; return the
    loss as a Python float and the model's new state ``(h, c)`` (attached or detached).

    Two streams of three chunks, each step compared with a reference step on a copy of the model:
    one starts from ``None``, the other from a state that still hangs on a graph (the gradient must
    not reach it). The optimizer is SGD and the parameters hold stale gradients before the first step.
    """
    device = resolve_device(device)
    for trial in range(2):
        model, stream, steps = _tbptt_case(seed * 10 + trial, device)
        chunks = _chunks(stream, steps)
        reference = copy.deepcopy(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        reference_optimizer = torch.optim.SGD(reference.parameters(), lr=LR)
        stale = generator(seed + trial)
        for parameter, twin in zip(model.parameters(), reference.parameters()):  # gradients of an earlier chunk
            parameter.grad = torch.randn(parameter.shape, generator=stale).to(device)
            twin.grad = parameter.grad.clone()
        batch = stream.size(0)
        hidden = model.lstm.hidden_size
        previous: list[Tensor] = []
        if trial == 0:
            state: Any = None
        else:  # the end of a previous chunk: a state that still hangs on a graph
            g = generator(seed + 100)
            previous = [torch.randn(1, batch, hidden, generator=g).to(device).requires_grad_() for _ in range(2)]
            state = (torch.tanh(previous[0]), 2 * torch.tanh(previous[1]))
        reference_state = None if state is None else tuple(s.detach().clone() for s in state)
        for k, (inputs, targets) in enumerate(chunks):
            carried = None if state is None else tuple(s.detach().cpu().clone() for s in state)
            before = copy.deepcopy(model)
            given_inputs, given_targets = _chunks(stream.clone(), steps)[k]  # the student may change its copy
            got = _call_tbptt(tbptt_step, (model, given_inputs, given_targets, state, optimizer), state is None)
            if any(p.grad is not None for p in previous):
                raise AssertionError("The gradient reached the state you were given, i.e. the previous chunk. "
                                     + _DETACH_HINT)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"tbptt_step should return the pair (loss, new_state), got {describe(got)}.")
            loss, new_state = got
            if isinstance(loss, Tensor):
                raise AssertionError(
                    "tbptt_step returned the loss as a tensor"
                    + (" that still holds the graph of the chunk" if loss.requires_grad else "")
                    + ": return loss.item(), a Python float (a list of loss tensors would keep every chunk's "
                      "graph alive).")
            if _as_float(loss) is None:
                raise AssertionError(f"tbptt_step should return the loss as a float, got {describe(loss)}.")
            loss = float(loss)
            h, c = _as_state(new_state, batch, hidden, given_none=carried is None)
            expected_loss, reference_state = _reference_step(reference, inputs, targets, reference_state,
                                                              reference_optimizer)
            where = f"(chunk {k + 1} of a stream that starts from {'None' if trial == 0 else 'a given state'})"
            if all(torch.equal(p.detach(), q.detach()) for p, q in zip(model.parameters(), before.parameters())):
                raise AssertionError(f"The weights did not change {where}: call optimizer.step() after "
                                     "loss.backward(), and optimizer.zero_grad() BEFORE loss.backward() (after "
                                     "it, the gradients are gone before the step).")
            if not _close(loss, expected_loss):
                if _close(loss, _loss_of(before, inputs, targets, state, reduction="sum")):
                    hint = ("That is the SUM of the losses of the chunk's words: use the mean per word "
                            "(F.cross_entropy's default reduction).")
                elif carried is not None and _close(loss, _loss_of(before, inputs, targets, None)):
                    hint = ("That is the loss of the chunk started from zeros: pass the (detached) carried state "
                            "to the model, model(inputs, state), so that the chunk continues the stream.")
                else:
                    hint = ("loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1)), "
                            "logits from model(inputs, state).")
                raise AssertionError(f"tbptt_step returned the loss {loss:.5f}, expected {expected_loss:.5f} {where}. "
                                     + hint)
            expected_h, expected_c = (s.cpu() for s in reference_state)
            if not (is_close(h, expected_h) and is_close(c, expected_c)):
                if carried is not None and torch.equal(h, carried[0]) and torch.equal(c, carried[1]):
                    hint = ("That is the state you were GIVEN: return the new state, the one the model returned "
                            "for this chunk, so that the next chunk continues from its end.")
                else:
                    hint = "Return the state the model returned for this chunk: logits, state = model(inputs, state)."
                raise AssertionError(f"The new state tbptt_step returned is wrong {where}. " + hint)
            if not _weights_equal(model, reference):
                clipping = _clipping_used(before, model, reference)
                if clipping is not None:
                    raise AssertionError(
                        f"The loss and the state are right, but your step clips the gradient {where}: the update "
                        f"matches {clipping}. Lesson 8's training clips, but this exercise asks for the plain "
                        "step, zero_grad, backward, step, without clipping: the checker compares with that one.")
                raise AssertionError(
                    f"The loss is right but the weights after the step are not {where}. Call optimizer.zero_grad() "
                    "before loss.backward(): otherwise the gradients of earlier chunks are added to this one's.")
            state = new_state
    success("tbptt_step: the carried state detached, mean cross-entropy per word, zero_grad, backward, step; "
            "the loss as a float and the new state returned.")


# ----------------------------------------------------------------------------------------------
# Exercise 4: probabilities at a temperature
# ----------------------------------------------------------------------------------------------
def _temperature_cases(seed: int) -> list[tuple[Tensor, float]]:
    g = generator(seed)
    rng = random.Random(seed)
    vocab = rng.randint(8, 12)
    cases = [(2 * torch.randn(vocab, generator=g), t) for t in (0.5, 2.0, 1.0, 0.1)]
    cases.append((2 * torch.randn(3, vocab, generator=g), 0.7))  # a batch of rows: one softmax per row
    return cases


def _temperature_mistakes(logits: Tensor, t: float) -> list:
    no_effect = (f"The temperature has no effect: T = {t} must {'sharpen' if t < 1 else 'flatten'} the "
                 "distribution. Applied after the softmax and renormalised it cancels out, so divide the LOGITS "
                 "by T, then take the softmax: torch.softmax(logits / temperature, dim=-1).")
    mistakes = [
        (lambda: torch.softmax(logits, dim=-1), no_effect),
        (lambda: torch.softmax(logits, dim=-1) / t,
         "softmax(logits) / T does not sum to 1: divide the logits by T BEFORE the softmax."),
        (lambda: torch.softmax(logits * t, dim=-1),
         "The logits are multiplied by T: divide them by T (T = 0.5 sharpens, T = 2 flattens)."),
        (lambda: torch.log_softmax(logits / t, dim=-1), "Those are log-probabilities: use torch.softmax."),
        (lambda: torch.exp(logits / t),
         "exp(logits / T) is not normalised: the probabilities must sum to 1 (torch.softmax does both)."),
    ]
    if logits.dim() == 2:
        mistakes.append((lambda: torch.softmax(logits / t, dim=0),
                         "The softmax runs over dim 0 (the rows): run it over the vocabulary, the last "
                         "dimension (dim=-1)."))
    return mistakes


@keeps_random_state
def check_temperature_probabilities(temperature_probabilities: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``temperature_probabilities(logits, temperature) -> probabilities``:
    ``softmax(logits / temperature)`` over the last dimension (the vocabulary), for logits (vocab,)
    or (batch, vocab) on ``device``, without changing ``logits``; ``ValueError`` when
    ``temperature <= 0``."""
    device = resolve_device(device)
    cases = _temperature_cases(seed)
    for logits, t in cases:
        given = logits.to(device).clone()
        got = call_student(temperature_probabilities, given, t, name="temperature_probabilities")
        if not torch.equal(given.cpu(), logits):
            raise AssertionError("temperature_probabilities changed `logits` in place (logits /= T?): compute a new "
                                 "tensor, logits / temperature.")
        got = result_on(got, device, f"temperature_probabilities(logits, {t})")
        expected = torch.softmax(logits / t, dim=-1)
        if tuple(got.shape) != tuple(expected.shape):
            raise AssertionError(f"temperature_probabilities returned shape {tuple(got.shape)} for logits "
                                 f"{tuple(logits.shape)}: return one probability per word, the logits' shape.")
        if is_close(got, expected):
            continue
        hint = first_matching_mistake(got, _temperature_mistakes(logits, t))
        raise AssertionError(f"temperature_probabilities(logits, {t}) returned wrong probabilities (logits of shape "
                             f"{tuple(logits.shape)}). "
                             + (hint or "probabilities = torch.softmax(logits / temperature, dim=-1)."))
    logits = cases[0][0].to(device)
    for bad in (0.0, -1.0, 0):
        try:
            temperature_probabilities(logits.clone(), bad)
        except ValueError:
            continue
        except Exception as exc:  # noqa: BLE001 - any other error is the mistake we report
            raise AssertionError(
                f"temperature_probabilities(logits, {bad!r}) raised {type(exc).__name__}: {str(exc)[:100]}; "
                "expected a ValueError: check `if temperature <= 0: raise ValueError(...)` first.") from None
        raise AssertionError(
            f"temperature_probabilities(logits, {bad!r}) returned a value; expected a ValueError: "
            + ("T = 0 divides by zero (greedy decoding is argmax, not T = 0)." if bad == 0 else
               "a negative T turns the least likely word into the most likely one.")
            + " Check `if temperature <= 0: raise ValueError(...)` first.")
    success("temperature_probabilities = softmax(logits / T) over the vocabulary: T < 1 sharpens, T > 1 flattens, "
            "T <= 0 refused.")


# ----------------------------------------------------------------------------------------------
# Exercise 5: sampling the next word
# ----------------------------------------------------------------------------------------------
DRAWS = 25  # draws compared per case: wrong probabilities (or another generator) give another sequence


def _draws(draw_one: Callable[[torch.Generator], Any], seed: int, device: torch.device, n: int = DRAWS) -> list:
    g = torch.Generator(device=device).manual_seed(seed)
    return [draw_one(g) for _ in range(n)]


def _reference_draws(probabilities: Tensor, seed: int, device: torch.device, **kwargs: Any) -> list[int]:
    weights = probabilities.to(device)
    return _draws(lambda g: torch.multinomial(weights, 1, generator=g, **kwargs).item(), seed, device)


def _sample_cases(seed: int) -> list[tuple[Tensor, float, int]]:
    rng = random.Random(seed)
    g = generator(seed)
    vocab = rng.randint(10, 15)
    # logits of a spread a trained model gives: T = 0.5 sharpens them without making every draw the argmax
    return [(torch.randn(vocab, generator=g), t, 1000 * seed + i) for i, t in enumerate((0.5, 2.0, 1.0))]


def _one_draw(got: Any, vocab: int) -> int:
    if isinstance(got, Tensor):
        raise AssertionError(f"sample_next_word returned a tensor of shape {tuple(got.shape)}: return the index as a "
                             "Python int, torch.multinomial(...).item(), ready for vocab lookups and lists.")
    if not isinstance(got, numbers.Integral) or isinstance(got, bool):
        raise AssertionError(f"sample_next_word should return an int (the index of a word), got {describe(got)}.")
    if not 0 <= int(got) < vocab:
        raise AssertionError(f"sample_next_word returned {got}, not the index of a word of a vocabulary of {vocab}.")
    return int(got)


@keeps_random_state
def _is_greedy(sample_next_word: Callable, vocab: int, device: torch.device) -> bool:
    """True when the answer returns the argmax of almost flat logits, wherever it is (greedy decoding);
    a sampler picks about the same word for all three, whatever the argmax."""
    for k in (0, vocab // 2, vocab - 1):
        probe = torch.zeros(vocab)
        probe[k] = 0.05
        g = torch.Generator(device=device).manual_seed(0)
        got = call_student(sample_next_word, probe.to(device), 1.0, g, name="sample_next_word")
        if _one_draw(got, vocab) != k:
            return False
    return True


def check_sample_next_word(sample_next_word: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``sample_next_word(logits, temperature, generator) -> int``: one index drawn with
    ``torch.multinomial(softmax(logits / temperature), 1, generator=generator)``, as a Python int.

    The draws are compared with those of ``torch.multinomial`` from a generator in the same state
    (same seed), so they are deterministic: no answer passes or fails by luck. The same seed must
    give the same draws (the generator is used, not the global random stream)."""
    device = resolve_device(device)
    with seeded(seed + 4321):  # an answer that ignores the generator draws from here, deterministically
        for logits, t, draw_seed in _sample_cases(seed):
            vocab = logits.numel()

            def student(g: torch.Generator) -> int:
                given = logits.to(device).clone()
                got = call_student(sample_next_word, given, t, g, name="sample_next_word")
                if not torch.equal(given.cpu(), logits):
                    raise AssertionError("sample_next_word changed `logits` in place: compute new tensors.")
                return _one_draw(got, vocab)

            first = _draws(student, draw_seed, device)
            second = _draws(student, draw_seed, device)
            where = f"(T = {t}, {DRAWS} draws from a generator seeded {draw_seed})"
            if first != second:
                raise AssertionError(
                    f"Two generators with the same seed gave different draws {where}: the generator is not used. "
                    "Pass it to torch.multinomial(probabilities, 1, generator=generator), so that a seed "
                    "reproduces a generated text.")
            probabilities = torch.softmax(logits / t, dim=-1)
            if first in (_reference_draws(probabilities, draw_seed, device),
                         _reference_draws(probabilities, draw_seed, device, replacement=True)):
                continue
            mistakes = [
                (torch.softmax(logits, dim=-1),
                 f"These are draws from softmax(logits): the temperature has no effect (T = {t} must "
                 f"{'sharpen' if t < 1 else 'flatten'}). Divide the logits by T before the softmax."),
                (torch.softmax(logits * t, dim=-1), "The logits are multiplied by T: divide them by T."),
            ]
            hint = next((h for p, h in mistakes if first == _reference_draws(p, draw_seed, device)), None)
            if hint is None and _draws(student, draw_seed + 1, device) == first:  # the seed changes nothing
                if _is_greedy(sample_next_word, vocab, device):
                    hint = ("Every draw is the most likely word: that is greedy decoding (argmax). Sample instead: "
                            "torch.multinomial(probabilities, 1, generator=generator).")
                else:
                    hint = ("Your draws do not change when the seed of `generator` changes: the function draws "
                            "from a generator of its own that starts from the same state at every call "
                            "(torch.Generator().manual_seed(...) or torch.manual_seed(...) inside it), so "
                            + ("every call gives the same word. " if len(set(first)) == 1 else "the caller's seed "
                               "is ignored. ")
                            + "Draw from the `generator` you are given: torch.multinomial(probabilities, 1, "
                              "generator=generator).")
            raise AssertionError(
                f"sample_next_word drew {first[:10]}..., torch.multinomial from the same generator drew "
                f"{_reference_draws(probabilities, draw_seed, device)[:10]}... {where}. "
                + (hint or "Draw with torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, "
                           "generator=generator).item() (your temperature_probabilities gives the probabilities)."))
    success("sample_next_word draws from softmax(logits / T) with torch.multinomial and the given generator "
            "(same seed, same words) and returns an int.")
