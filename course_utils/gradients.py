"""How much gradient reaches each step of a sequence (lessons 1 and 2).

A recurrent network that reads a review of ``T`` words and is judged on its final hidden state
``h_T`` learns from the word at step ``t`` only through the gradient that backpropagation through
time carries from step ``T`` back to step ``t``. This module measures that gradient and draws it:

- :func:`gradient_norms` -- the norm of the gradient reaching the input at each step, for any
  ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (lesson 1 writes it out, lesson 2 reuses it);
- :func:`set_spectral_radius` and :func:`rnn_with_spectral_radius` -- a plain RNN whose
  recurrent matrix ``W_hh`` has a chosen spectral radius (the knob that decides between
  vanishing and exploding gradients);
- :func:`plot_gradient_norms` -- the picture: one curve per model, log scale;
- :func:`rnn_gradient_norms` and :func:`draw_rnn_gradients` -- what the slider of lesson 1
  computes and draws (plain functions), and
  :func:`gradient_explorer`, the slider itself (a thin ``ipywidgets.interactive`` wrapper).

Nothing here runs at import time.
"""

from __future__ import annotations

import copy
from typing import Mapping

import matplotlib.pyplot as plt
import torch
from torch import nn


def gradient_norms(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Norm of the gradient that reaches the input at each step, shape ``(seq_len,)``.

    ``model`` is a ``batch_first=True`` recurrent layer (``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``)
    and ``x`` its input of shape ``(batch, seq_len, input_size)``. The "loss" is the sum of the
    final hidden state, ``L = h_T.sum()``: a stand-in for a classifier that reads ``h_T``.
    Entry ``t`` of the result is ``||dL/dx_t||`` (over the whole batch): how strongly the loss
    reacts to the input at step ``t``, i.e. how much the weights can learn from that step.

    The computation runs in float64 on a copy of the model: vanishing gradients quickly become
    smaller than the smallest *normal* float32 number (``torch.finfo(torch.float32).tiny``, about
    1.2e-38; below it float32 keeps fewer and fewer digits, down to about 1.4e-45) and round to 0.
    """
    model = copy.deepcopy(model).to(torch.float64)
    x = x.detach().to(torch.float64).requires_grad_(True)
    output, _ = model(x)
    loss = output[:, -1].sum()  # output[:, -1] is h_T, the last layer's final hidden state
    loss.backward()
    return x.grad.norm(dim=(0, 2))


def set_spectral_radius(weight: torch.Tensor, radius: float) -> torch.Tensor:
    """Rescale the square matrix ``weight`` in place so that its spectral radius is ``radius``.

    The spectral radius is the largest absolute value of the eigenvalues. It is the rate at
    which ``W^k`` grows or shrinks as ``k`` grows: ``||W^k||`` behaves like ``radius**k``.
    Returns ``weight`` for convenience.
    """
    with torch.no_grad():
        current = torch.linalg.eigvals(weight).abs().max()
        weight.mul_(radius / current)
    return weight


def rnn_with_spectral_radius(
    input_size: int, hidden_size: int, radius: float, seed: int = 0
) -> nn.RNN:
    """A one-layer ``nn.RNN`` (tanh, ``batch_first=True``) whose ``W_hh`` has spectral radius ``radius``.

    ``W_hh`` is first drawn from a standard normal distribution, then rescaled; the other
    weights keep PyTorch's default initialisation. ``seed`` makes it reproducible.
    """
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream untouched
        torch.manual_seed(seed)
        rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        with torch.no_grad():
            rnn.weight_hh_l0.normal_()
    set_spectral_radius(rnn.weight_hh_l0, radius)
    return rnn


def plot_gradient_norms(
    curves: Mapping[str, torch.Tensor],
    ax: plt.Axes | None = None,
    title: str = "Gradient reaching each step",
) -> plt.Axes:
    """Draw one curve per entry of ``curves`` (label -> norms from :func:`gradient_norms`).

    The y axis is logarithmic: vanishing gradients fall on a straight line going down to the
    left, exploding ones go up. Returns the matplotlib ``Axes``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, norms in curves.items():
        norms = torch.as_tensor(norms, dtype=torch.float64)
        steps = torch.arange(len(norms))
        ax.plot(steps.numpy(), norms.numpy(), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step t (the loss is computed at the last step)")
    ax.set_ylabel(r"gradient norm $\|\partial L / \partial x_t\|$")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return ax


def rnn_gradient_norms(
    spectral_radius: float = 1.0,
    seq_len: int = 100,
    input_size: int = 8,
    hidden_size: int = 32,
    batch_size: int = 16,
    input_scale: float = 0.5,
    seed: int = 0,
) -> torch.Tensor:
    """:func:`gradient_norms` of a plain RNN with the given ``spectral_radius``, on random input.

    The RNN comes from :func:`rnn_with_spectral_radius`; the input is random (normal, times
    ``input_scale``) and the same for every radius with the same ``seed``. This is what the
    slider of lesson 1 draws; the lesson calls it directly to answer the slider's questions.
    """
    rnn = rnn_with_spectral_radius(input_size, hidden_size, spectral_radius, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, seq_len, input_size, generator=generator) * input_scale
    return gradient_norms(rnn, x)


def draw_rnn_gradients(
    spectral_radius: float = 1.0,
    seq_len: int = 100,
    ax: plt.Axes | None = None,
    input_size: int = 8,
    hidden_size: int = 32,
    batch_size: int = 16,
    input_scale: float = 0.5,
    seed: int = 0,
) -> torch.Tensor:
    """Plot :func:`rnn_gradient_norms` (same arguments): the gradient reaching each step.

    Returns the norms so that a caller (or a test) can check what was drawn. The slider of
    lesson 1 calls this.
    """
    norms = rnn_gradient_norms(spectral_radius, seq_len, input_size, hidden_size, batch_size,
                               input_scale, seed)
    plot_gradient_norms(
        {f"spectral radius {spectral_radius:.2f}": norms},
        ax=ax,
        title=f"Plain RNN, {seq_len} steps",
    )
    return norms


def gradient_explorer(
    spectral_radius: float = 1.0, seq_len: int = 100
):  # -> ipywidgets.interactive (not imported at module level)
    """Two sliders (spectral radius, sequence length) that redraw :func:`draw_rnn_gradients`.

    A thin wrapper: all the drawing is in :func:`draw_rnn_gradients`. Uses only
    ``ipywidgets.interactive``, ``FloatSlider`` and ``IntSlider``, which behave the same in
    ipywidgets 7.7 (Google Colab) and 8. Display the returned widget in a notebook.
    """
    from ipywidgets import FloatSlider, IntSlider, interactive

    def redraw(spectral_radius: float, seq_len: int) -> None:
        draw_rnn_gradients(spectral_radius, seq_len)
        plt.show()

    return interactive(
        redraw,
        spectral_radius=FloatSlider(
            value=spectral_radius, min=0.1, max=2.5, step=0.05,
            description="radius", continuous_update=False,
        ),
        seq_len=IntSlider(
            value=seq_len, min=10, max=300, step=10,
            description="seq_len", continuous_update=False,
        ),
    )
