"""The checkers of lesson 9 (ULMFiT's fine-tuning tricks; course_utils/checks/lesson09.py) accept
right answers written in several ways and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import math

import pytest
import torch

from checker_testing import devices_seen, keeps_random_state, not_implemented, rejects
from course_utils.checks import (check_discriminative_param_groups, check_slanted_triangular_lr, check_unfreeze,
                                 fresh_checks)

SEEDS = [0, 1, 5]  # 5: the hidden tests' seed


# ----------------------------------------------------------------------------------------------
# Exercise 1: discriminative_param_groups
# ----------------------------------------------------------------------------------------------
def groups_loop(model, lr, factor):
    groups = [list(model.embedding.parameters())]
    for layer in model.rnn.layers:
        groups.append(list(layer.parameters()))
    groups.append(list(model.head.parameters()))
    result = []
    for i, params in enumerate(groups):
        result.append({"params": params, "lr": lr / factor ** (len(groups) - 1 - i)})
    return result


def groups_from_the_top(model, lr, factor):  # walk down from the head, dividing as it goes
    modules = [model.embedding, *model.rnn.layers, model.head]
    result, rate = [], lr
    for module in reversed(modules):
        result.insert(0, {"params": list(module.parameters()), "lr": rate})
        rate /= factor
    return result


def groups_by_name(model, lr, factor):  # from named_parameters: "embedding.", "rnn.layers.<i>.", "head."
    keys = ["embedding"] + [f"rnn.layers.{i}" for i in range(len(model.rnn.layers))] + ["head"]
    buckets = {key: [] for key in keys}
    for name, parameter in model.named_parameters():
        key = next(k for k in keys if name.startswith(k + "."))
        buckets[key].append(parameter)
    n = len(keys)
    return [dict(params=buckets[key], lr=torch.tensor(lr * factor ** -(n - 1 - i))) for i, key in enumerate(keys)]


@pytest.mark.parametrize("answer", [groups_loop, groups_from_the_top, groups_by_name])
def test_discriminative_groups_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_discriminative_param_groups(answer, seed=seed, device="cpu")
    assert "✅" in capsys.readouterr().out


def _modules(model):
    return [model.embedding, *model.rnn.layers, model.head]


def reversed_rates(model, lr, factor):
    return [{"params": list(m.parameters()), "lr": lr / factor ** i} for i, m in enumerate(_modules(model))]


def multiplied_rates(model, lr, factor):
    n = len(_modules(model))
    return [{"params": list(m.parameters()), "lr": lr * factor ** (n - 1 - i)} for i, m in enumerate(_modules(model))]


def same_rate(model, lr, factor):
    return [{"params": list(m.parameters()), "lr": lr} for m in _modules(model)]


def head_divided_too(model, lr, factor):
    n = len(_modules(model))
    return [{"params": list(m.parameters()), "lr": lr / factor ** (n - i)} for i, m in enumerate(_modules(model))]


def groups_reversed(model, lr, factor):
    right = groups_loop(model, lr, factor)
    params = [g["params"] for g in right][::-1]
    return [{"params": p, "lr": g["lr"]} for p, g in zip(params, right)]


def directions_apart(model, lr, factor):
    modules = [model.embedding, *[d for layer in model.rnn.layers for d in layer], model.head]
    n = len(modules)
    return [{"params": list(m.parameters()), "lr": lr / factor ** (n - 1 - i)} for i, m in enumerate(modules)]


def head_forgotten(model, lr, factor):
    return groups_loop(model, lr, factor)[:-1]


def one_group(model, lr, factor):
    return [{"params": list(model.parameters()), "lr": lr}]


def a_dict(model, lr, factor):
    return {"params": list(model.parameters()), "lr": lr}


def no_lr_key(model, lr, factor):
    return [{"params": list(m.parameters())} for m in _modules(model)]


@pytest.mark.parametrize("wrong, fragments", [
    (reversed_rates, ["reversed", "embedding gets lr"]),
    (multiplied_rates, ["multiplied", "divide instead"]),
    (same_rate, ["same rate"]),
    (head_divided_too, ["Off by one", "head itself"]),
    (groups_reversed, ["reverse order", "from the input up"]),
    (directions_apart, ["direction", "one group"]),
    (head_forgotten, ["in no group"]),
    (one_group, ["One group for the whole model"]),
    (a_dict, ["list of dicts"]),
    (no_lr_key, ["'params' and 'lr'"]),
    (not_implemented, ["not implemented yet"]),
])
def test_discriminative_groups_wrong_answers_are_named(wrong, fragments):
    rejects(lambda fn: check_discriminative_param_groups(fn, device="cpu"), wrong, *fragments)


def test_discriminative_groups_checker_uses_the_device_and_keeps_the_random_state():
    assert devices_seen(check_discriminative_param_groups, lambda model, lr, factor: list(model.parameters())) == {"meta"}
    assert keeps_random_state(lambda: check_discriminative_param_groups(groups_loop, device="cpu"))


# ----------------------------------------------------------------------------------------------
# Exercise 2: slanted_triangular_lr
# ----------------------------------------------------------------------------------------------
def stlr(step, total_steps, lr_max, cut_frac, ratio):
    cut = math.floor(total_steps * cut_frac)
    if step < cut:
        p = step / cut
    else:
        p = 1 - (step - cut) / (cut * (1 / cut_frac - 1))
    return lr_max * (1 + p * (ratio - 1)) / ratio


def stlr_interpolated(step, total_steps, lr_max, cut_frac, ratio):  # the same line, as a mix of two rates
    cut = int(total_steps * cut_frac)
    low = lr_max / ratio
    p = step / cut if step < cut else 1 - (step - cut) / (cut * (1 / cut_frac - 1))
    return low + p * (lr_max - low)


def stlr_tensor(step, total_steps, lr_max, cut_frac, ratio):  # torch maths, a 0-d tensor
    cut = torch.tensor(total_steps * cut_frac).floor()
    t = torch.tensor(float(step))
    p = torch.where(t < cut, t / cut, 1 - (t - cut) / (cut * (1 / cut_frac - 1)))
    return lr_max * (1 + p * (ratio - 1)) / ratio


def fall_over_the_rest(step, total_steps, lr_max, cut_frac, ratio):
    # cut * (1 / cut_frac - 1) == total_steps - cut when total_steps * cut_frac is whole, as in every check
    cut = math.floor(total_steps * cut_frac)
    p = step / cut if step < cut else 1 - (step - cut) / (total_steps - cut)
    return lr_max * (1 + p * (ratio - 1)) / ratio


@pytest.mark.parametrize("answer", [stlr, stlr_interpolated, stlr_tensor, fall_over_the_rest])
def test_slanted_triangle_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_slanted_triangular_lr(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def _p(step, total_steps, cut_frac):
    cut = math.floor(total_steps * cut_frac)
    return step / cut if step < cut else 1 - (step - cut) / (cut * (1 / cut_frac - 1))


def no_floor(step, total_steps, lr_max, cut_frac, ratio):
    return lr_max * _p(step, total_steps, cut_frac)


def no_division(step, total_steps, lr_max, cut_frac, ratio):
    return lr_max * (1 + _p(step, total_steps, cut_frac) * (ratio - 1))


def symmetric(step, total_steps, lr_max, cut_frac, ratio):
    cut = math.floor(total_steps * cut_frac)
    p = max(0.0, 1 - abs(step - cut) / cut)
    return lr_max * (1 + p * (ratio - 1)) / ratio


def upside_down(step, total_steps, lr_max, cut_frac, ratio):
    return lr_max * (1 + (1 - _p(step, total_steps, cut_frac)) * (ratio - 1)) / ratio


@pytest.mark.parametrize("wrong, fragments", [
    (no_floor, ["never goes below lr_max / ratio"]),
    (no_division, ["divide by ratio"]),
    (symmetric, ["symmetric"]),
    (upside_down, ["Upside down"]),
    (lambda *args: "fast", ["should return a number"]),
    (not_implemented, ["not implemented yet"]),
])
def test_slanted_triangle_wrong_answers_are_named(wrong, fragments):
    rejects(check_slanted_triangular_lr, wrong, *fragments)


def test_slanted_triangle_checker_keeps_the_random_state():
    assert keeps_random_state(lambda: check_slanted_triangular_lr(stlr))


# ----------------------------------------------------------------------------------------------
# Exercise 3: unfreeze
# ----------------------------------------------------------------------------------------------
def unfreeze_slice(groups, epoch):
    n = len(groups)
    for i, group in enumerate(groups):
        for parameter in group:
            parameter.requires_grad_(i >= n - (epoch + 1))


def unfreeze_two_passes(groups, epoch):  # freeze everything, then unfreeze the top
    for group in groups:
        for parameter in group:
            parameter.requires_grad = False
    for group in groups[max(0, len(groups) - epoch - 1):]:
        for parameter in group:
            parameter.requires_grad = True


def unfreeze_from_the_top(groups, epoch):  # count down from the head
    for depth, group in enumerate(reversed(groups)):
        for parameter in group:
            parameter.requires_grad_(depth <= epoch)


@pytest.mark.parametrize("answer", [unfreeze_slice, unfreeze_two_passes, unfreeze_from_the_top])
def test_unfreeze_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_unfreeze(answer, seed=seed, device="cpu")
    assert "✅" in capsys.readouterr().out


def from_the_bottom(groups, epoch):
    for i, group in enumerate(groups):
        for parameter in group:
            parameter.requires_grad_(i <= epoch)


def minus_zero_slice(groups, epoch):
    for group in groups:
        for parameter in group:
            parameter.requires_grad_(False)
    for group in groups[-epoch:]:
        for parameter in group:
            parameter.requires_grad_(True)


def never_freezes(groups, epoch):
    for group in groups[len(groups) - epoch - 1:]:
        for parameter in group:
            parameter.requires_grad_(True)


def one_at_a_time(groups, epoch):
    n = len(groups)
    for i, group in enumerate(groups):
        for parameter in group:
            parameter.requires_grad_(i == n - 1 - min(epoch, n - 1))


def first_parameter_only(groups, epoch):
    unfreeze_slice(groups, epoch)
    for group in groups:
        group[0].requires_grad_(True)


def replaces_the_groups(groups, epoch):
    unfreeze_slice(groups, epoch)
    groups[:] = groups[::-1]


@pytest.mark.parametrize("wrong, fragments", [
    (from_the_bottom, ["from the bottom"]),
    (minus_zero_slice, ["groups[-0:]"]),
    (never_freezes, ["must be frozen"]),
    (one_at_a_time, ["stay unfrozen"]),
    (first_parameter_only, ["partly frozen"]),
    (replaces_the_groups, ["changed the lists"]),
    (not_implemented, ["not implemented yet"]),
])
def test_unfreeze_wrong_answers_are_named(wrong, fragments):
    rejects(lambda fn: check_unfreeze(fn, device="cpu"), wrong, *fragments)


def test_unfreeze_checker_uses_the_device_and_keeps_the_random_state():
    assert devices_seen(check_unfreeze, lambda groups, epoch: groups[0]) == {"meta"}
    assert keeps_random_state(lambda: check_unfreeze(unfreeze_slice, device="cpu"))


def test_fresh_checks_gives_the_lesson_9_checkers():
    checks = fresh_checks(9)
    for name in ("check_discriminative_param_groups", "check_slanted_triangular_lr", "check_unfreeze"):
        assert callable(getattr(checks, name))
