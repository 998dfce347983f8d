"""Fine-tuning a classifier that starts from a language model, the way ULMFiT does it (lesson 9).

Howard & Ruder (2018, "Universal Language Model Fine-tuning for Text Classification") found that
the weights of a language model make a good start for a classifier only when they are changed
gently, the upper layers more than the lower ones. Lesson 9 writes each of their tricks in the
open; this module holds them for later use:

* **layer groups** (``layer_groups``): the classifier's parameters from the input up: the
  embedding, each recurrent layer, the head;
* **discriminative learning rates** (``discriminative_param_groups``): each group its own
  learning rate, the top group ``lr`` and each group below it ``factor`` (2.6 in the paper)
  times smaller. The lower layers hold general knowledge of the language; the head is new;
* **slanted triangular learning rates** (``slanted_triangular``): a short linear rise (the
  first ``cut_frac`` of the steps) to the peak, then a long linear fall to ``1 / ratio`` of it;
* **gradual unfreezing** (``unfrozen_groups``, ``set_trainable``): the first epoch trains the
  head only, each later epoch unfreezes the next group down, until every group trains;
* **concat pooling**: the last state, the max and the mean over time, side by side
  (``pooling="last+max+mean"`` of ``course_utils.models``, lesson 5).

``fine_tune`` puts them together: it trains and validates like ``training.fit`` (and keeps the
epoch with the best validation accuracy), but with one optimizer parameter group per layer
group, the slanted triangular schedule stepped after every batch, and the groups unfrozen one
epoch at a time. ``discriminative=1.0, gradual=False`` trains every layer at the same rate from
the first step: the way to train a classifier that starts from random weights.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable, Optional

import torch
from torch import nn

from .training import History, evaluate, get_device, train_epoch

ParameterGroups = list[list[nn.Parameter]]


def layer_groups(model: nn.Module) -> ParameterGroups:
    """The parameters of a ``SentimentClassifier`` in groups, from the input to the output.

    ``[embedding], [recurrent layer 0 (both directions)], [layer 1], ..., [attention pooling, head]``:
    a group is what gradual unfreezing unfreezes at once and what gets one learning rate.
    """
    if not all(hasattr(model, name) for name in ("embedding", "rnn", "head")):
        raise ValueError("layer_groups() expects a course_utils.models.SentimentClassifier "
                         "(embedding, rnn and head).")
    groups = [list(model.embedding.parameters())]
    groups += [list(layer.parameters()) for layer in model.rnn.layers]
    top = list(model.head.parameters())
    if getattr(model, "attention", None) is not None:
        top = list(model.attention.parameters()) + top
    return groups + [top]


def discriminative_param_groups(groups: ParameterGroups, lr: float, factor: float = 2.6) -> list[dict]:
    """Optimizer parameter groups: the last (top) group gets ``lr``, each one below ``factor`` times less.

    With 3 groups and ``factor=2.6``: embedding ``lr / 6.76``, LSTM ``lr / 2.6``, head ``lr``.
    ``factor=1`` gives every group the same rate. Pass the result to ``torch.optim.AdamW``.
    """
    if lr <= 0 or factor < 1:
        raise ValueError(f"lr must be > 0 and factor >= 1 (1: the same rate everywhere), got lr={lr}, factor={factor}.")
    top = len(groups) - 1
    return [{"params": params, "lr": lr / factor ** (top - i)} for i, params in enumerate(groups)]


def slanted_triangular(step: int, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """The learning rate at ``step`` (0-based) as a fraction of its peak: ULMFiT's slanted triangle.

    Equation 3 of the paper: with ``cut = floor(total_steps * cut_frac)``, the fraction ``p``
    rises linearly from 0 to 1 over the first ``cut`` steps (``p = step / cut``), then falls
    linearly back towards 0 over the remaining ones (``p = 1 - (step - cut) / (cut * (1 / cut_frac - 1))``);
    the rate is ``(1 + p * (ratio - 1)) / ratio`` of the peak: from ``1 / ratio`` up to 1 and down
    again (never below ``1 / ratio``). Multiply by the peak learning rate
    (``torch.optim.lr_scheduler.LambdaLR`` does that for every parameter group).
    """
    if total_steps < 1 or not 0 < cut_frac < 1 or ratio < 1:
        raise ValueError("need total_steps >= 1, 0 < cut_frac < 1 and ratio >= 1.")
    cut = max(1, math.floor(total_steps * cut_frac))
    if step < cut:
        p = step / cut
    else:
        p = max(0.0, 1 - (step - cut) / (cut * (1 / cut_frac - 1)))
    return (1 + p * (ratio - 1)) / ratio


def unfrozen_groups(epoch: int, num_groups: int, gradual: bool = True) -> int:
    """How many groups, counted from the top, train in ``epoch`` (0-based): 1, 2, ..., then all.

    ``gradual=False``: all of them from the start.
    """
    if not gradual:
        return num_groups
    return min(epoch + 1, num_groups)


def set_trainable(groups: ParameterGroups, top: int) -> None:
    """Let only the ``top`` last groups train (``requires_grad``); the groups below are frozen.

    A frozen parameter gets no gradient, so the optimizer leaves it as it is (AdamW skips a
    parameter whose ``.grad`` is ``None``), and autograd does not even compute the backward pass
    of frozen layers below every trainable one.
    """
    for i, params in enumerate(groups):
        for parameter in params:
            parameter.requires_grad_(i >= len(groups) - top)


def fine_tune(
    model: nn.Module,
    train_loader,
    valid_loader,
    epochs: int,
    lr: float,
    factor: float = 2.6,
    gradual: bool = True,
    cut_frac: float = 0.1,
    ratio: float = 32.0,
    weight_decay: float = 0.01,
    clip: Optional[float] = 1.0,
    device: Optional[torch.device] = None,
    progress: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> History:
    """Train a classifier the ULMFiT way; keep (and restore) the epoch with the best validation accuracy.

    ``lr`` is the peak rate of the top group; ``factor`` the discriminative divisor between
    groups; ``gradual`` unfreezes one group per epoch from the top (the first epoch trains the
    head only); the slanted triangular schedule (``cut_frac``, ``ratio``) runs over all the
    batches of all the epochs. ``factor=1.0, gradual=False``: a plain schedule for a random start.
    ``log`` gets one line per epoch. Every parameter is trainable again at the end.
    """
    device = device or get_device()
    model.to(device)
    groups = layer_groups(model)
    optimizer = torch.optim.AdamW(discriminative_param_groups(groups, lr, factor), weight_decay=weight_decay)
    total = epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: slanted_triangular(step, total, cut_frac, ratio))
    history, best_state = History(), None
    try:
        for epoch in range(epochs):
            trainable = unfrozen_groups(epoch, len(groups), gradual)
            set_trainable(groups, trainable)
            start = time.perf_counter()
            train_loss, train_acc = train_epoch(model, train_loader, optimizer, device, scheduler, clip, progress)
            seconds = time.perf_counter() - start
            val_loss, val_acc = evaluate(model, valid_loader, device, progress)
            for name, value in (("train_loss", train_loss), ("train_acc", train_acc), ("seconds", seconds),
                                ("val_loss", val_loss), ("val_acc", val_acc)):
                getattr(history, name).append(value)
            if best_state is None or val_acc > history.best_val_acc:
                history.best_epoch = epoch + 1
                best_state = copy.deepcopy(model.state_dict())
            if log is not None:
                log(f"epoch {epoch + 1}/{epochs} ({trainable} of {len(groups)} groups training): train loss "
                    f"{train_loss:.4f} acc {train_acc:.4f} | valid loss {val_loss:.4f} acc {val_acc:.4f} | {seconds:.1f} s")
    finally:
        set_trainable(groups, len(groups))
    model.load_state_dict(best_state)
    return history
