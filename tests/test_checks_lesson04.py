"""The checkers of lesson 4 (padding and packing; course_utils/checks/lesson04.py) accept right
answers written in several ways and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
The device tests run the checkers with ``device="meta"``: the student's function must receive its
tensors there (no GPU is needed to show that the checkers follow the notebook's device).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from checker_testing import not_implemented, rejects
from course_utils.batching import BucketBatchSampler as CourseSampler
from course_utils.batching import padding_mask
from course_utils.checks import (
    check_bucket_sampler,
    check_collate,
    check_last_real_output,
    check_pack_by_hand,
    check_packed_final_states,
    check_reverse_within_length,
)

SEEDS = [0, 1, 2, 11]


# ----------------------------------------------------------------------------------------------
# pack_by_hand
# ----------------------------------------------------------------------------------------------
def pack_by_hand(padded, lengths):
    _, order = torch.sort(lengths, descending=True)
    batch_sizes = torch.tensor([int((lengths > t).sum()) for t in range(int(lengths.max()))])
    data = torch.cat([padded[order[:n], t] for t, n in enumerate(batch_sizes.tolist())])
    return data, batch_sizes, order


def pack_by_hand_mask(padded, lengths):  # vectorised: a boolean mask, read time-major
    order = torch.argsort(lengths, descending=True, stable=True)
    steps = torch.arange(int(lengths.max()))
    batch_sizes = (lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1)
    mask = padding_mask(lengths[order], int(lengths.max())).T.to(padded.device)  # (time, batch)
    data = padded[order.to(padded.device), :int(lengths.max())].transpose(0, 1)[mask]
    return data, batch_sizes, order


def pack_by_hand_lists(padded, lengths):  # plain Python lists for the two index results
    n = lengths.tolist()
    order = sorted(range(len(n)), key=lambda i: -n[i])
    batch_sizes = [sum(k > t for k in n) for t in range(max(n))]
    rows = [padded[i, t] for t in range(max(n)) for i in order if n[i] > t]
    return torch.stack(rows), batch_sizes, order


@pytest.mark.parametrize("fn", [pack_by_hand, pack_by_hand_mask, pack_by_hand_lists])
def test_pack_by_hand_accepts_right_answers(fn, capsys):
    for seed in SEEDS:
        check_pack_by_hand(fn, seed=seed)
    assert "pack_by_hand gives" in capsys.readouterr().out


def pack_variant(mistake):
    def broken(padded, lengths):
        data, batch_sizes, order = pack_by_hand(padded, lengths)
        if mistake == "ascending":
            order = torch.sort(lengths, stable=True).indices
            data = torch.cat([padded[order[order.numel() - n:], t] for t, n in enumerate(batch_sizes.tolist())])
        elif mistake == "values":
            order = torch.sort(lengths, descending=True).values
        elif mistake == "all_steps":
            batch_sizes = torch.tensor([int((lengths > t).sum()) for t in range(padded.size(1))])
        elif mistake == "lengths":
            batch_sizes = torch.sort(lengths, descending=True).values
        elif mistake == "off_by_one":
            batch_sizes = torch.tensor([int((lengths >= t).sum()) for t in range(int(lengths.max()))])
        elif mistake == "review_major":
            data = torch.cat([padded[i, :int(lengths[i])] for i in order.tolist()])
        elif mistake == "batch_order":
            data = torch.cat([padded[lengths > t, t] for t in range(len(batch_sizes))])
        elif mistake == "with_padding":
            data = padded.transpose(0, 1)[:, order].reshape(-1, padded.size(2))
        return data, batch_sizes, order
    return broken


@pytest.mark.parametrize("broken, fragments", [
    (pack_variant("ascending"), ["shortest review first", "descending=True"]),
    (pack_variant("values"), ["sorted LENGTHS"]),
    (pack_variant("all_steps"), ["stops at the longest review"]),
    (pack_variant("lengths"), ["These are the lengths"]),
    (pack_variant("off_by_one"), ["Off by one"]),
    (pack_variant("review_major"), ["TIME-major"]),
    (pack_variant("batch_order"), ["follow sorted_indices"]),
    (pack_variant("with_padding"), ["padded steps too"]),
    (lambda padded, lengths: tuple(pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False))[:3],
     ["may not call pack_padded_sequence"]),
    (lambda padded, lengths: pack_by_hand(padded, lengths)[:2], ["should return (data, batch_sizes, sorted_indices)"]),
    (not_implemented, ["not implemented yet"]),
])
def test_pack_by_hand_rejects_mistakes(broken, fragments):
    rejects(check_pack_by_hand, broken, *fragments)


# ----------------------------------------------------------------------------------------------
# final states of a packed run
# ----------------------------------------------------------------------------------------------
def final_states(cell, packed):
    h = torch.zeros(len(packed.sorted_indices), cell.hidden_size, device=packed.data.device)
    start = 0
    for n in packed.batch_sizes.tolist():
        h = torch.cat([cell(packed.data[start:start + n], h[:n]), h[n:]])
        start += n
    return h[packed.unsorted_indices]


def final_states_in_place(cell, packed):  # index assignment, unsorted with argsort
    h = packed.data.new_zeros(len(packed.sorted_indices), cell.hidden_size)
    for t, chunk in enumerate(packed.data.split(packed.batch_sizes.tolist())):
        h = h.clone()
        h[:len(chunk)] = cell(chunk, h[:len(chunk)])
    return h[torch.argsort(packed.sorted_indices)]


def final_states_scatter(cell, packed):  # each review's state kept when it ends, written to its own row
    batch = len(packed.sorted_indices)
    result = packed.data.new_empty(batch, cell.hidden_size)
    h, start = None, 0
    sizes = packed.batch_sizes.tolist() + [0]
    for t, n in enumerate(sizes[:-1]):
        h = cell(packed.data[start:start + n], None if h is None else h[:n])
        start += n
        for j in range(sizes[t + 1], n):  # the sorted reviews j that end at step t
            result[packed.sorted_indices[j]] = h[j]
    return result


@pytest.mark.parametrize("fn", [final_states, final_states_in_place, final_states_scatter])
def test_final_states_accepts_right_answers(fn, capsys):
    for seed in SEEDS:
        check_packed_final_states(fn, seed=seed)
    assert "final_states runs the cell" in capsys.readouterr().out


def final_states_variant(mistake):
    def broken(cell, packed):
        batch = len(packed.sorted_indices)
        h = torch.zeros(batch, cell.hidden_size)
        start = 0
        for t, n in enumerate(packed.batch_sizes.tolist()):
            x = packed.data[start:start + n]
            if mistake == "keeps_running":
                h = cell(torch.cat([x, x.new_zeros(batch - n, x.size(1))]), h)
            elif mistake == "drops_finished":
                h = cell(x, h[:n])
            else:
                h = torch.cat([cell(x, h[:n]), h[n:]])
            start += n
        if mistake == "keeps_running":
            return h[packed.unsorted_indices]
        return h[packed.sorted_indices] if mistake == "sorted_again" else h
    return broken


def final_states_with_gru(cell, packed):
    gru = nn.GRU(cell.input_size, cell.hidden_size)
    return gru(packed)[1][0][packed.unsorted_indices]


@pytest.mark.parametrize("broken, fragments", [
    (final_states_variant("sorted"), ["SORTED order", "unsorted_indices"]),
    (final_states_variant("sorted_again"), ["sorts a second time"]),
    (final_states_variant("keeps_running"), ["kept being updated", "batch_sizes[t]"]),
    (final_states_variant("drops_finished"), ["Only the reviews still running"]),
    (final_states_with_gru, ["may not call pack_padded_sequence or build nn.RNN"]),
    (lambda cell, packed: final_states(cell, packed) * 2, ["differs from PyTorch's packed"]),
    (not_implemented, ["not implemented yet"]),
])
def test_final_states_rejects_mistakes(broken, fragments):
    rejects(check_packed_final_states, broken, *fragments)


# ----------------------------------------------------------------------------------------------
# bucketing sampler
# ----------------------------------------------------------------------------------------------
class PoolSampler(torch.utils.data.Sampler):
    """The lesson's way: shuffle, sort pools of 50 batches, cut, shuffle the batches."""

    def __init__(self, lengths, batch_size, seed=0):
        self.lengths, self.batch_size, self.pool = list(lengths), batch_size, 50 * batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def batches(self, order):
        batches = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start:start + self.pool], key=lambda i: self.lengths[i])
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        return batches

    def __iter__(self):
        batches = self.batches(torch.randperm(len(self.lengths), generator=self.generator).tolist())
        return iter([batches[i] for i in torch.randperm(len(batches), generator=self.generator)])

    def __len__(self):
        return len(self.batches(list(range(len(self.lengths)))))


class NoisySortSampler(torch.utils.data.Sampler):
    """Another right answer: sort everything by a jittered length (random.Random), shuffle the batches."""

    def __init__(self, lengths, batch_size, seed=0):
        self.lengths, self.batch_size, self.rng = list(lengths), batch_size, random.Random(seed)

    def __iter__(self):
        keys = [n * self.rng.uniform(0.9, 1.1) for n in self.lengths]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        self.rng.shuffle(batches)
        yield from batches

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)


class NumpySampler(PoolSampler):
    """A third: NumPy's own seeded Generator, batches as NumPy arrays' tolist / tuples."""

    def __init__(self, lengths, batch_size, seed=0):
        super().__init__(lengths, batch_size)
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        batches = self.batches(self.rng.permutation(len(self.lengths)).tolist())
        return (tuple(batches[i]) for i in self.rng.permutation(len(batches)))


@pytest.mark.parametrize("sampler", [PoolSampler, NoisySortSampler, NumpySampler,
                                     lambda lengths, batch_size, seed: CourseSampler(lengths, batch_size, seed=seed)])
def test_bucket_sampler_accepts_right_answers(sampler, capsys):
    for seed in SEEDS[:2]:
        check_bucket_sampler(sampler, seed=seed)
    assert "BucketBatchSampler: every index once" in capsys.readouterr().out


def sampler_variant(mistake):
    class Broken(PoolSampler):
        def __init__(self, lengths, batch_size, seed=0):
            super().__init__(lengths, batch_size, seed)
            self.seed = seed
            if mistake == "ignores_seed":
                self.generator = torch.Generator().manual_seed(0)
            if mistake == "sorted_once":
                order = sorted(range(len(self.lengths)), key=self.lengths.__getitem__)
                self.fixed = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

        def __iter__(self):
            n = len(self.lengths)
            if mistake == "sorted_once":
                return iter([self.fixed[i] for i in torch.randperm(len(self.fixed), generator=self.generator)])
            if mistake == "reseeded":
                self.generator.manual_seed(self.seed)
            order = (torch.randperm(n) if mistake == "global_torch" else
                     torch.randperm(n, generator=self.generator)).tolist()
            if mistake == "global_random":
                random.shuffle(order)
            if mistake == "no_sort":
                batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
            else:
                batches = self.batches(order)
            if mistake == "drop_last":
                batches = [b for b in batches if len(b) == self.batch_size]
            if mistake == "singletons":
                batches = [[i] for b in batches for i in b]
            if mistake == "length_order":
                return iter(sorted(batches, key=lambda b: max(self.lengths[i] for i in b)))
            return iter([batches[i] for i in torch.randperm(len(batches), generator=self.generator)])

        def __len__(self):
            return super().__len__() + (1 if mistake == "bad_len" else 0)
    return Broken


@pytest.mark.parametrize("mistake, fragments", [
    ("no_sort", ["padding", "sort each pool"]),
    ("sorted_once", ["same batches", "in __iter__"]),
    ("reseeded", ["same batches"]),
    ("length_order", ["order of length"]),
    ("global_torch", ["torch's global generator"]),
    ("global_random", ["Python's global `random`"]),
    ("drop_last", ["missing", "last, shorter batch"]),
    ("singletons", ["more than 10% above"]),
    ("bad_len", ["len(sampler)"]),
    ("ignores_seed", ["seeds 0 and 1 gave the same"]),
])
def test_bucket_sampler_rejects_mistakes(mistake, fragments):
    rejects(check_bucket_sampler, sampler_variant(mistake), *fragments)


class PoolsInLengthOrder(PoolSampler):
    """Held out in issue 20: each pool sorted (longest first by default), the batches never shuffled."""

    longest_first = True

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start:start + self.pool], key=lambda i: self.lengths[i], reverse=self.longest_first)
            for i in range(0, len(pool), self.batch_size):
                yield pool[i:i + self.batch_size]


class PoolsShortestFirst(PoolsInLengthOrder):
    longest_first = False


@pytest.mark.parametrize("sampler, first", [(PoolsInLengthOrder, "longest first"),
                                            (PoolsShortestFirst, "shortest first")])
def test_bucket_sampler_catches_batches_in_order_of_length_both_ways(sampler, first):
    rejects(check_bucket_sampler, sampler, "order of length", first, "shuffle the order of the batches")


def test_bucket_sampler_rejects_duplicates_and_oversized_batches():
    class Twice(PoolSampler):
        def __iter__(self):
            batches = list(super().__iter__())
            return iter(batches + [batches[0][:1]])

        def __len__(self):
            return super().__len__() + 1

    class Big(PoolSampler):
        def __init__(self, lengths, batch_size, seed=0):
            super().__init__(lengths, batch_size + 1, seed)
    rejects(check_bucket_sampler, Twice, "appears 2 times")
    rejects(check_bucket_sampler, Big, "more than batch_size")
    rejects(check_bucket_sampler, not_implemented, "not implemented yet")


def test_bucket_sampler_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    random.seed(3)
    expected = torch.rand(1), random.random()
    torch.manual_seed(3)
    random.seed(3)
    with pytest.raises(AssertionError):
        check_bucket_sampler(sampler_variant("global_torch"))
    check_bucket_sampler(PoolSampler)
    assert (torch.rand(1), random.random()) == expected


# ----------------------------------------------------------------------------------------------
# collate and collate_truncate
# ----------------------------------------------------------------------------------------------
def collate(batch):
    sequences = [torch.tensor(ids, dtype=torch.long) for ids, _ in batch]
    ids = pad_sequence(sequences, batch_first=True, padding_value=0)
    labels = torch.tensor([label for _, label in batch], dtype=torch.float)
    lengths = torch.tensor([len(s) for s in sequences])
    return ids, labels, lengths


def make_collate(*, side="right", value=0, batch_first=True, label_dtype=torch.float, lengths="true",
                 sort=False, lengths_type="tensor", ids_dtype=torch.long):
    def broken(batch):
        if sort:
            batch = sorted(batch, key=lambda b: len(b[0]), reverse=True)
        sequences = [torch.tensor(ids, dtype=ids_dtype) for ids, _ in batch]
        if side == "left":
            longest = max(len(s) for s in sequences)
            ids = torch.stack([torch.cat([torch.full((longest - len(s),), value, dtype=ids_dtype), s])
                               for s in sequences])
        else:
            ids = pad_sequence(sequences, batch_first=batch_first, padding_value=value)
        labels = torch.tensor([label for _, label in batch], dtype=label_dtype)
        if lengths == "true":
            n = [len(s) for s in sequences]
        elif lengths == "padded":
            n = [ids.size(1)] * len(sequences)
        else:
            n = [len(s) - 1 for s in sequences]
        return ids, labels, (torch.tensor(n) if lengths_type == "tensor" else n)
    return broken


def collate_zeros(batch):  # a zero tensor filled row by row
    longest = max(len(ids) for ids, _ in batch)
    ids = torch.zeros(len(batch), longest, dtype=torch.long)
    for i, (row, _) in enumerate(batch):
        ids[i, :len(row)] = torch.tensor(row)
    return ids, torch.tensor([y for _, y in batch]).float(), torch.tensor([len(r) for r, _ in batch])


def collate_f_pad(batch):  # nn.functional.pad on each review, then stack
    longest = max(len(ids) for ids, _ in batch)
    ids = torch.stack([nn.functional.pad(torch.tensor(r), (0, longest - len(r))) for r, _ in batch])
    return ids, torch.tensor([float(y) for _, y in batch]), torch.tensor([len(r) for r, _ in batch], dtype=torch.int64)


@pytest.mark.parametrize("fn", [collate, collate_zeros, collate_f_pad])
def test_collate_accepts_right_answers(fn, capsys):
    for seed in SEEDS:
        check_collate(fn, seed=seed)
    assert "collate pads, labels and measures" in capsys.readouterr().out


@pytest.mark.parametrize("broken, fragments", [
    (make_collate(side="left"), ["on the left"]),
    (make_collate(value=1), ["padding value is 1"]),
    (make_collate(batch_first=False), ["batch_first=True"]),
    (make_collate(label_dtype=torch.long), ["float32"]),
    (make_collate(lengths="padded"), ["TRUE length"]),
    (make_collate(lengths="minus_one"), ["one too small"]),
    (make_collate(sort=True), ["sorted by length"]),
    (make_collate(lengths_type="list"), ["lengths", "torch.Tensor"]),
    (make_collate(ids_dtype=torch.float), ["int64"]),
    (lambda batch: (*collate(batch)[:2], collate(batch)[2].int()), ["lengths is torch.int32", "int64"]),
    (lambda batch: (*collate(batch)[:2], collate(batch)[2].to("meta")), ["lengths is on meta", "keep it on the CPU"]),
    (lambda batch: collate(batch)[:2], ["triple"]),
    (not_implemented, ["not implemented yet"]),
])
def test_collate_rejects_mistakes(broken, fragments):
    rejects(check_collate, broken, *fragments)


def test_collates_must_not_change_the_batch():
    def pops(batch):
        result = collate(batch)
        batch[0][0].append(99)
        return result
    rejects(check_collate, pops, "changed the batch")


# ----------------------------------------------------------------------------------------------
# last_real_output, masked_mean, reverse_within_length
# ----------------------------------------------------------------------------------------------
def last_real_output(output, lengths):
    return output[torch.arange(output.size(0)), lengths - 1]


def last_real_output_gather(output, lengths):
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, output.size(2))
    return output.gather(1, index).squeeze(1)


def test_last_real_output_accepts_right_answers(capsys):
    for seed in SEEDS:
        check_last_real_output(last_real_output, seed=seed)
        check_last_real_output(last_real_output_gather, seed=seed)
    check_last_real_output(lambda out, n: torch.stack([out[i, int(k) - 1] for i, k in enumerate(n)]))
    assert "last_real_output picks" in capsys.readouterr().out


@pytest.mark.parametrize("broken, fragments", [
    (lambda out, n: out[:, -1], ["LAST TIME STEP"]),
    (lambda out, n: out[torch.arange(out.size(0)), n], ["out of bounds", "lengths[i] - 1"]),
    (lambda out, n: out[torch.arange(out.size(0)), n.clamp(max=out.size(1) - 1)], ["Off by one"]),
    (lambda out, n: out[:, 0], ["FIRST step"]),
    (lambda out, n: out[:, n - 1], ["pair each review with its own step"]),
    (lambda out, n: last_real_output(out, n).unsqueeze(1), ["extra time dimension"]),
    (lambda out, n: last_real_output(out, n).detach(), ["no gradient flows"]),
    (lambda out, n: torch.tensor(last_real_output(out, n).tolist()), ["no gradient flows"]),
    (lambda out, n: out.gather(1, (n - 1).view(-1, 1, 1).expand(-1, 1, out.size(2))), ["extra time dimension"]),
    (not_implemented, ["not implemented yet"]),
])
def test_last_real_output_rejects_mistakes(broken, fragments):
    rejects(check_last_real_output, broken, *fragments)


def reverse_within_length(x, lengths):
    steps = torch.arange(x.size(1)).expand(x.size(0), -1)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


def reverse_loop(x, lengths):
    rows = [torch.cat([x[i, :n].flip(0), x[i, n:]]) for i, n in enumerate(lengths.tolist())]
    return torch.stack(rows)


def reverse_with_index_list(x, lengths):
    """Written differently: one index list per review, then advanced indexing."""
    index = torch.stack([torch.cat([torch.arange(n - 1, -1, -1), torch.arange(n, x.size(1))])
                         for n in lengths.tolist()]).to(x.device)
    return x[torch.arange(x.size(0), device=x.device).unsqueeze(1), index]


def test_reverse_accepts_right_answers(capsys):
    for seed in SEEDS:
        check_reverse_within_length(reverse_within_length, seed=seed)
        check_reverse_within_length(reverse_loop, seed=seed)
        check_reverse_within_length(reverse_with_index_list, seed=seed)
    assert "reverse_within_length reverses" in capsys.readouterr().out


def reverse_in_place(x, lengths):
    for i, n in enumerate(lengths.tolist()):
        x[i, :n] = x[i, :n].flip(0).clone()
    return x


def reverse_zero_padding(x, lengths):
    out = reverse_loop(x, lengths)
    mask = (torch.arange(x.size(1)) < lengths.unsqueeze(1)).unsqueeze(2)
    return out * mask


def reverse_off_by_one(x, lengths):
    steps = torch.arange(x.size(1)).expand(x.size(0), -1)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - steps, steps)
    return x.gather(1, index.clamp(max=x.size(1) - 1).unsqueeze(2).expand_as(x))


def reverse_from_the_end(x, lengths):
    mask = (torch.arange(x.size(1)) < lengths.unsqueeze(1)).unsqueeze(2)
    return torch.where(mask, x.flip(1), x)


@pytest.mark.parametrize("broken, fragments", [
    (lambda x, n: x.flip(1), ["whole time axis"]),
    (reverse_off_by_one, ["Off by one"]),
    (reverse_zero_padding, ["became zeros"]),
    (lambda x, n: x.flip(0), ["batch is reversed"]),
    (reverse_from_the_end, ["from the end of the time axis"]),
    (reverse_in_place, ["in place"]),
    (lambda x, n: reverse_loop(x, n).detach(), ["no gradient flows"]),
    (lambda x, n: reverse_loop(x, n)[:, :-1], ["shape"]),
    (not_implemented, ["not implemented yet"]),
])
def test_reverse_rejects_mistakes(broken, fragments):
    rejects(check_reverse_within_length, broken, *fragments)


# ----------------------------------------------------------------------------------------------
# Devices: the student's function gets its tensors on the requested device
# ----------------------------------------------------------------------------------------------
def spy(seen):
    """A student function that records the devices of its tensor arguments, then gives up."""
    def record(*args):
        for arg in args:
            if isinstance(arg, torch.nn.utils.rnn.PackedSequence):
                seen.append(("packed data", arg.data.device.type))
                seen.append(("batch_sizes", arg.batch_sizes.device.type))
            elif isinstance(arg, nn.Module):
                seen.append(("cell", next(arg.parameters()).device.type))
            elif isinstance(arg, torch.Tensor):
                seen.append(("tensor", arg.device.type))
        raise RuntimeError("spy")
    return record


@pytest.mark.parametrize("checker, expected", [
    (check_pack_by_hand, [("tensor", "meta"), ("tensor", "cpu")]),  # padded on the device, lengths on the CPU
    (check_packed_final_states, [("cell", "meta"), ("packed data", "meta"), ("batch_sizes", "cpu")]),
    (check_last_real_output, [("tensor", "meta"), ("tensor", "cpu")]),
    (check_reverse_within_length, [("tensor", "meta"), ("tensor", "cpu")]),
])
def test_checkers_follow_the_requested_device(checker, expected):
    seen = []
    with pytest.raises(AssertionError, match="spy"):
        checker(spy(seen), device="meta")
    assert seen == expected


def test_checkers_default_to_the_notebooks_device():
    seen = []
    with pytest.raises(AssertionError):
        check_last_real_output(spy(seen))
    assert seen[0] == ("tensor", "cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("checker, answer", [
    (check_pack_by_hand, lambda padded, lengths: (torch.zeros(int(lengths.sum()), padded.size(2)),
                                                  [int((lengths > t).sum()) for t in range(int(lengths.max()))],
                                                  torch.sort(lengths, descending=True).indices)),
    (check_packed_final_states, lambda cell, packed: torch.zeros(len(packed.sorted_indices), cell.hidden_size)),
    (check_last_real_output, lambda output, lengths: torch.zeros(output.size(0), output.size(2))),
    (check_reverse_within_length, lambda x, lengths: torch.zeros(x.shape)),
])
def test_checkers_name_a_result_left_on_the_cpu(checker, answer):
    rejects(lambda fn: checker(fn, device="meta"), answer, "is on the cpu device", "inputs were on meta")
