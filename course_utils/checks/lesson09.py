"""Checkers for the exercises of lesson 9, reading without labels: ULMFiT's fine-tuning tricks
(``notebooks/exercises/09_exercises.ipynb``; tests in ``tests/test_checks_lesson09.py``).

A classifier that starts from a language model is fine-tuned gently, the layers near the input
least. The exercises take ULMFiT's three tools one at a time:

1. parameter groups with **discriminative learning rates**: one optimizer group per layer group
   of a ``SentimentClassifier`` (embedding, each recurrent layer, head), the head at ``lr`` and
   each group below it ``factor`` times less;
2. the **slanted triangular** learning rate at a step (Howard & Ruder 2018, equation 3);
3. **gradual unfreezing**: in epoch ``e`` only the ``e + 1`` top groups train.

The oracle is the model itself (its ``embedding``, ``rnn.layers`` and ``head``) and ULMFiT's
formulas; ``torch.optim.AdamW`` must accept the groups. When an answer is wrong, the checker
compares it with the mistakes students often make (the rates reversed, multiplied instead of
divided, the directions of a layer in separate groups, the triangle without its floor, unfreezing
from the bottom, ``groups[-0:]``...) and names the one that matches. Every checker takes a ``seed``
(the hidden tests use other ones); the student's global random state is left as it was.
"""

from __future__ import annotations

import math
import numbers
import random
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..models import build_model
from ._common import (Device, call_student, describe, first_matching_mistake, keeps_random_state,
                      resolve_device, success)

Groups = list[list[nn.Parameter]]


def _models(seed: int, device: torch.device) -> list[nn.Module]:
    """Small classifiers of several shapes: 1 or 2 layers, one or two directions."""
    rng = random.Random(seed)
    shapes = [dict(num_layers=1, bidirectional=False), dict(num_layers=2, bidirectional=True),
              dict(num_layers=rng.choice([1, 3]), bidirectional=rng.random() < 0.5)]
    models = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for shape in shapes:
            model = build_model(rng.randint(20, 40), embedding_dim=rng.randint(3, 6), hidden_size=rng.randint(4, 7),
                                pooling="last+max+mean", **shape)
            models.append(model.to(device))
    return models


def _groups_of(model: nn.Module) -> Groups:
    """The layer groups from the input up: [embedding], [recurrent layer 0], ..., [head]."""
    return ([list(model.embedding.parameters())] + [list(layer.parameters()) for layer in model.rnn.layers]
            + [list(model.head.parameters())])


def _ids(params: Any) -> Optional[list[int]]:
    """The ids of a group's parameters, or None when it is not a sequence of parameters."""
    if isinstance(params, (nn.Parameter, torch.Tensor)) or not hasattr(params, "__iter__"):
        return None
    params = list(params)
    if not all(isinstance(p, nn.Parameter) for p in params):
        return None
    return [id(p) for p in params]


def _as_rate(value: Any) -> Optional[float]:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


# ----------------------------------------------------------------------------------------------
# Exercise 1: parameter groups with discriminative learning rates
# ----------------------------------------------------------------------------------------------
def _read_groups(got: Any, name: str) -> list[tuple[list[int], float]]:
    """The student's groups as (parameter ids, lr) pairs, or an AssertionError saying what is wrong."""
    if isinstance(got, dict) or not isinstance(got, (list, tuple)):
        raise AssertionError(f"{name} should return a list of dicts, one per layer group, such as "
                             f"[{{'params': [...], 'lr': 0.001}}, ...]; it returned {describe(got)}.")
    read = []
    for i, group in enumerate(got):
        if not isinstance(group, dict) or "params" not in group or "lr" not in group:
            raise AssertionError(f"Group {i} should be a dict with the keys 'params' and 'lr' (what torch.optim "
                                 f"takes as parameter groups); got {describe(group)}"
                                 + (f" with keys {sorted(group)}" if isinstance(group, dict) else "") + ".")
        ids, lr = _ids(group["params"]), _as_rate(group["lr"])
        if ids is None:
            raise AssertionError(f"group {i}['params'] should be a list of the model's parameters "
                                 "(e.g. list(model.embedding.parameters())).")
        if lr is None:
            raise AssertionError(f"group {i}['lr'] should be a number, got {describe(group['lr'])}.")
        read.append((ids, lr))
    return read


def _grouping_hint(got_ids: list[list[int]], model: nn.Module) -> str:
    """Why the student's partition of the parameters is not [embedding], [layer 0], ..., [head]."""
    expected = [[id(p) for p in group] for group in _groups_of(model)]
    every = [id(p) for p in model.parameters()]
    flat = [i for ids in got_ids for i in ids]
    if len(flat) != len(set(flat)):
        return "A parameter is in two groups: each parameter must be in exactly one group."
    if set(flat) - set(every):
        return "A group holds parameters that are not the model's."
    if set(every) - set(flat):
        return ("Some of the model's parameters are in no group (the head's bias? a layer's backward direction?): "
                "they would never be trained.")
    if [set(g) for g in got_ids] == [set(g) for g in reversed(expected)]:
        return ("The groups are in the reverse order: list them from the input up, [embedding], [recurrent layer 0], "
                "..., [head], so that the last group is the head.")
    directions = [[id(p) for p in direction.parameters()] for layer in model.rnn.layers for direction in layer]
    if any(set(g) in [set(d) for d in directions] for g in got_ids) and len(model.rnn.layers[0]) == 2:
        return ("Each direction of a bidirectional layer has a group of its own: a layer's two directions are one "
                "group (model.rnn.layers[i].parameters() holds both).")
    if len(got_ids) == 1:
        return "One group for the whole model: make one group per layer group (embedding, each recurrent layer, head)."
    return (f"Expected {len(expected)} groups for this model ({len(model.rnn.layers)} recurrent layer(s)): "
            "[embedding], then one per layer of model.rnn.layers, then [head]; got "
            f"{len(got_ids)} groups of {[len(g) for g in got_ids]} parameters.")


def _rate_mistakes(lr: float, factor: float, n: int) -> list:
    top = n - 1
    return [
        (lambda: [lr / factor ** i for i in range(n)],
         "The rates are reversed: the embedding gets lr and the head the smallest rate. The head (last group) gets "
         "lr, and each group below it `factor` times less: lr / factor ** (n - 1 - i) for group i."),
        (lambda: [lr * factor ** (top - i) for i in range(n)],
         "The lower groups get larger rates (multiplied by factor): divide instead, lr / factor ** (n - 1 - i)."),
        (lambda: [lr] * n,
         "Every group has the same rate lr: the groups below the head need smaller ones, lr / factor ** (n - 1 - i)."),
        (lambda: [lr / factor ** (top - i + 1) for i in range(n)],
         "Off by one: the head itself should get lr, not lr / factor (group i gets lr / factor ** (n - 1 - i))."),
        (lambda: [lr / factor * (top - i) if i < top else lr for i in range(n)],
         "Each group gets lr divided by factor once more than the group above it: a power, "
         "lr / factor ** (n - 1 - i), not a product with (n - 1 - i)."),
        (lambda: [lr / (factor * (top - i)) if i < top else lr for i in range(n)],
         "Each group gets lr divided by factor once more than the group above it: a power, "
         "lr / factor ** (n - 1 - i), not a division by factor * (n - 1 - i)."),
    ]


def _same_rates(got: list[float], expected: list[float]) -> bool:
    return len(got) == len(expected) and all(math.isclose(g, e, rel_tol=1e-6) for g, e in zip(got, expected))


@keeps_random_state
def check_discriminative_param_groups(discriminative_param_groups: Callable, seed: int = 0,
                                      device: Device = None) -> None:
    """Check ``discriminative_param_groups(model, lr, factor)`` -> ``[{"params": [...], "lr": ...}, ...]``:
    one group per layer group of a ``SentimentClassifier`` from the input up (embedding, each
    layer of ``model.rnn.layers``, head), the last group at ``lr``, group i at
    ``lr / factor ** (n - 1 - i)``; every parameter in exactly one group; AdamW accepts them."""
    device = resolve_device(device)
    rng = random.Random(seed)
    name = "discriminative_param_groups"
    for model in _models(seed, device):
        lr, factor = rng.choice([1e-3, 4e-3, 1e-2]), rng.choice([2.6, 2.0, 3.0])
        got = call_student(discriminative_param_groups, model, lr, factor, name=name)
        read = _read_groups(got, name)
        expected = [[id(p) for p in group] for group in _groups_of(model)]
        got_ids = [ids for ids, _ in read]
        if [set(g) for g in got_ids] != [set(g) for g in expected]:
            raise AssertionError(_grouping_hint(got_ids, model))
        rates = [rate for _, rate in read]
        n = len(expected)
        right = [lr / factor ** (n - 1 - i) for i in range(n)]
        if not _same_rates(rates, right):
            hint = first_matching_mistake(rates, _rate_mistakes(lr, factor, n), same=_same_rates)
            raise AssertionError(f"With lr={lr} and factor={factor}, the rates from the embedding to the head should "
                                 f"be {[f'{r:.3g}' for r in right]}, got {[f'{r:.3g}' for r in rates]}. "
                                 + (hint or "Group i gets lr / factor ** (n - 1 - i)."))
        try:
            torch.optim.AdamW(got)
        except Exception as exc:  # e.g. a group given as a generator, already used up
            raise AssertionError(f"torch.optim.AdamW cannot take these groups: {type(exc).__name__}: {exc}") from None
    success(f"{name}: one group per layer from the embedding to the head, the head at lr and each group below "
            "`factor` times less, for 3 models.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: the slanted triangular learning rate
# ----------------------------------------------------------------------------------------------
def slanted_triangular_reference(step: int, total_steps: int, lr_max: float, cut_frac: float, ratio: float) -> float:
    """ULMFiT's equation 3: a linear rise over ``cut = floor(T cut_frac)`` steps, then a linear fall."""
    cut = math.floor(total_steps * cut_frac)
    p = step / cut if step < cut else 1 - (step - cut) / (cut * (1 / cut_frac - 1))
    return lr_max * (1 + p * (ratio - 1)) / ratio


def _schedules(seed: int) -> list[tuple[int, float, float, float]]:
    """(total_steps, lr_max, cut_frac, ratio) with total_steps * cut_frac a whole number."""
    rng = random.Random(seed)
    cases = [(100, 0.01, 0.1, 32.0), (40, 0.004, 0.25, 10.0)]
    for _ in range(2):
        cut_frac = rng.choice([0.1, 0.2, 0.25])
        total = int(rng.randint(3, 12) / cut_frac)
        cases.append((total, rng.choice([1e-3, 5e-3, 2e-2]), cut_frac, rng.choice([8.0, 32.0, 50.0])))
    return cases


def _triangle_mistakes(total: int, lr_max: float, cut_frac: float, ratio: float) -> list:
    cut = math.floor(total * cut_frac)
    steps = range(total)

    def p_of(step: int) -> float:
        return step / cut if step < cut else 1 - (step - cut) / (cut * (1 / cut_frac - 1))

    return [
        (lambda: [lr_max * p_of(t) for t in steps],
         "The rate starts at 0 and falls to 0: ULMFiT's triangle never goes below lr_max / ratio; use "
         "lr_max * (1 + p * (ratio - 1)) / ratio."),
        (lambda: [lr_max * (1 + p_of(t) * (ratio - 1)) for t in steps],
         "The rate reaches lr_max * ratio: divide by ratio, lr_max * (1 + p * (ratio - 1)) / ratio."),
        (lambda: [lr_max * (1 + max(0.0, 1 - abs(t - cut) / cut) * (ratio - 1)) / ratio for t in steps],
         "The fall is as steep as the rise (a symmetric triangle): after the peak the rate falls over the remaining "
         "steps, p = 1 - (t - cut) / (cut * (1 / cut_frac - 1))."),
        (lambda: [lr_max * (1 + (1 - p_of(t)) * (ratio - 1)) / ratio for t in steps],
         "Upside down: the rate starts at lr_max and is lowest at the cut. It rises first (p = t / cut), then falls."),
        (lambda: [lr_max * (1 + min(1.0, (t + 1) / cut if t < cut else p_of(t)) * (ratio - 1)) / ratio
                  for t in steps],
         "Off by one at the start: at step 0 the rate is lr_max / ratio (p = t / cut with t counted from 0)."),
    ]


def _same_values(got: list, expected: list) -> bool:
    return len(got) == len(expected) and all(
        g is not None and math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-12) for g, e in zip(got, expected))


@keeps_random_state
def check_slanted_triangular_lr(slanted_triangular_lr: Callable, seed: int = 0) -> None:
    """Check ``slanted_triangular_lr(step, total_steps, lr_max, cut_frac, ratio)`` -> the learning rate
    (a Python number) at ``step`` (0 .. total_steps - 1): ULMFiT's equation 3."""
    name = "slanted_triangular_lr"
    for total, lr_max, cut_frac, ratio in _schedules(seed):
        got = [_as_rate(call_student(slanted_triangular_lr, t, total, lr_max, cut_frac, ratio, name=name))
               for t in range(total)]
        if any(g is None for g in got):
            raise AssertionError(f"{name} should return a number (the learning rate at that step).")
        expected = [slanted_triangular_reference(t, total, lr_max, cut_frac, ratio) for t in range(total)]
        if not _same_values(got, expected):
            first = next(t for t in range(total) if not math.isclose(got[t], expected[t], rel_tol=1e-6, abs_tol=1e-12))
            hint = first_matching_mistake(got, _triangle_mistakes(total, lr_max, cut_frac, ratio), same=_same_values)
            raise AssertionError(
                f"With total_steps={total}, lr_max={lr_max}, cut_frac={cut_frac}, ratio={ratio}: at step {first} the "
                f"rate should be {expected[first]:.4g}, got {got[first]:.4g}. "
                + (hint or "cut = floor(total_steps * cut_frac); p = t / cut before the cut, then "
                            "1 - (t - cut) / (cut * (1 / cut_frac - 1)); lr = lr_max * (1 + p * (ratio - 1)) / ratio."))
    success(f"{name}: a short rise to lr_max, a long fall to lr_max / ratio, for {len(_schedules(seed))} schedules.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: gradual unfreezing
# ----------------------------------------------------------------------------------------------
def _pattern(groups: Groups) -> list:
    """For each group: True (all trainable), False (all frozen) or "mixed"."""
    states = []
    for group in groups:
        flags = {p.requires_grad for p in group}
        states.append(flags.pop() if len(flags) == 1 else "mixed")
    return states


def _unfreezing_mistakes(n: int, epoch: int) -> list:
    top = min(epoch + 1, n)
    return [
        (lambda: [i < top for i in range(n)],
         "The groups are unfrozen from the bottom (the embedding first): ULMFiT starts at the top, with the new head, "
         "and unfreezes one group further down each epoch."),
        (lambda: [True] * n,
         "Every group trains: the lower groups must be frozen (requires_grad_(False)), also when they were "
         "trainable before the call." + (" And mind groups[-0:]: it is the whole list in Python (-0 == 0); use "
                                         "groups[len(groups) - (epoch + 1):], or count from the top."
                                         if epoch == 0 else "")),
        (lambda: [i >= n - epoch for i in range(n)],
         "Off by one: epoch 0 must already train the top group (the head): epoch e trains the e + 1 top groups."),
        (lambda: [i >= n - (epoch + 2) for i in range(n)],
         "Off by one: epoch e trains the e + 1 top groups (epoch 0: the head alone), not e + 2."),
        (lambda: [i == n - 1 - min(epoch, n - 1) for i in range(n)],
         "Only one group trains at a time: groups unfrozen in earlier epochs stay unfrozen (epoch e trains the "
         "e + 1 top groups)."),
    ]


@keeps_random_state
def check_unfreeze(unfreeze: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``unfreeze(groups, epoch)``: for layer groups listed from the input up, the ``epoch + 1``
    top groups get ``requires_grad=True`` (every group from epoch ``len(groups) - 1`` on), the
    others ``requires_grad=False``, whatever they were before; no parameter is replaced or changed."""
    device = resolve_device(device)
    rng = random.Random(seed)
    name = "unfreeze"
    for model in _models(seed, device):
        groups = _groups_of(model)
        n = len(groups)
        before = [p.detach().clone() for p in model.parameters()]
        for epoch in range(n + 1):
            for group in groups:  # whatever state the parameters were left in
                start = rng.random() < 0.5 if epoch > 0 else True
                for parameter in group:
                    parameter.requires_grad_(start)
            given = [list(group) for group in groups]
            call_student(unfreeze, given, epoch, name=name)
            if [[id(p) for p in g] for g in given] != [[id(p) for p in g] for g in groups]:
                raise AssertionError(f"{name} changed the lists of groups it was given: set requires_grad on the "
                                     "parameters (parameter.requires_grad_(True or False)) and leave the lists alone.")
            got = _pattern(groups)
            expected = [i >= n - min(epoch + 1, n) for i in range(n)]
            if got != expected:
                if "mixed" in got:
                    raise AssertionError(f"In epoch {epoch}, group {got.index('mixed')} is partly frozen: a group is "
                                         "unfrozen or frozen as a whole, every parameter in it.")
                hint = first_matching_mistake(got, _unfreezing_mistakes(n, epoch), same=lambda a, b: a == b)
                raise AssertionError(
                    f"With {n} groups (from the embedding to the head), epoch {epoch}: trainable groups should be "
                    f"{expected}, got {got}. " + (hint or "Epoch e trains the e + 1 top groups; the others are frozen."))
        if any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())):
            raise AssertionError(f"{name} changed the values of some parameters: only their requires_grad should change.")
    success(f"{name}: the head first, then one more group per epoch from the top, the others frozen, for 3 models.")
