"""Checkers for the exercises of lesson 4, padding versus packing
(``notebooks/exercises/04_exercises.ipynb``; tests in ``tests/test_checks_lesson04.py``).

Each checker makes random batches of different lengths, runs the student's function and compares
it with an oracle: the course's own ``course_utils.batching``, which lesson 4 proves equal to
PyTorch (``pad_sequence``, ``pack_padded_sequence``). When the answer is wrong, the checker also
runs the *mistakes students often make* (left padding, the last time step instead of the last real
one, ...) and names the one that matches. Every checker takes a ``seed``.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Optional

import torch

from ..batching import collate_batch, last_real_output, masked_mean, padding_mask, reverse_within_length
from ..text import PAD_INDEX, UNK_INDEX
from ._common import (
    StudentCodeError,
    assert_tensor,
    call_student,
    describe,
    first_matching_mistake,
    is_close,
    success,
)

Tensor = torch.Tensor


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Lesson 3, exercise 4, and lesson 4, exercise 1: collate functions
# ----------------------------------------------------------------------------------------------
def _random_batch(rng: random.Random, size: int, max_len: int = 9, min_len: int = 1) -> list[tuple[list[int], int]]:
    batch = [([rng.randint(2, 50) for _ in range(rng.randint(min_len, max_len))], rng.randint(0, 1))
             for _ in range(size)]
    # the longest review is not the first one, and two reviews have different lengths
    batch[-1] = ([rng.randint(2, 50) for _ in range(max_len + 1)], batch[-1][1])
    return batch


def _as_triple(got: Any, name: str) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise AssertionError(f"{name} should return a triple (ids, labels, lengths), got {describe(got)}.")
    return tuple(assert_tensor(g, f"{what} (value {i + 1} of {name}'s result)")
                 for i, (g, what) in enumerate(zip(got, ("ids", "labels", "lengths"))))


def _left_pad(sequences: list[Tensor], pad: int) -> Tensor:
    longest = max(len(s) for s in sequences)
    return torch.stack([torch.cat([torch.full((longest - len(s),), pad, dtype=torch.long), s]) for s in sequences])


def _compare_collate(name: str, got: Any, expected: tuple[Tensor, Tensor, Tensor],
                     sequences: list[Tensor], lengths_hint: str = "") -> None:
    ids, labels, lengths = _as_triple(got, name)
    want_ids, want_labels, want_lengths = expected
    if ids.dtype != torch.long:
        raise AssertionError(f"ids is {ids.dtype}: nn.Embedding wants int64 (torch.long) ids.")
    if tuple(ids.shape) != tuple(want_ids.shape):
        if tuple(ids.shape) == tuple(want_ids.shape[::-1]):
            hint = ("It is (time, batch): pass batch_first=True to pad_sequence (its default puts time first).")
        else:
            hint = "Pad every review to the longest one IN THIS BATCH: shape (batch, longest)."
        raise AssertionError(f"ids has shape {tuple(ids.shape)}, expected {tuple(want_ids.shape)}. {hint}")
    if not torch.equal(ids, want_ids):
        variants = [
            (lambda: _left_pad(sequences, PAD_INDEX),
             "The padding is on the left: pad on the right (pad_sequence does), so that every review starts at step 0."),
            (lambda: torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=UNK_INDEX),
             "The padding value is 1 (<unk>): pad with PAD_INDEX = 0."),
            (lambda: torch.nn.utils.rnn.pad_sequence(sorted(sequences, key=len, reverse=True), batch_first=True),
             "The reviews are sorted by length: keep the batch's order, or the labels no longer match."),
        ]
        hint = first_matching_mistake(ids, variants, torch.equal) or "Row i must hold review i's ids, then zeros."
        raise AssertionError(f"ids differ from the expected padded batch. {hint}")
    if labels.dtype != torch.float32:
        raise AssertionError(
            f"labels is {labels.dtype}: make it float32 (torch.float), as nn.BCEWithLogitsLoss wants.")
    if not torch.equal(labels, want_labels):
        raise AssertionError(f"labels is {labels.tolist()}, expected {want_labels.tolist()}: one label per review, in order.")
    if lengths.dtype != torch.long or lengths.device.type != "cpu":
        raise AssertionError(
            f"lengths is {lengths.dtype} on {lengths.device.type}: make it an int64 tensor on the CPU, "
            "as pack_padded_sequence wants.")
    if not torch.equal(lengths, want_lengths):
        if lengths.numel() == want_lengths.numel() and torch.all(lengths == ids.size(1)):
            hint = "Every length is the padded length: give each review's TRUE length, before padding."
        elif lengths.numel() == want_lengths.numel() and torch.equal(lengths, want_lengths - 1):
            hint = "The lengths are one too small: a review of n tokens has length n."
        else:
            hint = lengths_hint or "lengths[i] is the number of real tokens of review i."
        raise AssertionError(f"lengths is {lengths.tolist()}, expected {want_lengths.tolist()}. {hint}")


def check_collate(collate: Callable, seed: int = 0) -> None:
    """Check ``collate(batch) -> (ids, labels, lengths)`` for a list of ``(token_ids, label)``.

    ids: (batch, longest) int64, right-padded with 0; labels: float32; lengths: int64 on the CPU.
    The oracle is ``course_utils.batching.collate_batch`` (``pad_sequence`` inside).
    """
    rng = random.Random(seed)
    batches = [[([5, 6, 7], 1), ([8], 0)], [([3, 4], 0)]] + [_random_batch(rng, rng.randint(2, 6)) for _ in range(5)]
    for batch in batches:
        copy = [(list(ids), label) for ids, label in batch]
        got = call_student(collate, copy, name="collate")
        if copy != batch:
            raise AssertionError("collate changed the batch it was given: build new tensors instead.")
        sequences = [torch.tensor(ids) for ids, _ in batch]
        _compare_collate("collate", got, collate_batch(batch), sequences)
    success(f"collate pads, labels and measures {len(batches)} random batches like collate_batch.")


def check_collate_truncate(collate_truncate: Callable, seed: int = 0) -> None:
    """Check ``collate_truncate(batch, max_len) -> (ids, labels, lengths)``.

    Each review is cut to its first ``max_len`` tokens; then as ``collate_batch``: right-padded
    with 0 to the longest (cut) review of the batch, float labels, int64 CPU lengths after cutting.
    """
    rng = random.Random(seed)
    cases = [([([5, 6, 7, 8], 1), ([9], 0)], 2), ([([5, 6], 1), ([7], 0)], 4)]
    for _ in range(6):
        max_len = rng.randint(2, 6)
        cases.append((_random_batch(rng, rng.randint(2, 6), max_len=rng.randint(1, 10)), max_len))
    for batch, max_len in cases:
        copy = [(list(ids), label) for ids, label in batch]
        got = call_student(collate_truncate, copy, max_len, name="collate_truncate")
        if copy != batch:
            raise AssertionError("collate_truncate changed the batch it was given: build new tensors instead.")
        cut = [(ids[:max_len], label) for ids, label in batch]
        expected = collate_batch(cut)
        ids = got[0] if isinstance(got, (tuple, list)) and len(got) == 3 else None
        call = f"collate_truncate(batch, max_len={max_len}) with review lengths {[len(i) for i, _ in batch]}"
        if isinstance(ids, Tensor) and ids.dim() == 2 and ids.size(0) == len(batch):
            tails = collate_batch([(i[-max_len:], y) for i, y in batch])[0]
            if ids.size(1) == expected[0].size(1) and torch.equal(ids, tails) and not torch.equal(ids, expected[0]):
                raise AssertionError(f"{call}: you kept the LAST max_len tokens; keep the first ones (ids[:max_len]).")
            if ids.size(1) == max_len and expected[0].size(1) < max_len:
                raise AssertionError(
                    f"{call}: ids has {max_len} columns, but the longest review here has only "
                    f"{expected[0].size(1)} tokens: pad to the longest review in the batch, not to max_len.")
            if ids.size(1) == max_len - 1 and expected[0].size(1) == max_len:
                raise AssertionError(f"{call}: the reviews are cut to max_len - 1 tokens: ids[:max_len] keeps max_len.")
            if ids.size(1) > expected[0].size(1) and ids.size(1) == max(len(i) for i, _ in batch):
                raise AssertionError(f"{call}: the reviews are not cut: keep only the first max_len tokens of each.")
        try:
            _compare_collate("collate_truncate", got, expected, [torch.tensor(i) for i, _ in cut],
                             lengths_hint="The lengths must be those AFTER cutting (at most max_len).")
        except AssertionError as error:
            raise AssertionError(f"{call}: {error}") from None
    success(f"collate_truncate cuts and pads {len(cases)} random batches correctly.")


# ----------------------------------------------------------------------------------------------
# Lesson 4: gathering, pooling and reversing within each length
# ----------------------------------------------------------------------------------------------
def _padded_case(seed: int, features: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """A (batch, time, features) tensor with GARBAGE (not zeros) at the padded steps, and lengths.

    One review fills the whole time axis, one has length 1, the others are random.
    """
    g = _generator(seed)
    batch = int(torch.randint(3, 6, (), generator=g))
    time = int(torch.randint(5, 9, (), generator=g))
    features = features or int(torch.randint(2, 5, (), generator=g))
    lengths = torch.randint(1, time + 1, (batch,), generator=g)
    lengths[1], lengths[-1] = time, 1
    x = torch.randn(batch, time, features, generator=g)
    garbage = 10 + torch.rand(batch, time, features, generator=g)
    x = torch.where(padding_mask(lengths, time).unsqueeze(2), x, garbage)
    return x, lengths


def _check_untouched(name: str, x: Tensor, original: Tensor, lengths: Tensor, original_lengths: Tensor) -> None:
    if not torch.equal(x, original) or not torch.equal(lengths, original_lengths):
        raise AssertionError(f"{name} changed its input in place: compute a new tensor instead.")


def _check_gradient(fn: Callable, name: str, x: Tensor, lengths: Tensor, oracle: Callable) -> None:
    """The student's result must be differentiable with respect to ``x``, with the oracle's gradient."""
    leaf = x.clone().requires_grad_(True)
    got = call_student(fn, leaf, lengths.clone(), name=name)
    if not isinstance(got, Tensor) or not got.requires_grad:
        raise AssertionError(
            f"{name} gives the right values but no gradient flows back to `output`: do not use "
            ".detach(), .item(), .tolist(), .numpy() or torch.no_grad() inside it.")
    weights = torch.randn(got.shape, generator=_generator(7))
    (grad,) = torch.autograd.grad((got * weights).sum(), leaf, allow_unused=True)
    reference = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((oracle(reference, lengths) * weights).sum(), reference)
    if grad is None or not is_close(grad, expected):
        raise AssertionError(
            f"{name} gives the right values but the wrong gradient: part of the computation is cut "
            "from the autograd graph (.detach(), .data, or a tensor rebuilt from numbers).")


def _check_tensor_function(fn: Callable, name: str, oracle: Callable, variants: Callable,
                           seed: int, trials: int, default_hint: str, index_error_hint: str = "") -> None:
    for trial in range(trials):
        x, lengths = _padded_case(seed * 100 + trial)
        x_in, lengths_in = x.clone(), lengths.clone()
        try:
            got = call_student(fn, x_in, lengths_in, name=name)
        except StudentCodeError as error:
            if index_error_hint and "out of bounds" in str(error):
                raise StudentCodeError(f"{error} {index_error_hint}") from None
            raise
        _check_untouched(name, x_in, x, lengths_in, lengths)
        expected = oracle(x, lengths)
        got = assert_tensor(got, f"the result of {name}")
        if is_close(got, expected):
            continue
        hint = first_matching_mistake(got, variants(x, lengths), is_close)
        if hint is None and tuple(got.shape) != tuple(expected.shape):
            hint = f"Expected shape {tuple(expected.shape)}."
        shape_note = "" if tuple(got.shape) == tuple(expected.shape) else (
            f" (got shape {tuple(got.shape)}, expected {tuple(expected.shape)})")
        raise AssertionError(
            f"{name} gives a wrong result for lengths {lengths.tolist()} and {x.size(1)} time steps"
            f"{shape_note}. {hint or default_hint}")
    _check_gradient(fn, name, *_padded_case(seed * 100 + 99), oracle)


def check_last_real_output(last_real_output_fn: Callable, seed: int = 0, trials: int = 4) -> None:
    """Check ``last_real_output(output, lengths) -> (batch, features)``: each row's output at step length - 1.

    ``output`` is (batch, time, features), right-padded (the padded steps hold anything);
    ``lengths`` an int64 tensor. The oracle is ``course_utils.batching.last_real_output``.
    """
    def variants(x: Tensor, lengths: Tensor):
        batch = torch.arange(x.size(0))
        return [
            (lambda: x[:, -1], "This is the output at the LAST TIME STEP, which is padding for the shorter "
                               "reviews: take each review's step lengths[i] - 1."),
            (lambda: x[batch, lengths.clamp(max=x.size(1) - 1)],
             "Off by one: the last real step of a review of length n is n - 1 (steps count from 0)."),
            (lambda: x[:, 0], "This is the FIRST step: take each review's last real step, lengths[i] - 1."),
            (lambda: x[:, lengths - 1], "output[:, lengths - 1] takes every chosen step for EVERY review: "
                                        "pair each review with its own step, output[torch.arange(batch), lengths - 1]."),
            (lambda: x[batch, lengths - 1].unsqueeze(1), "The result has an extra time dimension: "
                                                         "squeeze it, the result is (batch, features)."),
            (lambda: x[batch, (lengths - 1).flip(0)], "The steps are paired with the wrong reviews."),
        ]
    _check_tensor_function(last_real_output_fn, "last_real_output", last_real_output, variants, seed, trials,
                           "Row i must be output[i, lengths[i] - 1].",
                           index_error_hint="(Here a review fills the whole time axis: its last real step "
                                            "is lengths[i] - 1, steps count from 0.)")
    success(f"last_real_output picks each review's last real step in {trials} random batches "
            "(and lets gradients through).")


def check_masked_mean(masked_mean_fn: Callable, seed: int = 0, trials: int = 4) -> None:
    """Check ``masked_mean(output, lengths) -> (batch, features)``: the mean over each review's real steps.

    The padded steps of ``output`` hold anything (not necessarily zeros) and must not count.
    The oracle is ``course_utils.batching.masked_mean``.
    """
    def variants(x: Tensor, lengths: Tensor):
        mask = padding_mask(lengths, x.size(1)).unsqueeze(2)
        wide = padding_mask(lengths + 1, x.size(1)).unsqueeze(2)
        n = lengths.unsqueeze(1).float()
        return [
            (lambda: x.mean(1), "This is the mean over ALL steps, padding included: "
                                "mask the padded steps and divide by each review's length."),
            (lambda: x.sum(1) / n, "The padded steps are summed too (they are not zeros here): "
                                   "multiply by the mask before summing."),
            (lambda: (x * mask).sum(1) / x.size(1), "Masked sum, but divided by the number of steps of the "
                                                    "batch: divide by each review's own length."),
            (lambda: (x * mask).sum(1), "This is a sum: divide by each review's length."),
            (lambda: (x * wide).sum(1) / (n + 1).clamp(max=x.size(1)),
             "Off by one: the mask must be True at steps 0 .. length - 1 (steps < length, not <=)."),
            (lambda: (x * wide).sum(1) / n, "Off by one: the mask must be True at steps 0 .. length - 1 "
                                            "(steps < length, not <=)."),
            (lambda: (x * mask).mean(0), "This averages over the BATCH dimension: average over time (dim 1)."),
        ]
    _check_tensor_function(masked_mean_fn, "masked_mean", masked_mean, variants, seed, trials,
                           "Row i must be output[i, :lengths[i]].mean(0).")
    success(f"masked_mean averages the real steps only in {trials} random batches (and lets gradients through).")


def check_reverse_within_length(reverse_fn: Callable, seed: int = 0, trials: int = 4) -> None:
    """Check ``reverse_within_length(x, lengths)``: each review reversed within its own length.

    ``[a, b, c, p, p]`` with length 3 becomes ``[c, b, a, p, p]``: the padded steps stay where
    they are, unchanged. The oracle is ``course_utils.batching.reverse_within_length``.
    """
    def variants(x: Tensor, lengths: Tensor):
        time = x.size(1)
        steps = torch.arange(time).expand(x.size(0), time)
        inside = steps < lengths.unsqueeze(1)

        def gather(index: Tensor) -> Tensor:
            return x.gather(1, index.clamp(0, time - 1).unsqueeze(2).expand_as(x))
        right = torch.where(inside, lengths.unsqueeze(1) - 1 - steps, steps)
        return [
            (lambda: x.flip(1), "The whole time axis is reversed, so the padding comes FIRST for the shorter "
                                "reviews: reverse only the first lengths[i] steps of each review."),
            (lambda: gather(torch.where(inside, lengths.unsqueeze(1) - steps, steps)),
             "Off by one: step t of a review of length n comes from step n - 1 - t."),
            (lambda: torch.where(inside.unsqueeze(2), gather(right), torch.zeros_like(x)),
             "The padded steps became zeros: leave them unchanged, only the real steps move."),
            (lambda: x.flip(0), "The batch is reversed: reverse the time steps (dim 1) of each review."),
            (lambda: torch.where(inside.unsqueeze(2), x.flip(1), x),
             "The real steps are taken from the end of the time axis (padding included): "
             "step t of a review of length n comes from its step n - 1 - t."),
        ]
    _check_tensor_function(reverse_fn, "reverse_within_length", reverse_within_length, variants, seed, trials,
                           "Row i must be torch.cat([x[i, :n].flip(0), x[i, n:]]) with n = lengths[i].")
    success(f"reverse_within_length reverses each review within its length in {trials} random batches "
            "(and lets gradients through).")
