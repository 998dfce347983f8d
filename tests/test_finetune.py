"""Tests of course_utils.finetune: ULMFiT's layer groups, discriminative rates, slanted triangle, gradual unfreezing."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.finetune import (discriminative_param_groups, fine_tune, layer_groups, set_trainable,
                                   slanted_triangular, unfrozen_groups)
from course_utils.models import build_model
from course_utils.training import make_loader


def small_model(**options):
    torch.manual_seed(0)
    return build_model(20, **{"embedding_dim": 6, "hidden_size": 8, "pooling": "last+max+mean", **options})


def test_layer_groups_go_from_the_input_to_the_head():
    model = small_model(num_layers=2, bidirectional=True)
    groups = layer_groups(model)
    assert len(groups) == 4
    assert groups[0] == [model.embedding.weight]
    assert {id(p) for p in groups[1]} == {id(p) for p in model.rnn.layers[0].parameters()}
    assert {id(p) for p in groups[3]} == {id(p) for p in model.head.parameters()}
    assert sum(len(g) for g in groups) == len(list(model.parameters()))  # every parameter, once
    attention = small_model(pooling="attention-pool")
    assert {id(p) for p in attention.attention.parameters()} <= {id(p) for p in layer_groups(attention)[-1]}
    with pytest.raises(ValueError, match="SentimentClassifier"):
        layer_groups(torch.nn.Linear(2, 2))


def test_discriminative_rates_fall_by_the_factor_towards_the_input():
    groups = layer_groups(small_model())
    rates = [group["lr"] for group in discriminative_param_groups(groups, 1e-2, 2.6)]
    assert rates == pytest.approx([1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2])
    assert [g["lr"] for g in discriminative_param_groups(groups, 1e-2, 1.0)] == [1e-2] * 3
    optimizer = torch.optim.AdamW(discriminative_param_groups(groups, 1e-2))
    assert [len(g["params"]) for g in optimizer.param_groups] == [len(g) for g in groups]
    with pytest.raises(ValueError, match="factor"):
        discriminative_param_groups(groups, 1e-2, 0.5)


def test_the_slanted_triangle_rises_fast_and_falls_slowly():
    total = 100
    values = [slanted_triangular(step, total, cut_frac=0.1, ratio=32) for step in range(total)]
    assert values[0] == pytest.approx(1 / 32) and slanted_triangular(total, total) == pytest.approx(1 / 32)
    assert values[-1] == pytest.approx((1 + (1 / 90) * 31) / 32)  # p = 1 - 89 / (10 * 9) at the last step
    assert max(values) == pytest.approx(1.0) and values.index(max(values)) == 10
    assert all(a < b for a, b in zip(values[:10], values[1:11]))  # rising for 10 steps
    assert all(a > b for a, b in zip(values[10:-1], values[11:]))  # then falling for 89
    assert values[5] == pytest.approx((1 + 0.5 * 31) / 32)
    assert slanted_triangular(500, total) == pytest.approx(1 / 32)  # never below 1 / ratio
    from course_utils.checks.lesson09 import slanted_triangular_reference
    for total, cut_frac, ratio in ((100, 0.1, 32), (40, 0.25, 10)):  # the exercise's equation, the same numbers
        assert [slanted_triangular(t, total, cut_frac, ratio) for t in range(total)] == pytest.approx(
            [slanted_triangular_reference(t, total, 1.0, cut_frac, ratio) for t in range(total)])
    with pytest.raises(ValueError):
        slanted_triangular(0, 10, cut_frac=1.5)


def test_gradual_unfreezing_adds_one_group_per_epoch_from_the_top():
    assert [unfrozen_groups(epoch, 3) for epoch in range(5)] == [1, 2, 3, 3, 3]
    assert [unfrozen_groups(epoch, 3, gradual=False) for epoch in range(2)] == [3, 3]
    model = small_model()
    groups = layer_groups(model)
    set_trainable(groups, 1)
    assert [all(p.requires_grad for p in g) for g in groups] == [False, False, True]
    assert not any(p.requires_grad for g in groups[:2] for p in g)


def toy_loader(seed=0, n=64):
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for _ in range(n):
        label = int(torch.randint(2, (1,), generator=generator))
        ids = torch.randint(4, 20, (6,), generator=generator).tolist() + [2 + label] * 3  # the label's word
        examples.append((ids, label))
    return make_loader(examples, 16, seed=seed)


def test_fine_tune_freezes_the_lower_groups_in_the_first_epoch_and_learns():
    model = small_model()
    embedding_before = model.embedding.weight.detach().clone()
    lstm_before = model.rnn.layers[0][0].weight_hh_l0.detach().clone()
    history = fine_tune(model, toy_loader(), toy_loader(1), epochs=1, lr=1e-2, device=torch.device("cpu"))
    assert torch.equal(model.embedding.weight, embedding_before)  # epoch 1 trains the head only
    assert torch.equal(model.rnn.layers[0][0].weight_hh_l0, lstm_before)
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again at the end
    model = small_model()
    history = fine_tune(model, toy_loader(), toy_loader(1), epochs=6, lr=3e-2, device=torch.device("cpu"))
    assert not torch.equal(model.embedding.weight, embedding_before)
    assert len(history.val_acc) == 6 and history.best_val_acc == max(history.val_acc) > 0.9
    assert history.best_val_acc == pytest.approx(history.val_acc[history.best_epoch - 1])


def test_fine_tune_follows_the_slanted_triangle_in_every_group(monkeypatch):
    seen = []
    real_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        seen.append([group["lr"] for group in self.param_groups])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    loader = toy_loader()
    fine_tune(small_model(), loader, toy_loader(1), epochs=2, lr=1e-2, factor=2.0, gradual=False,
              device=torch.device("cpu"))
    total = 2 * len(loader)
    assert len(seen) == total
    for step, rates in enumerate(seen):
        expected = 1e-2 * slanted_triangular(step, total)
        assert rates == pytest.approx([expected / 4, expected / 2, expected]), step
    assert math.isclose(max(r[-1] for r in seen), 1e-2)
