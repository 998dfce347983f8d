"""Checkers for the exercises of lesson 4, padding versus packing
(``notebooks/exercises/04_exercises.ipynb``; tests in ``tests/test_checks_lesson04.py``).

Each checker makes random batches of different lengths, runs the student's function and compares
it with an oracle: PyTorch itself (``pack_padded_sequence``, a packed ``nn.GRU``) or the course's
``course_utils.batching``, which lesson 4 proves equal to PyTorch. When the answer is wrong, the
checker also runs the *mistakes students often make* (the shortest review first, the states left in
sorted order, the last time step instead of the last real one, ...) and names the one that matches.

Every checker takes a ``seed`` and a ``device`` (``None``: the notebooks' default, see ``_common``):
the student's function gets its tensors on ``device``, lengths stay on the CPU as PyTorch wants
them, and the results are compared on the CPU with an oracle computed there.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from typing import Any, Callable, Iterator, Optional
from unittest import mock

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..batching import collate_batch, last_real_output, padding_mask, reverse_within_length
from ..text import PAD_INDEX, UNK_INDEX
from ._common import (
    Device,
    StudentCodeError,
    assert_tensor,
    call_student,
    describe,
    first_matching_mistake,
    generator,
    is_close,
    randomize,
    resolve_device,
    result_on,
    seeded,
    success,
)

Tensor = torch.Tensor

# ----------------------------------------------------------------------------------------------
# Lesson 4, exercise 1: a collate function
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
                     sequences: list[Tensor]) -> None:
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
    if lengths.device.type != "cpu":
        raise AssertionError(
            f"lengths is on {lengths.device.type}: keep it on the CPU, where pack_padded_sequence wants it "
            "(even when the batch goes to a GPU).")
    if lengths.dtype != torch.long:
        raise AssertionError(
            f"lengths is {lengths.dtype}: make it int64 (torch.long), as collate_batch does (the dtype of "
            "indices in PyTorch; pack_padded_sequence would convert other integer types itself).")
    if not torch.equal(lengths, want_lengths):
        if lengths.numel() == want_lengths.numel() and torch.all(lengths == ids.size(1)):
            hint = "Every length is the padded length: give each review's TRUE length, before padding."
        elif lengths.numel() == want_lengths.numel() and torch.equal(lengths, want_lengths - 1):
            hint = "The lengths are one too small: a review of n tokens has length n."
        else:
            hint = "lengths[i] is the number of real tokens of review i."
        raise AssertionError(f"lengths is {lengths.tolist()}, expected {want_lengths.tolist()}. {hint}")


def check_collate(collate: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``collate(batch) -> (ids, labels, lengths)`` for a list of ``(token_ids, label)``.

    ids: (batch, longest) int64, right-padded with 0; labels: float32; lengths: int64 on the CPU.
    The oracle is ``course_utils.batching.collate_batch`` (``pad_sequence`` inside). ``device`` is
    not used: a DataLoader's collate function builds CPU tensors (the training loop moves them).
    """
    rng = random.Random(seed)
    batches = [[([5, 6, 7], 1), ([8], 0)], [([3, 4], 0)]] + [_random_batch(rng, rng.randint(2, 6)) for _ in range(5)]
    for batch in batches:
        given = [(list(ids), label) for ids, label in batch]
        got = call_student(collate, given, name="collate")
        if given != batch:
            raise AssertionError("collate changed the batch it was given: build new tensors instead.")
        sequences = [torch.tensor(ids) for ids, _ in batch]
        _compare_collate("collate", got, collate_batch(batch), sequences)
    success(f"collate pads, labels and measures {len(batches)} random batches like collate_batch.")



# ----------------------------------------------------------------------------------------------
# Lesson 4, exercises 2 and 3: packing by hand, and the final states of a packed run
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _refusing_packing(name: str) -> Iterator[None]:
    """Make pack_padded_sequence / pack_sequence and nn.RNN/LSTM/GRU refuse to run inside ``name``."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{name} may not call pack_padded_sequence or build nn.RNN / nn.GRU / nn.LSTM: "
                           "work it out from lengths and batch_sizes yourself, that is the exercise.")
    with mock.patch.object(torch._VF, "_pack_padded_sequence", refuse), \
            mock.patch.object(nn.modules.rnn.RNNBase, "__init__", refuse):
        yield


def _packing_cases(seed: int, features: Optional[int] = None) -> list[tuple[Tensor, Tensor]]:
    """Right-padded (batch, time, features) batches with GARBAGE at the padded steps, and CPU lengths.

    The fixed cases hold ties and a batch padded beyond its longest review; the others are random.
    """
    g = generator(seed)
    lengths = [torch.tensor([3, 5, 1]), torch.tensor([2, 4, 2, 1, 4]), torch.tensor([2, 3, 1])]
    widths = [5, 4, 6]  # the last batch is padded to 6 steps although its longest review has 3
    for _ in range(3):
        batch = int(torch.randint(3, 7, (), generator=g))
        time = int(torch.randint(4, 9, (), generator=g))
        n = torch.randint(1, time + 1, (batch,), generator=g)
        n[int(torch.randint(0, batch, (), generator=g))] = time
        lengths.append(n)
        widths.append(time)
    cases = []
    for n, time in zip(lengths, widths):
        size = features or int(torch.randint(2, 4, (), generator=g))
        x = torch.randn(len(n), time, size, generator=g)
        garbage = 50 + torch.rand(len(n), time, size, generator=g)
        cases.append((torch.where(padding_mask(n, time).unsqueeze(2), x, garbage), n))
    return cases


def _as_int_list(value: Any, what: str) -> list[int]:
    """A 1-d integer tensor, or a list / tuple of ints (NumPy's too), as a list of ints."""
    if isinstance(value, Tensor) and value.dim() == 1 and not value.is_floating_point():
        return value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
        return [int(v) for v in value]
    raise AssertionError(f"{what} should be a 1-d integer tensor (or a list of ints), got {describe(value)}.")


def _time_major(padded: Tensor, order: list[int], batch_sizes: list[int]) -> Tensor:
    """What packing stores: step 0 of every review (in ``order``), then step 1 of those still running, ..."""
    return torch.cat([padded[order[:n], t] for t, n in enumerate(batch_sizes)])


def check_pack_by_hand(pack_by_hand: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``pack_by_hand(padded, lengths) -> (data, batch_sizes, sorted_indices)``.

    ``padded`` is (batch, time, features), right-padded (the padded steps hold anything, and the
    batch may be padded beyond its longest review); ``lengths`` an int64 CPU tensor. The oracle is
    ``pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)``; reviews of
    equal length may come in any order, as long as ``data`` follows the returned ``sorted_indices``.
    """
    device = resolve_device(device)
    for padded, lengths in _packing_cases(seed):
        given = padded.to(device)
        with _refusing_packing("pack_by_hand"):
            got = call_student(pack_by_hand, given, lengths.clone(), name="pack_by_hand")
        if not isinstance(got, (tuple, list)) or len(got) not in (3, 4):
            raise AssertionError("pack_by_hand should return (data, batch_sizes, sorted_indices), "
                                 f"got {describe(got)}.")
        where = f"lengths {lengths.tolist()}, padded to {padded.size(1)} steps"
        reference = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        want_sizes = reference.batch_sizes.tolist()
        sizes = _as_int_list(got[1], "batch_sizes (the second value)")
        if sizes != want_sizes:
            hints = [
                (lambda: [int((lengths > t).sum()) for t in range(padded.size(1))],
                 "batch_sizes stops at the longest review: it has max(lengths) entries, not one per padded step."),
                (lambda: sorted(lengths.tolist(), reverse=True),
                 "These are the lengths, sorted: batch_sizes[t] is the number of reviews still running at step t."),
                (lambda: [int((lengths >= t).sum()) for t in range(int(lengths.max()))],
                 "Off by one: review i is still running at step t when t < lengths[i] (steps count from 0)."),
                (lambda: [int((lengths >= t).sum()) for t in range(1, int(lengths.max()) + 1)],
                 "Off by one: review i is still running at step t when t < lengths[i] (steps count from 0)."),
            ]
            hint = first_matching_mistake(sizes, hints, lambda a, b: a == b) or (
                "batch_sizes[t] = how many reviews are longer than t, for t = 0 .. max(lengths) - 1.")
            raise AssertionError(f"batch_sizes is {sizes}, expected {want_sizes} ({where}). {hint}")
        order = _as_int_list(got[2], "sorted_indices (the third value)")
        if sorted(order) != list(range(len(lengths))):
            hint = ("These are the sorted LENGTHS: torch.sort returns (values, indices), keep the indices."
                    if order == sorted(lengths.tolist(), reverse=True) else
                    "sorted_indices lists every review's index once, longest review first.")
            raise AssertionError(f"sorted_indices is {order} ({where}). {hint}")
        if [int(lengths[i]) for i in order] != sorted(lengths.tolist(), reverse=True):
            hint = ("That is the shortest review first: packing sorts from LONGEST to shortest (descending=True)."
                    if [int(lengths[i]) for i in order] == sorted(lengths.tolist()) else
                    "The reviews must come from longest to shortest.")
            raise AssertionError(f"sorted_indices is {order}, which gives lengths "
                                 f"{[int(lengths[i]) for i in order]} ({where}). {hint}")
        data = result_on(got[0], device, "data (the first value pack_by_hand returns)")
        expected = _time_major(padded, order, want_sizes)
        if order == reference.sorted_indices.tolist():
            assert torch.equal(expected, reference.data)  # the oracle's own definition, checked
        if data.shape == expected.shape and torch.equal(data, expected):
            continue
        mistakes = [
            (lambda: torch.cat([padded[i, :int(lengths[i])] for i in order]),
             "data is stored review by review: packing is TIME-major, step 0 of every review (longest "
             "first), then step 1 of the reviews still running, and so on."),
            (lambda: torch.cat([padded[lengths > t, t] for t in range(len(want_sizes))]),
             "At each step the rows follow the batch's order: they must follow sorted_indices (longest first)."),
            (lambda: padded.transpose(0, 1)[:, order].reshape(-1, padded.size(2)),
             "data holds padded steps too: it has only the real ones, sum(lengths) rows."),
        ]
        hint = first_matching_mistake(data, mistakes, lambda a, b: a.shape == b.shape and torch.equal(a, b))
        raise AssertionError(f"data differs from pack_padded_sequence's ({where}; data has shape "
                             f"{tuple(data.shape)}, expected {tuple(expected.shape)}). "
                             f"{hint or 'Row block t holds padded[sorted_indices[:batch_sizes[t]], t].'}")
    success("pack_by_hand gives pack_padded_sequence's data, batch_sizes and sorted order "
            "(ties, extra padding and random batches).")


def _layer_like(cell: nn.RNNCellBase) -> nn.RNNBase:
    """The nn.GRU / nn.RNN that runs ``cell`` over a sequence, with the same weights."""
    kind = nn.GRU if isinstance(cell, nn.GRUCell) else nn.RNN
    layer = kind(cell.input_size, cell.hidden_size, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, f"{name}_l0").copy_(getattr(cell, name))
    return layer


def check_packed_final_states(final_states: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``final_states(cell, packed) -> (batch, hidden)``: run ``cell`` (an ``nn.GRUCell`` or
    ``nn.RNNCell``, ``h = cell(x, h)``) over a ``PackedSequence`` as a recurrent layer does (step t
    updates the first ``batch_sizes[t]`` sorted reviews, from zero states) and return each review's
    state after its last token, in the batch's ORIGINAL order.

    The oracle is PyTorch: ``nn.GRU`` / ``nn.RNN`` with the cell's weights, run on the packed batch.
    """
    device = resolve_device(device)
    for trial, (padded, lengths) in enumerate(_packing_cases(seed + 1)):
        with seeded(seed * 10 + trial):
            cell = randomize((nn.GRUCell, nn.RNNCell)[trial % 2](padded.size(2), int(torch.randint(2, 5, ()))))
            layer = _layer_like(cell)
        packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        with torch.no_grad():
            expected = layer(packed)[1][0]
            sorted_states = expected[packed.sorted_indices]
            running_on = layer(padded.masked_fill(~padding_mask(lengths, padded.size(1)).unsqueeze(2), 0))[1][0]
        student_cell = copy.deepcopy(cell).to(device)
        given = pack_padded_sequence(padded.to(device), lengths, batch_first=True, enforce_sorted=False)
        with _refusing_packing("final_states"), torch.no_grad():
            got = call_student(final_states, student_cell, given, name="final_states")
        got = result_on(got, device, "the result of final_states")
        kind = type(cell).__name__
        where = f"({kind}, lengths {lengths.tolist()}, sorted_indices {packed.sorted_indices.tolist()})"
        if is_close(got, expected):
            continue
        mistakes = [
            (lambda: sorted_states, "The states are in the SORTED order (longest review first): put them back "
                                    "in the batch's order with packed.unsorted_indices."),
            (lambda: sorted_states[packed.sorted_indices],
             "Indexing with sorted_indices sorts a second time: its inverse is packed.unsorted_indices."),
            (lambda: running_on, "The finished reviews kept being updated after their last token (as on a "
                                 "padded batch): at step t update only the first batch_sizes[t] rows."),
            (lambda: sorted_states[:packed.batch_sizes[-1]], "Only the reviews still running at the last step "
                                                            "are returned: keep every review's state."),
        ]
        hint = first_matching_mistake(got, mistakes) or (
            f"Expected shape {tuple(expected.shape)}: start from zeros of shape (batch, hidden), at step t run "
            "the cell on the next batch_sizes[t] rows of data and the first batch_sizes[t] states.")
        raise AssertionError(f"final_states differs from PyTorch's packed {kind[:-4]} {where}. {hint}")
    success("final_states runs the cell over the packed batch as nn.GRU / nn.RNN do (sorted steps, "
            "shrinking batches, original order restored).")


# ----------------------------------------------------------------------------------------------
# Lesson 4, exercise 4: a length-bucketing batch sampler
# ----------------------------------------------------------------------------------------------
def _sampler_lengths(seed: int, n: int) -> list[int]:
    """Review-like lengths: skewed, a few very long ones (as IMDb's)."""
    rng = random.Random(seed)
    return [max(3, int(rng.lognormvariate(5.0, 0.7))) for _ in range(n)]


def _padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    cells = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / cells


@contextlib.contextmanager
def _global_random_watch(found: list[str]) -> Iterator[None]:
    """Run a block with the global random generators restored afterwards; name those it used."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch_state = torch.get_rng_state()
        try:
            yield
        finally:
            if not torch.equal(torch.get_rng_state(), torch_state):
                found.append("torch's global generator (torch.randperm without generator=, torch.manual_seed)")
            if random.getstate() != python_state:
                found.append("Python's global `random` module")
            if not np.array_equal(np.random.get_state()[1], numpy_state[1]):
                found.append("NumPy's global generator")
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _epochs(sampler_class: Callable, lengths: list[int], batch_size: int, seed: int) -> tuple[list, int]:
    """Two epochs of a fresh sampler and its ``len``; the global random generators are checked untouched."""
    used: list[str] = []
    with _global_random_watch(used):
        sampler = call_student(sampler_class, list(lengths), batch_size, seed=seed, name="BucketBatchSampler(...)")
        epochs = [[_as_int_list(b, "each batch the sampler yields")
                   for b in call_student(lambda: list(iter(sampler)), name="iter(sampler)")] for _ in range(2)]
        length = call_student(lambda: len(sampler), name="len(sampler)")
    if used:
        raise AssertionError(f"The sampler draws from {used[0]}: then `seed` does not make it repeatable and "
                             "it changes every other random draw of the notebook. Give it its own generator: "
                             "torch.Generator().manual_seed(seed) (or random.Random(seed)).")
    return epochs, length


def check_bucket_sampler(sampler_class: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``sampler_class(lengths, batch_size, seed=...)``, a batch sampler for a DataLoader.

    Every epoch (each ``iter``) yields lists of indices such that: every index appears exactly once;
    batches hold at most ``batch_size`` indices and there are at most 10% more batches than
    ``ceil(n / batch_size)``; the padding share is under half of that of random batches; the
    batches change from epoch to epoch (at least a quarter of them) and do not come in order of
    length (shortest first or longest first); the same seed gives the same epochs, another seed other ones; the global random
    generators are not used. ``device`` is not used (a sampler deals in indices only).
    """
    for n, batch_size in ((1000, 16), (517, 10)):
        lengths = _sampler_lengths(seed * 7 + n, n)
        epochs, length = _epochs(sampler_class, lengths, batch_size, seed)
        setup = f"(n = {n} reviews, batch_size = {batch_size})"
        for epoch in epochs:
            seen = sorted(i for batch in epoch for i in batch)
            if seen != list(range(n)):
                missing = sorted(set(range(n)) - set(seen))
                twice = sorted({i for i in seen if seen.count(i) > 1}) if len(seen) != len(set(seen)) else []
                hint = (f"index {twice[0]} appears {seen.count(twice[0])} times" if twice else
                        f"{len(missing)} indices are missing (e.g. {missing[:3]}): yield the last, shorter batch "
                        "of each pool too" if missing else "some indices are out of range")
                raise AssertionError(f"An epoch must yield every index 0 .. n-1 exactly once {setup}: {hint}.")
            biggest = max(len(batch) for batch in epoch)
            if biggest > batch_size:
                raise AssertionError(f"A batch holds {biggest} indices, more than batch_size {setup}.")
            if len(epoch) > 1.1 * math.ceil(n / batch_size):
                raise AssertionError(f"An epoch has {len(epoch)} batches {setup}, more than 10% above "
                                     f"ceil(n / batch_size) = {math.ceil(n / batch_size)}: cut each sorted pool "
                                     "into full batches (only the last batch of a pool may be shorter).")
        if length != len(epochs[0]):
            raise AssertionError(f"len(sampler) is {length}, but an epoch yields {len(epochs[0])} batches {setup}: "
                                 "__len__ must give the number of batches per epoch (the DataLoader relies on it).")
        order = torch.randperm(n, generator=generator(seed)).tolist()
        random_share = _padding_share([order[i:i + batch_size] for i in range(0, n, batch_size)], lengths)
        share = _padding_share(epochs[0], lengths)
        if share > random_share / 2:
            raise AssertionError(f"The batches are {share:.0%} padding, random batches {random_share:.0%} {setup}: "
                                 "sort each pool of indices by length before cutting it into batches (pools of "
                                 "about 50 batches, as in the lesson).")
        first = {frozenset(batch) for batch in epochs[0]}
        if sum(frozenset(batch) not in first for batch in epochs[1]) < len(epochs[1]) / 4:
            raise AssertionError(f"The two epochs have (almost) the same batches {setup}: shuffle the indices at "
                                 "the start of every epoch (in __iter__, not once in __init__), so that reviews "
                                 "meet other neighbours; only sorting the whole data set gives fixed batches.")
        longest = [max(lengths[i] for i in batch) for batch in epochs[0]]
        pairs = list(zip(longest, longest[1:]))
        for first_in_line, in_order in (("shortest", lambda a, b: a <= b), ("longest", lambda a, b: a >= b)):
            if sum(in_order(a, b) for a, b in pairs) > 0.9 * len(pairs):  # sorted pools, never shuffled
                raise AssertionError(
                    f"The batches come in order of length, {first_in_line} first {setup}: shuffle the order of "
                    f"the batches too (after cutting the sorted pools), or the model sees the {first_in_line} "
                    "reviews first in every epoch, and the batches in a fixed order of length.")
        if _epochs(sampler_class, lengths, batch_size, seed)[0] != epochs:
            raise AssertionError(f"Two samplers made with the same seed gave different batches {setup}: draw "
                                 "every random number from a generator made from `seed` in __init__.")
        if _epochs(sampler_class, lengths, batch_size, seed + 1)[0] == epochs:
            raise AssertionError(f"Samplers made with seeds {seed} and {seed + 1} gave the same batches {setup}: "
                                 "seed your generator with `seed`.")
    success(f"BucketBatchSampler: every index once per epoch, full batches, {share:.0%} padding instead of "
            f"{random_share:.0%}, new batches each epoch, repeatable from the seed.")


# ----------------------------------------------------------------------------------------------
# Lesson 4, exercises 5 and 6: gathering and reversing within each length
# ----------------------------------------------------------------------------------------------
def _padded_case(seed: int, features: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """A (batch, time, features) tensor with GARBAGE (not zeros) at the padded steps, and lengths.

    One review fills the whole time axis, one has length 1, the others are random.
    """
    g = generator(seed)
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


def _check_gradient(fn: Callable, name: str, x: Tensor, lengths: Tensor, oracle: Callable, device: Device) -> None:
    """The student's result must be differentiable with respect to ``x``, with the oracle's gradient."""
    leaf = x.to(device).requires_grad_(True)
    got = call_student(fn, leaf, lengths.clone(), name=name)
    if not isinstance(got, Tensor) or not got.requires_grad:
        raise AssertionError(
            f"{name} gives the right values but no gradient flows back to `output`: do not use "
            ".detach(), .item(), .tolist(), .numpy() or torch.no_grad() inside it.")
    weights = torch.randn(got.shape, generator=generator(7))
    (grad,) = torch.autograd.grad((got * weights.to(got.device)).sum(), leaf, allow_unused=True)
    reference = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((oracle(reference, lengths) * weights).sum(), reference)
    if grad is None or not is_close(grad.cpu(), expected):
        raise AssertionError(
            f"{name} gives the right values but the wrong gradient: part of the computation is cut "
            "from the autograd graph (.detach(), .data, or a tensor rebuilt from numbers).")


def _check_tensor_function(fn: Callable, name: str, oracle: Callable, variants: Callable,
                           seed: int, trials: int, device: Device, default_hint: str, index_error_hint: str = "") -> None:
    """Run ``fn(x, lengths)`` on random padded batches (``x`` on ``device``), compare with ``oracle``,
    name the first matching mistake of ``variants(x, lengths)``; then check the gradient."""
    device = resolve_device(device)
    for trial in range(trials):
        x, lengths = _padded_case(seed * 100 + trial)
        x_in, lengths_in = x.to(device, copy=True), lengths.clone()
        try:
            got = call_student(fn, x_in, lengths_in, name=name)
        except StudentCodeError as error:
            if index_error_hint and "out of bounds" in str(error):
                raise StudentCodeError(f"{error} {index_error_hint}") from None
            raise
        got = result_on(got, device, f"the result of {name}")
        _check_untouched(name, x_in.cpu(), x, lengths_in, lengths)
        expected = oracle(x, lengths)
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
    _check_gradient(fn, name, *_padded_case(seed * 100 + 99), oracle, device)


def check_last_real_output(last_real_output_fn: Callable, seed: int = 0, trials: int = 4,
                           device: Device = None) -> None:
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
    _check_tensor_function(last_real_output_fn, "last_real_output", last_real_output, variants, seed, trials, device,
                           "Row i must be output[i, lengths[i] - 1].",
                           index_error_hint="(Here a review fills the whole time axis: its last real step "
                                            "is lengths[i] - 1, steps count from 0.)")
    success(f"last_real_output picks each review's last real step in {trials} random batches "
            "(and lets gradients through).")


def check_reverse_within_length(reverse_fn: Callable, seed: int = 0, trials: int = 4,
                                device: Device = None) -> None:
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
    _check_tensor_function(reverse_fn, "reverse_within_length", reverse_within_length, variants, seed, trials, device,
                           "Row i must be torch.cat([x[i, :n].flip(0), x[i, n:]]) with n = lengths[i].")
    success(f"reverse_within_length reverses each review within its length in {trials} random batches "
            "(and lets gradients through).")
