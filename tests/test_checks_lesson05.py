"""The checkers of lesson 5 (models for sentiment; course_utils/checks/lesson05.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
The device tests run the checkers with ``device="meta"``: the student's code must receive its
tensors (and model) there, so an answer that uses the notebook's ``device`` works on a GPU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.batching import PaddedRNN, masked_max, masked_mean, padding_mask
from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_bidirectional_final_state,
    check_bigru_classifier,
    check_masked_max,
)
from course_utils.text import PAD_INDEX

SEEDS = [0, 1, 7]


# ----------------------------------------------------------------------------------------------
# final state of a bidirectional layer
# ----------------------------------------------------------------------------------------------
def final_state(output, lengths):
    hidden = output.size(2) // 2
    rows = torch.arange(output.size(0), device=output.device)
    forward = output[rows, lengths.to(output.device) - 1, :hidden]
    return torch.cat([forward, output[:, 0, hidden:]], dim=1)


def final_state_gather(output, lengths):  # another right answer: gather, like last_real_output
    hidden = output.size(2) // 2
    index = (lengths.to(output.device) - 1).view(-1, 1, 1).expand(-1, 1, output.size(2))
    return torch.cat([output.gather(1, index).squeeze(1)[:, :hidden], output[:, 0, hidden:]], dim=1)


def final_state_loop(output, lengths):  # a third: one review at a time
    hidden = output.size(2) // 2
    return torch.stack([torch.cat([output[i, n - 1, :hidden], output[i, 0, hidden:]])
                        for i, n in enumerate(lengths.tolist())])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [final_state, final_state_gather, final_state_loop])
def test_final_state_accepts_right_answers(fn, seed, capsys):
    check_bidirectional_final_state(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


def halves(output, lengths, forward_at, backward_at):
    hidden, rows = output.size(2) // 2, torch.arange(output.size(0))
    steps = {"last": lengths - 1, "first": torch.zeros_like(lengths), "end": torch.full_like(lengths, -1)}
    return torch.cat([output[rows, steps[forward_at], :hidden], output[rows, steps[backward_at], hidden:]], dim=1)


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (lambda output, lengths: output[:, -1], ["output[:, -1] is the last time step"]),
        (lambda output, lengths: halves(output, lengths, "last", "last"), ["backward direction ENDS at step 0"]),
        (lambda output, lengths: halves(output, lengths, "first", "first"), ["forward direction ends"]),
        (lambda output, lengths: halves(output, lengths, "first", "last"), ["ends are swapped"]),
        (lambda output, lengths: halves(output, lengths, "last", "first").roll(output.size(2) // 2, dims=1),
         ["wrong order"]),
        (lambda output, lengths: halves(output, lengths, "last", "first")[:, :output.size(2) // 2],
         ["one direction only"]),
        (lambda output, lengths: halves(output, lengths, "end", "first"), ["differs from h_n"]),
    ],
)
def test_final_state_rejects_mistakes(fn, fragments):
    rejects(check_bidirectional_final_state, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# masked max
# ----------------------------------------------------------------------------------------------
def max_pool(output, lengths):
    mask = torch.arange(output.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
    return output.masked_fill(~mask.unsqueeze(2), float("-inf")).max(dim=1).values


def max_pool_loop(output, lengths):  # a slow but right answer
    return torch.stack([output[i, :n].max(0).values for i, n in enumerate(lengths.tolist())])


def max_pool_in_place(output, lengths):
    mask = padding_mask(lengths, output.size(1)).unsqueeze(2)
    output.masked_fill_(~mask, float("-inf"))
    return output.amax(1)


def max_pool_where(output, lengths):  # a third: torch.where, the mask built on the output's device
    mask = torch.arange(output.size(1), device=output.device) < lengths.to(output.device).unsqueeze(1)
    return torch.where(mask.unsqueeze(2), output, torch.tensor(float("-inf"), device=output.device)).amax(1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [max_pool, max_pool_loop, masked_max, max_pool_where])
def test_masked_max_accepts_right_answers(fn, seed, capsys):
    check_masked_max(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (lambda output, lengths: output.max(dim=1).values, ["padded steps took part", "-inf"]),
        (lambda output, lengths: output.max(dim=1), ["(values, indices)"]),
        (lambda output, lengths: (output * padding_mask(lengths, output.size(1)).unsqueeze(2)).amax(1),
         ["multiplying by the mask"]),
        (lambda output, lengths: output.masked_fill(~padding_mask(lengths, output.size(1)).unsqueeze(2), 0.0).amax(1),
         ["filling with 0"]),
        (lambda output, lengths: output.masked_fill(~padding_mask(lengths + 1, output.size(1)).unsqueeze(2),
                                                    float("-inf")).amax(1), ["off by one"]),
        (lambda output, lengths: output.amax(2), ["TIME dimension"]),
        (max_pool_in_place, ["in place"]),
        (lambda output, lengths: masked_mean(output, lengths), ["wrong values"]),
    ],
)
def test_masked_max_rejects_mistakes(fn, fragments):
    rejects(check_masked_max, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# BiGRU classifier
# ----------------------------------------------------------------------------------------------
def make_classifier(pool=None, squeeze=True, sigmoid=False):
    """A BiGRUClassifier whose forward uses ``pool(output, lengths)`` (default: the right max+mean)."""

    class BiGRUClassifier(nn.Module):
        def __init__(self, vocab_size, embedding_dim, hidden_size):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_INDEX)
            self.rnn = PaddedRNN("gru", embedding_dim, hidden_size, bidirectional=True)
            self.head = nn.Linear(4 * hidden_size, 1)

        def forward(self, ids, lengths):
            output, _ = self.rnn(self.embedding(ids), lengths)
            pooled = (pool or (lambda o, n: torch.cat([masked_max(o, n), masked_mean(o, n)], dim=1)))(output, lengths)
            logits = self.head(pooled)
            logits = logits.squeeze(1) if squeeze else logits
            return torch.sigmoid(logits) if sigmoid else logits

    return BiGRUClassifier


class WrongLayers(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.GRU(embedding_dim, hidden_size, bidirectional=True, batch_first=True)
        self.head = nn.Linear(4 * hidden_size, 1)

    def forward(self, ids, lengths):
        output, _ = self.rnn(self.embedding(ids))
        return self.head(torch.cat([output.amax(1), output.mean(1)], 1)).squeeze(1)


def pool_loop(output, lengths):  # one review at a time
    rows = [torch.cat([output[i, :n].amax(0), output[i, :n].mean(0)]) for i, n in enumerate(lengths.tolist())]
    return torch.stack(rows)


def pool_where(output, lengths):  # masks built on the output's device
    mask = (torch.arange(output.size(1), device=output.device) < lengths.to(output.device).unsqueeze(1)).unsqueeze(2)
    maximum = output.masked_fill(~mask, float("-inf")).amax(1)
    mean = (output * mask).sum(1) / lengths.to(output.device).unsqueeze(1)
    return torch.cat([maximum, mean], dim=1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pool", [None, pool_loop, pool_where])
def test_bigru_classifier_accepts_right_answers(pool, seed, capsys):
    check_bigru_classifier(make_classifier(pool=pool), seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cls, fragments",
    [
        (make_classifier(squeeze=False), ["Squeeze"]),
        (make_classifier(sigmoid=True), ["LOGITS"]),
        (make_classifier(pool=lambda o, n: torch.cat([masked_mean(o, n), masked_max(o, n)], 1)), ["wrong order"]),
        (make_classifier(pool=lambda o, n: torch.cat([o.amax(1), masked_mean(o, n)], 1)), ["max includes the padded"]),
        (make_classifier(pool=lambda o, n: torch.cat([masked_max(o, n), o.mean(1)], 1)), ["padded length"]),
        (make_classifier(pool=lambda o, n: torch.cat([o.amax(1), o.mean(1)], 1)), ["Both poolings"]),
        (WrongLayers, ["keep the __init__ as given"]),
        (make_classifier(pool=lambda o, n: not_implemented()), ["not implemented"]),
    ],
)
def test_bigru_classifier_rejects_mistakes(cls, fragments):
    rejects(check_bigru_classifier, cls, *fragments)


# ----------------------------------------------------------------------------------------------
# Devices: the student's code gets its tensors (and model) on the requested device
# ----------------------------------------------------------------------------------------------
def spy(seen):
    def record(*args):
        seen.extend(arg.device.type for arg in args if isinstance(arg, torch.Tensor))
        raise RuntimeError("spy")
    return record


@pytest.mark.parametrize("checker, expected", [
    (check_bidirectional_final_state, ["meta", "cpu"]),  # output on the device, lengths on the CPU
    (check_masked_max, ["meta", "cpu"]),
])
def test_checkers_follow_the_requested_device(checker, expected):
    seen = []
    with pytest.raises(AssertionError, match="spy"):
        checker(spy(seen), device="meta")
    assert seen == expected


def test_classifier_checker_moves_the_model_and_ids_to_the_device():
    seen = []
    rejects(lambda cls: check_bigru_classifier(cls, device="meta"),
            make_classifier(pool=lambda o, n: spy(seen)(o, n)), "spy")
    assert seen == ["meta", "cpu"]  # the GRU's output on the device, lengths on the CPU


def test_checkers_name_a_result_left_on_the_cpu():
    rejects(lambda fn: check_masked_max(fn, device="meta"),
            lambda output, lengths: torch.zeros(output.size(0), output.size(2)), "is on the cpu device")


def test_checkers_leave_the_global_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check_bidirectional_final_state(final_state)
    check_masked_max(max_pool)
    check_bigru_classifier(make_classifier())
    assert torch.equal(torch.rand(3), expected)
