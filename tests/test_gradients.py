"""Tests of course_utils.gradients: the gradient reaching each step, and its pictures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_utils.gradients import (  # noqa: E402
    draw_rnn_gradients,
    rnn_gradient_norms,
    gradient_explorer,
    gradient_norms,
    plot_gradient_norms,
    rnn_with_spectral_radius,
    set_spectral_radius,
)


def manual_input_gradient_norms(rnn: nn.RNN, x: torch.Tensor) -> torch.Tensor:
    """Reference: the same quantity, with a hand-written loop over the steps."""
    x = x.double().clone().requires_grad_(True)
    w_ih, w_hh, b_ih, b_hh = (p.detach().double() for p in
                              (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0))
    h = torch.zeros(x.shape[0], w_hh.shape[0], dtype=torch.float64)
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
    h.sum().backward()
    return torch.stack([x.grad[:, t].norm() for t in range(x.shape[1])])


def test_gradient_norms_equals_a_manual_loop():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 5, batch_first=True)
    x = torch.randn(4, 7, 3)
    norms = gradient_norms(rnn, x)
    assert norms.shape == (7,) and norms.dtype == torch.float64
    assert torch.allclose(norms, manual_input_gradient_norms(rnn, x))


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_gradient_norms_works_for_every_recurrent_layer_and_leaves_it_alone(cls):
    torch.manual_seed(0)
    model = cls(3, 5, batch_first=True)
    before = [p.detach().clone() for p in model.parameters()]
    norms = gradient_norms(model, torch.randn(2, 6, 3))
    assert norms.shape == (6,) and torch.all(norms > 0)
    for p, q in zip(model.parameters(), before):
        assert p.dtype == torch.float32 and p.grad is None and torch.equal(p, q)


def test_only_the_last_step_reaches_the_loss_without_recurrence():
    rnn = nn.RNN(3, 4, batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.zero_()
    norms = gradient_norms(rnn, torch.randn(2, 5, 3))
    assert torch.all(norms[:-1] == 0) and norms[-1] > 0


def test_float64_keeps_tiny_gradients_that_float32_would_round_to_zero():
    rnn = rnn_with_spectral_radius(4, 16, radius=0.3)
    norms = gradient_norms(rnn, torch.randn(2, 120, 4))
    assert 0 < norms[0] < 1e-45  # below float32's smallest positive number


def test_set_spectral_radius():
    torch.manual_seed(0)
    weight = torch.randn(6, 6)
    same = set_spectral_radius(weight, 0.7)
    assert same is weight
    assert torch.linalg.eigvals(weight).abs().max().item() == pytest.approx(0.7, rel=1e-5)


def test_rnn_with_spectral_radius_is_reproducible_and_keeps_the_global_stream():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    first = rnn_with_spectral_radius(3, 8, 1.5, seed=1)
    assert torch.equal(torch.rand(2), expected)
    second = rnn_with_spectral_radius(3, 8, 1.5, seed=1)
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
    radius = torch.linalg.eigvals(first.weight_hh_l0.detach()).abs().max().item()
    assert radius == pytest.approx(1.5, rel=1e-5)


def test_small_radius_vanishes_and_large_radius_explodes():
    fig, ax = plt.subplots()
    small = draw_rnn_gradients(0.5, 60, ax=ax)
    large = draw_rnn_gradients(2.0, 60, ax=ax)
    plt.close(fig)
    assert small[0] < 1e-10 * small[-1]
    assert large[0] > 10 * large[-1]


def test_plot_gradient_norms_draws_labelled_log_scale_curves():
    curves = {"a": torch.tensor([1e-8, 1e-4, 1.0]), "b": torch.tensor([10.0, 3.0, 1.0])}
    ax = plot_gradient_norms(curves, title="T")
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "T"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([1e-8, 1e-4, 1.0])
    plt.close(ax.figure)


def test_draw_rnn_gradients_draws_what_it_returns():
    fig, ax = plt.subplots()
    norms = draw_rnn_gradients(1.2, 30, ax=ax)
    assert len(ax.lines) == 1 and len(norms) == 30
    assert list(ax.lines[0].get_ydata()) == pytest.approx(norms.tolist())
    assert "1.20" in ax.get_legend().get_texts()[0].get_text()
    plt.close(fig)


def test_gradient_explorer_is_two_sliders_and_an_output(monkeypatch):
    calls = []
    monkeypatch.setattr("course_utils.gradients.draw_rnn_gradients",
                        lambda radius, seq_len: calls.append((radius, seq_len)))
    monkeypatch.setattr(plt, "show", lambda: None)
    widget = gradient_explorer(spectral_radius=0.8, seq_len=40)
    radius_slider, length_slider = widget.children[:2]
    assert (radius_slider.value, length_slider.value) == (0.8, 40)
    # ipywidgets 8 draws once when the widget is created, 7.7 when it is displayed: both call update()
    calls.clear()
    widget.update()
    assert calls == [(0.8, 40)]
    length_slider.value = 120  # moving a slider redraws
    assert calls[-1] == (0.8, 120)
    radius_slider.value = 1.5
    assert calls[-1] == (1.5, 120)


def test_draw_rnn_gradients_draws_rnn_gradient_norms():
    _, ax = plt.subplots()
    assert torch.equal(draw_rnn_gradients(1.3, 25, ax=ax), rnn_gradient_norms(1.3, 25))
    assert not torch.equal(rnn_gradient_norms(1.3, 25), rnn_gradient_norms(0.7, 25))
    plt.close("all")
