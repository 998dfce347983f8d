"""Tests of course_utils.modern (lesson 10): positions, the scan of a linear recurrence, the minGRU,
the Transformer encoder on padded batches, and both as encoders of SentimentClassifier."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from course_utils.models import ModelConfig, build_model
from course_utils.modern import (MinGRU, PaddedMinGRU, PaddedTransformer, g, linear_recurrence_loop, log_g,
                                 log_space_scan, sinusoidal_positions)
from course_utils.training import load_checkpoint, save_checkpoint


def padded_ids(lengths, vocab=40, seed=0):
    g_ = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    ids = torch.randint(2, vocab, (len(lengths), int(lengths.max())), generator=g_)
    ids[torch.arange(ids.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return ids, lengths


# --- positions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [8, 7])
def test_sinusoidal_positions_by_the_formula(dim):
    code = sinusoidal_positions(50, dim, dtype=torch.float64)
    assert code.shape == (50, dim)
    for p in (0, 1, 17, 49):
        for i in range(dim):
            frequency = 10000 ** (-(i - i % 2) / dim)
            expected = math.sin(p * frequency) if i % 2 == 0 else math.cos(p * frequency)
            assert abs(code[p, i].item() - expected) < 1e-12
    assert len({tuple(row.tolist()) for row in code}) == 50  # every position has its own code


# --- the scan of a linear recurrence ----------------------------------------------------------------
def test_the_loop_is_the_definition():
    a, b, h0 = torch.rand(2, 4, 3), torch.randn(2, 4, 3), torch.randn(2, 3)
    h = linear_recurrence_loop(a, b, h0)
    expected, state = [], h0
    for t in range(4):
        state = a[:, t] * state + b[:, t]
        expected.append(state)
    assert torch.equal(h, torch.stack(expected, 1))
    assert torch.equal(linear_recurrence_loop(a, b), linear_recurrence_loop(a, b, torch.zeros(2, 3)))


@pytest.mark.parametrize("with_h0", [False, True])
def test_the_log_space_scan_equals_the_loop(with_h0):
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(3, 60, 5, generator=gen, dtype=torch.float64) * 0.98 + 0.01
    b = torch.rand(3, 60, 5, generator=gen, dtype=torch.float64) + 0.01
    h0 = torch.rand(3, 5, generator=gen, dtype=torch.float64) + 0.1 if with_h0 else None
    scanned = torch.exp(log_space_scan(a.log(), b.log(), None if h0 is None else h0.log()))
    torch.testing.assert_close(scanned, linear_recurrence_loop(a, b, h0), rtol=1e-10, atol=0)


def test_the_scan_survives_products_that_underflow():
    """800 gates of about 0.1: their product is 1e-800, far below float64's range; the scan is still right."""
    a = torch.full((1, 800, 2), 0.1, dtype=torch.float64)
    b = torch.full((1, 800, 2), 0.9, dtype=torch.float64)
    h = torch.exp(log_space_scan(a.log(), b.log()))
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, linear_recurrence_loop(a, b), rtol=1e-10, atol=0)


def test_g_is_positive_continuous_and_log_g_is_its_log():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    assert (g(x) > 0).all()
    torch.testing.assert_close(log_g(x), torch.log(g(x)))
    assert abs(g(torch.tensor(-1e-9)) - g(torch.tensor(0.0))) < 1e-8  # no jump at 0
    assert torch.isfinite(log_g(torch.tensor([-200.0]))).all()  # log sigmoid, not log of 0


# --- the minGRU ---------------------------------------------------------------------------------------
def test_min_gru_scan_equals_loop_values_and_gradients():
    torch.manual_seed(0)
    cell = MinGRU(4, 6).double()
    x = torch.randn(3, 40, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(3, 6, dtype=torch.float64) + 0.1
    for start in (None, h0):
        scanned, looped = cell.scan(x, start), cell.loop(x, start)
        torch.testing.assert_close(scanned, looped, rtol=1e-10, atol=1e-12)
        weights = torch.randn_like(looped)
        grads_scan = torch.autograd.grad((scanned * weights).sum(), [x, *cell.parameters()])
        grads_loop = torch.autograd.grad((looped * weights).sum(), [x, *cell.parameters()])
        for a, b in zip(grads_scan, grads_loop):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_min_gru_in_float32_over_2000_steps():
    torch.manual_seed(0)
    cell = MinGRU(4, 6)
    x = torch.randn(2, 2000, 4)
    reference = cell.double().loop(x.double()).float()
    cell.float()
    torch.testing.assert_close(cell.scan(x), reference, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(cell.loop(x), reference, rtol=1e-4, atol=1e-6)


def test_min_gru_step_and_the_choice_of_loop_or_scan():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 3)
    cell = MinGRU(3, 5)
    states = cell.loop(x)
    h = torch.zeros(2, 5)
    for t in range(9):
        h = cell.step(x[:, t], h)
        torch.testing.assert_close(h, states[:, t])
    output, h_n = cell(x)  # as nn.GRU(batch_first=True): every state, and the last one
    assert torch.equal(output, states) and torch.equal(h_n[0], states[:, -1])  # on a CPU the default is the loop
    cell.parallel = True
    torch.testing.assert_close(cell(x)[0], states)  # the scan: the same states, up to round-off


def test_padded_min_gru_ignores_padding_and_reads_each_review_both_ways():
    torch.manual_seed(0)
    layer = PaddedMinGRU(3, 4, num_layers=2, bidirectional=True).eval()
    x = torch.randn(3, 7, 3)
    lengths = torch.tensor([7, 2, 5])
    output, h_n = layer(x, lengths)
    assert output.shape == (3, 7, 8) and h_n.shape == (4, 3, 4)
    longer, h_longer = layer(torch.cat([x, torch.randn(3, 4, 3)], 1), lengths)
    torch.testing.assert_close(longer[:, :7], output)
    torch.testing.assert_close(h_longer, h_n)
    for i, n in enumerate(lengths.tolist()):  # each review alone, without padding
        alone, h_alone = layer(x[i:i + 1, :n], lengths[i:i + 1])
        torch.testing.assert_close(alone[0], output[i, :n])
        torch.testing.assert_close(h_alone[:, 0], h_n[:, i])
    assert (output[1, 2:] == 0).all()


# --- the Transformer encoder ----------------------------------------------------------------------------
def test_padded_transformer_ignores_padding_in_training_and_eval_without_warnings():
    torch.manual_seed(0)
    layer = PaddedTransformer(8, num_heads=2, feedforward=16, num_layers=2, dropout=0.0)
    x = torch.randn(3, 6, 8)
    lengths = torch.tensor([6, 1, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in (layer.train, layer.eval):
            mode()
            output, h_n = layer(x, lengths)
            longer, _ = layer(torch.cat([x, torch.randn(3, 5, 8)], 1), lengths)
            torch.testing.assert_close(longer[:, :6], output, rtol=1e-5, atol=1e-5)
            assert (output[1, 1:] == 0).all() and h_n.shape == (1, 3, 8)
            torch.testing.assert_close(h_n[0, 2], output[2, 3])
            alone, _ = layer(x[2:3, :4], lengths[2:3])
            torch.testing.assert_close(alone[0], output[2, :4], rtol=1e-5, atol=1e-5)


def test_attention_weights_get_no_dropout_and_sizes_must_fit():
    layer = PaddedTransformer(8, num_heads=2, feedforward=16, num_layers=1, dropout=0.3)
    assert layer.encoder.layers[0].self_attn.dropout == 0.0
    assert layer.encoder.layers[0].dropout1.p == 0.3
    with pytest.raises(ValueError, match="multiple of num_heads"):
        PaddedTransformer(10, num_heads=4, feedforward=16)


# --- as encoders of SentimentClassifier ---------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    dict(cell="mingru", bidirectional=True, pooling="last+max+mean", dropout=0.2, embedding_dropout=0.2),
    dict(cell="mingru", pooling="last"),
    dict(cell="transformer", pooling="max+mean", num_heads=2, num_layers=2, dropout=0.1),
    dict(cell="transformer", pooling="attention-pool", num_heads=3),
])
def test_sentiment_classifier_with_the_new_encoders(options, tmp_path):
    torch.manual_seed(0)
    model = build_model(40, embedding_dim=6, hidden_size=5, **options)
    ids, lengths = padded_ids([7, 3, 5, 1])
    assert model(ids, lengths).shape == (4,)
    model(ids, lengths).sum().backward()
    model.eval()
    width = (6 if options["cell"] == "transformer" else 5 * (2 if options.get("bidirectional") else 1))
    parts = 1 if options["pooling"] == "attention-pool" else len(options["pooling"].split("+"))
    assert model.features(ids, lengths).shape == (4, width * parts)
    path = save_checkpoint(tmp_path / "m.pt", model)
    again, _ = load_checkpoint(path)
    with torch.no_grad():
        torch.testing.assert_close(again(ids, lengths), model(ids, lengths))
        prefixes = model.prefix_logits(ids[0])
        for n in (1, 4, 7):
            torch.testing.assert_close(prefixes[n - 1], model(ids[:1, :n], torch.tensor([n]))[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options, match", [
    (dict(cell="transformer", pooling="last"), "no final state"),
    (dict(cell="transformer", pooling="mean", bidirectional=True), "both ways"),
    (dict(cell="transformer", pooling="mean", num_heads=4), "multiple of num_heads"),
    (dict(cell="mamba"), "cell must be one of"),
])
def test_bad_configs_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(vocab_size=40, embedding_dim=6, **options)


# --- lesson 10's recipes ------------------------------------------------------------------------------------
def test_each_lesson_10_recipe_uses_the_learning_rate_its_search_chose():
    from course_utils.train import LEARNING_RATE_SEARCH, RECIPES
    for name, accuracy_by_lr in LEARNING_RATE_SEARCH.items():
        assert len(accuracy_by_lr) >= 3, name
        best = max(accuracy_by_lr, key=accuracy_by_lr.get)  # the first of equal ones: the smaller rate
        assert RECIPES[name].lr == best, name
        # the best is inside the grid: a smaller and a larger rate were tried, and both did worse
        peak = accuracy_by_lr[best]
        assert any(lr < best and acc < peak for lr, acc in accuracy_by_lr.items()), name
        assert any(lr > best and acc < peak for lr, acc in accuracy_by_lr.items()), name
        assert RECIPES[name].description.startswith("lesson 10:")


@pytest.mark.parametrize("name", ["bilstm-small", "transformer-small", "mingru-small", "transformer", "mingru"])
def test_lesson_10_recipes_train_on_a_tiny_folder(name, tmp_path, monkeypatch):
    from course_utils.train import prepare_imdb, train_model
    from test_train_cli import write_tiny_imdb
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    folder = write_tiny_imdb(tmp_path / "imdb")
    result = train_model(name, prepare_imdb(folder=folder), epochs=1, progress=False, log=None)
    assert 0 <= result.test_acc <= 1 and result.checkpoint.is_file()
    summary = result.summary()
    assert summary["model"] == name and summary["parameters"] == sum(p.numel() for p in result.model.parameters())
