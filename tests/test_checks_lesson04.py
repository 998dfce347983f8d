"""The checkers of lesson 4 (padding and packing; course_utils/checks/lesson04.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations


import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_collate,
    check_collate_truncate,
    check_last_real_output,
    check_masked_mean,
    check_reverse_within_length,
)




SEEDS = [0, 1, 2, 11]


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


def test_collate_accepts_the_right_answer(capsys):
    for seed in SEEDS:
        check_collate(collate, seed=seed)
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
    (lambda batch: collate(batch)[:2], ["triple"]),
    (not_implemented, ["not implemented yet"]),
])
def test_collate_rejects_mistakes(broken, fragments):
    rejects(check_collate, broken, *fragments)


def collate_truncate(batch, max_len):
    return collate([(ids[:max_len], label) for ids, label in batch])


def test_collate_truncate_accepts_the_right_answer(capsys):
    for seed in SEEDS:
        check_collate_truncate(collate_truncate, seed=seed)
    assert "collate_truncate cuts and pads" in capsys.readouterr().out


def lengths_before_cutting(batch, max_len):
    ids, labels, _ = collate_truncate(batch, max_len)
    return ids, labels, torch.tensor([len(i) for i, _ in batch])


def pads_to_max_len(batch, max_len):
    ids, labels, lengths = collate_truncate(batch, max_len)
    return torch.nn.functional.pad(ids, (0, max_len - ids.size(1))), labels, lengths


@pytest.mark.parametrize("broken, fragments", [
    (lengths_before_cutting, ["AFTER cutting"]),
    (lambda batch, max_len: collate([(ids[-max_len:], y) for ids, y in batch]), ["LAST max_len tokens"]),
    (pads_to_max_len, ["not to max_len"]),
    (lambda batch, max_len: collate([(ids[:max_len - 1], y) for ids, y in batch]), ["max_len - 1"]),
    (lambda batch, max_len: collate(batch), ["not cut"]),
    (lambda batch, max_len: make_collate(side="left")([(ids[:max_len], y) for ids, y in batch]), ["on the left"]),
    (lambda batch, max_len: make_collate(label_dtype=torch.long)([(ids[:max_len], y) for ids, y in batch]),
     ["float32"]),
    (not_implemented, ["not implemented yet"]),
])
def test_collate_truncate_rejects_mistakes(broken, fragments):
    rejects(check_collate_truncate, broken, *fragments)


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


def masked_mean(output, lengths):
    mask = (torch.arange(output.size(1)) < lengths.unsqueeze(1)).unsqueeze(2)
    return (output * mask).sum(1) / lengths.unsqueeze(1)


def test_masked_mean_accepts_right_answers(capsys):
    for seed in SEEDS:
        check_masked_mean(masked_mean, seed=seed)
    check_masked_mean(lambda out, n: torch.stack([out[i, :k].mean(0) for i, k in enumerate(n)]))
    check_masked_mean(lambda out, n: out.masked_fill(
        (torch.arange(out.size(1)) >= n.unsqueeze(1)).unsqueeze(2), 0).sum(1) / n.unsqueeze(1))
    assert "masked_mean averages" in capsys.readouterr().out


def make_masked_mean(*, use_mask=True, divide="lengths", off_by_one=False):
    def broken(output, lengths):
        limit = lengths + 1 if off_by_one else lengths
        mask = (torch.arange(output.size(1)) < limit.unsqueeze(1)).unsqueeze(2)
        total = (output * mask).sum(1) if use_mask else output.sum(1)
        if divide == "lengths":
            return total / lengths.unsqueeze(1)
        if divide == "time":
            return total / output.size(1)
        return total
    return broken


@pytest.mark.parametrize("broken, fragments", [
    (lambda out, n: out.mean(1), ["ALL steps"]),
    (make_masked_mean(use_mask=False), ["summed too"]),
    (make_masked_mean(divide="time"), ["each review's own length"]),
    (make_masked_mean(divide="none"), ["This is a sum"]),
    (make_masked_mean(off_by_one=True), ["Off by one"]),
    (lambda out, n: (out * (torch.arange(out.size(1)) < n.unsqueeze(1)).unsqueeze(2)).mean(0), ["BATCH"]),
    (lambda out, n: masked_mean(out, n).detach(), ["no gradient flows"]),
    (lambda out, n: masked_mean(out.detach(), n) + 0 * out.sum(), ["wrong gradient"]),
    (not_implemented, ["not implemented yet"]),
])
def test_masked_mean_rejects_mistakes(broken, fragments):
    rejects(check_masked_mean, broken, *fragments)


def reverse_within_length(x, lengths):
    steps = torch.arange(x.size(1)).expand(x.size(0), -1)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


def reverse_loop(x, lengths):
    rows = [torch.cat([x[i, :n].flip(0), x[i, n:]]) for i, n in enumerate(lengths.tolist())]
    return torch.stack(rows)


def test_reverse_accepts_right_answers(capsys):
    for seed in SEEDS:
        check_reverse_within_length(reverse_within_length, seed=seed)
        check_reverse_within_length(reverse_loop, seed=seed)
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
