"""Diagrams of the networks, drawn with matplotlib, so that every picture in the lessons is made by
the course's own code (no hot-linked images) and renders on GitHub, nbviewer and Colab.

Each function draws one picture and returns its ``Figure`` (display it with ``plt.show()``, or
save it with ``fig.savefig(...)``). The pictures follow PyTorch's conventions exactly, so they
can be read next to the code:

- :func:`draw_unrolled_rnn` -- lesson 1: one RNN cell, unrolled over the steps of a sequence,
  with the same weights at every step;
- :func:`draw_lstm_cell` and :func:`draw_gru_cell` -- lesson 2: the gates, in PyTorch's order
  (i, f, g, o and r, z, n), and where the GRU's reset gate acts;
- :func:`draw_packed_batch` -- lesson 4: how ``pack_padded_sequence`` lays a batch out
  (``data`` step by step, ``batch_sizes``, ``sorted_indices``), computed by PyTorch itself;
- :func:`draw_bidirectional` -- lesson 4: the two directions of a bidirectional layer, and why
  the backward one goes wrong on right-padded input.
- :func:`draw_sentiment_model` -- lesson 5: the classifier from token ids to P(positive): the
  embedding, a bidirectional LSTM over the real steps, the final states ``h_n[-2]``, ``h_n[-1]``,
  max and mean pooling, the linear head.
- :func:`draw_language_model` -- lesson 8: a language model reading a stream in chunks: at every
  step the target is the next word; the state goes on to the next chunk, its graph is cut (detach).
- :func:`draw_dependencies` -- lesson 10: what each step waits for in an LSTM (the previous state,
  through its gates), a minGRU (only the cheap mix, which a scan computes in parallel) and
  self-attention (nothing: every output reads every input).

Nothing is drawn at import time.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from torch.nn.utils.rnn import pack_padded_sequence

#: One colour per sequence of a batch (drawn in this order), and the colours of the parts of a cell.
SEQUENCE_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
GATE_COLOR = "#f6d776"      # sigmoid gates
TANH_COLOR = "#9ecae1"      # tanh layers
STATE_COLOR = "#e5e5e5"     # states (h, c, x)
PAD_COLOR = "#d9d9d9"


# ---------------------------------------------------------------------------------------------
# small drawing helpers
# ---------------------------------------------------------------------------------------------

def _blank_axes(figsize: tuple[float, float], xlim: tuple[float, float], ylim: tuple[float, float]):
    """A figure with one axes in data units, equal aspect, no frame or ticks."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _box(ax, x: float, y: float, text: str, width: float = 1.0, height: float = 0.6,
         color: str = STATE_COLOR, fontsize: float = 11, textcolor: str = "black") -> None:
    """A rounded box centred at (x, y) with ``text`` in it."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="black", linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=textcolor)


def _op(ax, x: float, y: float, symbol: str, radius: float = 0.22, fontsize: float = 12) -> None:
    """A point-wise operation (``×``, ``+``, ``tanh``, ``1−``) drawn as a small circle."""
    ax.add_patch(Circle((x, y), radius, facecolor="white", edgecolor="black", linewidth=1.2, zorder=3))
    ax.text(x, y, symbol, ha="center", va="center", fontsize=fontsize, zorder=4)


def _arrow(ax, start, end, color: str = "black", style: str = "-|>", linewidth: float = 1.4,
           connectionstyle: str = "arc3", shrink: float = 0.0) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=13, color=color,
                                 linewidth=linewidth, connectionstyle=connectionstyle,
                                 shrinkA=shrink, shrinkB=shrink, zorder=2))


def _line(ax, points: Sequence[tuple[float, float]], color: str = "black", linewidth: float = 1.4,
          arrow: bool = True) -> None:
    """A polyline through ``points``; with ``arrow``, an arrow head on its last segment."""
    xs, ys = zip(*points)
    if arrow and len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], color=color, linewidth=linewidth, zorder=2, solid_capstyle="round")
        _arrow(ax, points[-2], points[-1], color=color, linewidth=linewidth)
    elif arrow:
        _arrow(ax, points[0], points[1], color=color, linewidth=linewidth)
    else:
        ax.plot(xs, ys, color=color, linewidth=linewidth, zorder=2)


def figure_texts(fig: Figure) -> list[str]:
    """Every text drawn in ``fig`` (titles, labels, annotations): what a test can check."""
    texts = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        texts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.texts]
        if ax.axison:  # tick labels only where the axes are shown
            texts += [label.get_text() for label in ax.get_xticklabels() + ax.get_yticklabels()]
    return [t for t in texts if t]


# ---------------------------------------------------------------------------------------------
# lesson 1: the RNN, unrolled
# ---------------------------------------------------------------------------------------------

def draw_unrolled_rnn(steps: int = 4) -> Figure:
    """An RNN cell (left) and the same cell unrolled over ``steps`` steps (right).

    Every copy of the cell computes ``h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)`` with
    the **same** weights: unrolling adds steps, not parameters. ``h_0`` enters on the left; the
    states ``h_1 .. h_T`` are ``output``, and the last one is ``h_n``.
    """
    if steps < 2:
        raise ValueError(f"draw_unrolled_rnn() needs at least 2 steps, got {steps}.")
    width = 4.2 + 2.2 * steps
    fig, ax = _blank_axes((min(2.0 + 1.15 * steps + 2.5, 12), 4.2), (-0.6, width), (-0.5, 4.1))

    # the folded cell, with its loop
    _box(ax, 0.9, 1.8, "tanh", width=1.1, height=0.8, color=TANH_COLOR, fontsize=12)
    _box(ax, 0.9, 0.2, "$x_t$")
    _box(ax, 0.9, 3.4, "$h_t$")
    _arrow(ax, (0.9, 0.5), (0.9, 1.4))
    _arrow(ax, (0.9, 2.2), (0.9, 3.1))
    _arrow(ax, (1.45, 2.0), (1.45, 1.6), connectionstyle="arc3,rad=-2.6")
    ax.text(2.2, 1.8, "$W_{hh}$", ha="left", va="center", fontsize=11)
    ax.text(1.0, 0.95, "$W_{ih}$", ha="left", va="center", fontsize=10)
    ax.text(2.95, 1.8, "=", ha="center", va="center", fontsize=20)
    ax.text(0.9, -0.45, "the cell", ha="center", va="center", fontsize=11, style="italic")

    # the unrolled chain
    left = 3.6
    _box(ax, left, 1.8, "$h_0$")
    for k in range(steps):
        t = k + 1
        x = left + 2.2 * t
        _box(ax, x, 1.8, "tanh", width=1.1, height=0.8, color=TANH_COLOR, fontsize=12)
        _box(ax, x, 0.2, f"$x_{t}$")
        _box(ax, x, 3.4, f"$h_{t}$")
        _arrow(ax, (x, 0.5), (x, 1.4))
        _arrow(ax, (x, 2.2), (x, 3.1))
        ax.text(x + 0.08, 0.95, "$W_{ih}$", ha="left", va="center", fontsize=10)
        _arrow(ax, (x - 2.2 + (0.5 if k == 0 else 0.55), 1.8), (x - 0.55, 1.8))
        ax.text(x - 1.1, 1.93, "$W_{hh}$", ha="center", va="bottom", fontsize=10)
    ax.text(left + 1.1 + 1.1 * steps, -0.45,
            f"unrolled over {steps} steps: the same $W_{{ih}}$, $W_{{hh}}$, $b_{{ih}}$, $b_{{hh}}$ at every step",
            ha="center", va="center", fontsize=11, style="italic")
    last = left + 2.2 * steps
    ax.text(last + 0.6, 3.4, "= h_n", ha="left", va="center", fontsize=11)
    ax.text(left + 2.2 + 0.5, 3.95, "output = the states $h_1 \\dots h_T$ (top row)",
            ha="left", va="center", fontsize=10)
    ax.set_title("An RNN unrolled in time: $h_t = \\tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$",
                 fontsize=12)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# lesson 2: the LSTM and the GRU cell
# ---------------------------------------------------------------------------------------------

def draw_lstm_cell() -> Figure:
    """PyTorch's LSTM cell: the four gate layers in the order of ``weight_ih_l0``'s rows (i, f, g, o).

    The cell state runs along the top: ``c_t = f_t ⊙ c_(t-1) + i_t ⊙ g_t``, with no matrix
    product on the way (the path the gradient crosses long sequences on). The output is
    ``h_t = o_t ⊙ tanh(c_t)``.
    """
    fig, ax = _blank_axes((10, 5.6), (-1.4, 11.6), (-1.6, 6.0))
    ax.add_patch(FancyBboxPatch((0.2, -0.2), 9.4, 5.1, boxstyle="round,pad=0.05,rounding_size=0.3",
                                facecolor="#fbfbfb", edgecolor="gray", linewidth=1.0, zorder=0))
    top, gate_y, bus_y = 4.2, 1.6, 0.35

    # inputs and the shared "bus" [h_(t-1), x_t] feeding the four gate layers
    _box(ax, -0.6, top, "$c_{t-1}$")
    _box(ax, -0.6, bus_y, "$h_{t-1}$")
    _box(ax, 1.4, -1.15, "$x_t$")
    _line(ax, [(1.4, -0.85), (1.4, bus_y)], arrow=False)
    _line(ax, [(-0.1, bus_y), (7.4, bus_y)], arrow=False)

    gates = [  # (name, x, activation, colour, PyTorch rows)
        ("f", 2.0, "σ", GATE_COLOR, "H:2H"),
        ("i", 3.7, "σ", GATE_COLOR, "0:H"),
        ("g", 5.0, "tanh", TANH_COLOR, "2H:3H"),
        ("o", 7.4, "σ", GATE_COLOR, "3H:4H"),
    ]
    for name, x, activation, color, rows in gates:
        _line(ax, [(x, bus_y), (x, gate_y - 0.35)])
        _box(ax, x, gate_y, activation, width=0.95, height=0.7, color=color, fontsize=12)
        ax.text(x + 0.12, gate_y + 0.62, f"${name}_t$", ha="left", va="center", fontsize=12)
        ax.text(x - 0.08, gate_y - 0.62, f"rows {rows}", ha="right", va="center", fontsize=8.5, color="dimgray")

    # cell state path: c_(t-1) -> (x f) -> (+ i g) -> c_t
    _line(ax, [(-0.1, top), (1.78, top)], arrow=True)
    _op(ax, 2.0, top, "×")
    _line(ax, [(2.0, gate_y + 0.35), (2.0, top - 0.22)])
    _line(ax, [(2.22, top), (4.13, top)])
    _op(ax, 4.35, top, "+")
    _op(ax, 4.35, 2.95, "×")
    _line(ax, [(3.7, gate_y + 0.35), (3.7, 2.95), (4.13, 2.95)])
    _line(ax, [(5.0, gate_y + 0.35), (5.0, 2.95), (4.57, 2.95)])
    _line(ax, [(4.35, 3.17), (4.35, top - 0.22)])
    _line(ax, [(4.57, top), (10.6, top)])
    _box(ax, 11.0, top, "$c_t$")

    # output: h_t = o ⊙ tanh(c_t)
    _op(ax, 8.6, 3.2, "tanh", radius=0.34, fontsize=9)
    _line(ax, [(8.6, top), (8.6, 3.54)])
    _op(ax, 8.6, 1.6, "×")
    _line(ax, [(8.6, 2.86), (8.6, 1.82)])
    _line(ax, [(7.88, gate_y), (8.38, gate_y)])
    _line(ax, [(8.82, 1.6), (9.2, 1.6), (9.2, bus_y), (10.6, bus_y)])
    _box(ax, 11.0, bus_y, "$h_t$")
    _line(ax, [(9.2, 1.6), (9.2, 5.25)], arrow=True)
    ax.text(9.3, 5.35, "$h_t$ (output)", ha="left", va="center", fontsize=10)

    ax.text(5.0, 5.35, "$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$", ha="center", va="center", fontsize=12)
    ax.text(2.6, -0.75, "$h_t = o_t \\odot \\tanh(c_t)$", ha="left", va="center", fontsize=12)
    ax.text(2.6, -1.3, "each gate layer reads $h_{t-1}$ and $x_t$: e.g. "
            "$f_t = \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf})$",
            ha="left", va="center", fontsize=10)
    ax.set_title("LSTM cell (nn.LSTM): weight_ih_l0 and weight_hh_l0 stack the gates in the order i, f, g, o",
                 fontsize=12)
    fig.tight_layout()
    return fig


def draw_gru_cell() -> Figure:
    """PyTorch's GRU cell: gates in the order of ``weight_ih_l0``'s rows (r, z, n).

    The reset gate multiplies ``W_hn h_(t-1) + b_hn`` (the result of the matrix product, bias
    included), not ``h_(t-1)`` as in Cho et al. (2014); ``z_t`` close to 1 keeps the old state:
    ``h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_(t-1)``.
    """
    fig, ax = _blank_axes((10, 5.6), (-1.4, 11.6), (-1.7, 5.9))
    ax.add_patch(FancyBboxPatch((0.2, -0.2), 9.4, 5.0, boxstyle="round,pad=0.05,rounding_size=0.3",
                                facecolor="#fbfbfb", edgecolor="gray", linewidth=1.0, zorder=0))
    top, gate_y, bus_y, z_y, cand_y = 4.3, 1.5, 0.3, 3.3, 2.4

    # h_(t-1) along the top; it also drops into the bus [h_(t-1), x_t] that feeds z, r and W_hn
    _box(ax, -0.6, top, "$h_{t-1}$")
    _box(ax, 1.0, -1.15, "$x_t$")
    _line(ax, [(-0.1, top), (6.28, top)])
    _line(ax, [(0.5, top), (0.5, bus_y), (4.6, bus_y)], arrow=False)
    _line(ax, [(1.0, -0.85), (1.0, bus_y)], arrow=False)

    for name, x, rows in (("z", 1.6, "H:2H"), ("r", 2.9, "0:H")):
        _line(ax, [(x, bus_y), (x, gate_y - 0.35)])
        _box(ax, x, gate_y, "σ", width=0.95, height=0.7, color=GATE_COLOR, fontsize=12)
        ax.text(x + 0.12, gate_y + 0.62, f"${name}_t$", ha="left", va="center", fontsize=12)
        ax.text(x - 0.08, gate_y - 0.62, f"rows {rows}", ha="right", va="center", fontsize=8.5, color="dimgray")

    # the candidate n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_(t-1) + b_hn))
    _box(ax, 4.6, 1.3, "$W_{hn} h_{t-1} + b_{hn}$", width=2.0, height=0.6, fontsize=10)
    _line(ax, [(4.6, bus_y), (4.6, 1.0)])
    _box(ax, 6.9, 1.3, "$W_{in} x_t + b_{in}$", width=1.8, height=0.6, fontsize=10)
    _line(ax, [(1.0, -0.6), (6.9, -0.6), (6.9, 1.0)])
    _op(ax, 4.6, cand_y, "×")
    _line(ax, [(4.6, 1.6), (4.6, cand_y - 0.22)])
    _line(ax, [(2.9, gate_y + 0.35), (2.9, cand_y), (4.38, cand_y)])
    ax.text(4.6, cand_y + 0.45, "reset: after the product", ha="center", va="center", fontsize=9,
            color="firebrick")
    _op(ax, 6.9, cand_y, "+")
    _line(ax, [(4.82, cand_y), (6.68, cand_y)])
    _line(ax, [(6.9, 1.6), (6.9, cand_y - 0.22)])
    _box(ax, 8.05, cand_y, "tanh", width=0.95, height=0.6, color=TANH_COLOR, fontsize=12)
    _line(ax, [(7.12, cand_y), (7.57, cand_y)])
    ax.text(8.05, cand_y - 0.55, "rows 2H:3H", ha="center", va="center", fontsize=8.5, color="dimgray")
    _line(ax, [(8.53, cand_y), (9.0, cand_y), (9.0, z_y - 0.22)])
    ax.text(9.1, cand_y + 0.3, "$n_t$", ha="left", va="center", fontsize=12)

    # the update h_t = z_t ⊙ h_(t-1) + (1 - z_t) ⊙ n_t
    _line(ax, [(1.6, gate_y + 0.35), (1.6, z_y), (6.5, z_y), (6.5, top - 0.22)])
    _op(ax, 6.5, top, "×")
    _op(ax, 7.75, z_y, "1−", fontsize=10)
    _line(ax, [(6.5, z_y), (7.53, z_y)])
    _op(ax, 9.0, z_y, "×")
    _line(ax, [(7.97, z_y), (8.78, z_y)])
    _op(ax, 9.0, top, "+")
    _line(ax, [(6.72, top), (8.78, top)])
    _line(ax, [(9.0, z_y + 0.22), (9.0, top - 0.22)])
    _line(ax, [(9.22, top), (10.6, top)])
    _box(ax, 11.0, top, "$h_t$")

    ax.text(5.0, 5.35, "$h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}$", ha="center", va="center",
            fontsize=12)
    ax.text(2.0, -1.2, "$n_t = \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn}))$",
            ha="left", va="center", fontsize=11)
    ax.set_title("GRU cell (nn.GRU): gates in the order r, z, n; the reset gate multiplies $W_{hn} h_{t-1} + b_{hn}$",
                 fontsize=12)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# lesson 4: packing and bidirectional layers
# ---------------------------------------------------------------------------------------------

def _cell_name(sequence: int, step: int) -> str:
    """'A0', 'A1', ... for sequence 0, 'B0', ... for sequence 1: one letter per sequence."""
    return f"{chr(ord('A') + sequence)}{step}"


def draw_packed_batch(lengths: Sequence[int]) -> Figure:
    """How ``pack_padded_sequence(..., enforce_sorted=False)`` lays out a batch of these lengths.

    Top: the right-padded batch (``batch_first=True``), one row per sequence; cell ``B2`` is
    step 2 of sequence B; grey cells are padding. Bottom: ``packed.data``, time-major: step 0 of
    every sequence (longest first, the order of ``sorted_indices``), then step 1 of those still
    running, and so on; group ``t`` has ``batch_sizes[t]`` rows. The layout is computed by
    PyTorch's own ``pack_padded_sequence`` on a batch of cell numbers, so the picture is what
    PyTorch does.
    """
    lengths = [int(n) for n in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"draw_packed_batch() needs at least one sequence and lengths >= 1, got {lengths}.")
    if len(lengths) > len(SEQUENCE_COLORS):
        raise ValueError(f"draw_packed_batch() draws at most {len(SEQUENCE_COLORS)} sequences, got {len(lengths)}.")
    batch, longest = len(lengths), max(lengths)
    # cell (b, t) holds the number b * longest + t, so each packed row says where it came from
    cells = torch.arange(batch * longest).view(batch, longest)
    packed = pack_padded_sequence(cells, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    batch_sizes = packed.batch_sizes.tolist()
    sorted_indices = packed.sorted_indices.tolist()

    total = int(sum(lengths))
    fig_width = min(max(7.0, 0.55 * total + 2.5), 12.0)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(fig_width, 1.0 + 0.55 * batch + 2.3),
                                      gridspec_kw={"height_ratios": [batch + 1.2, 2.4]})
    for b, n in enumerate(lengths):
        y = batch - 1 - b
        for t in range(longest):
            real = t < n
            top.add_patch(plt.Rectangle((t + 0.04, y + 0.06), 0.92, 0.88,
                                        facecolor=SEQUENCE_COLORS[b] if real else PAD_COLOR,
                                        alpha=0.85 if real else 1.0, edgecolor="none"))
            top.text(t + 0.5, y + 0.5, _cell_name(b, t) if real else "pad", ha="center", va="center",
                     fontsize=10, color="white" if real else "dimgray", fontweight="bold" if real else None)
    top.set_xlim(0, longest)
    top.set_ylim(0, batch)
    top.set_xticks([t + 0.5 for t in range(longest)])
    top.set_xticklabels([f"t={t}" for t in range(longest)])
    top.set_yticks([batch - 1 - b + 0.5 for b in range(batch)])
    top.set_yticklabels([f"{chr(ord('A') + b)}: lengths[{b}] = {n}" for b, n in enumerate(lengths)])
    top.set_title("padded batch (batch_first=True): one row per sequence, grey = padding", fontsize=11)

    position = 0
    for t, n in enumerate(batch_sizes):
        for j in range(n):
            code = int(packed.data[position])
            b, step = divmod(code, longest)
            bottom.add_patch(plt.Rectangle((position + 0.04, 0.06), 0.92, 0.88,
                                           facecolor=SEQUENCE_COLORS[b], alpha=0.85, edgecolor="none"))
            bottom.text(position + 0.5, 0.5, _cell_name(b, step), ha="center", va="center", fontsize=10,
                        color="white", fontweight="bold")
            position += 1
        bottom.text(position - n / 2, 1.12, f"t={t}\n{n} row{'s' if n > 1 else ''}", ha="center",
                    va="bottom", fontsize=9)
        if t < len(batch_sizes) - 1:
            bottom.plot([position, position], [0, 1.9], color="black", linewidth=1.5)
    bottom.set_xlim(0, total)
    bottom.set_ylim(0, 2.0)
    bottom.set_xticks([])
    bottom.set_yticks([])
    bottom.set_title("packed.data: time-major, the rows the layer reads at each step", fontsize=11)
    for ax in (top, bottom):
        for spine in ax.spines.values():
            spine.set_visible(False)
    names = [chr(ord("A") + b) for b in sorted_indices]
    fig.text(0.5, 0.01, f"batch_sizes = {batch_sizes}\nsorted_indices = {sorted_indices} "
             f"(longest first: {', '.join(names)})", ha="center", va="bottom", fontsize=11,
             family="monospace")
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    return fig


def draw_bidirectional(length: int = 3, padded_to: int = 5) -> Figure:
    """A bidirectional layer on one right-padded review: ``length`` real tokens, padded to ``padded_to``.

    Top: on the padded batch, the forward direction reads ``w_0 .. w_(n-1)`` first (its output at
    step ``n - 1`` is right), but the backward direction starts at the last time step, on
    padding, and carries what it read into every one of its outputs. Bottom: packed (or
    reversed within the length), the backward direction starts at the review's own last token.
    At each step the layer's output is the concatenation ``[forward ; backward]``.
    """
    if not 1 <= length < padded_to:
        raise ValueError(f"draw_bidirectional() needs 1 <= length < padded_to, got {length} and {padded_to}.")
    spacing = 1.7
    width = spacing * padded_to + 2.8
    fig, axes = plt.subplots(2, 1, figsize=(min(2.0 + 1.55 * padded_to, 12), 7.2))
    panels = (
        (axes[0], True, "right-padded input, not packed: the backward direction starts on padding"),
        (axes[1], False, "packed (or reversed within the length): the backward direction starts at "
                         f"$w_{{{length - 1}}}$"),
    )
    for ax, reads_padding, title in panels:
        ax.set_xlim(-1.9, width - 1.9)
        ax.set_ylim(-0.6, 3.3)
        ax.set_aspect("equal")
        ax.axis("off")
        steps = padded_to if reads_padding else length
        for t in range(padded_to):
            x = spacing * t
            real = t < length
            _box(ax, x, 0.0, f"$w_{t}$" if real else "pad", width=1.05, height=0.55,
                 color=STATE_COLOR if real else PAD_COLOR, textcolor="black" if real else "dimgray")
        ax.text(-1.0, 1.2, "forward →", ha="right", va="center", fontsize=10, color="tab:blue")
        ax.text(-1.0, 2.4, "backward ←", ha="right", va="center", fontsize=10, color="tab:red")
        for t in range(steps):
            x = spacing * t
            real = t < length
            forward_ok = real
            backward_ok = not reads_padding
            if t < length or reads_padding:
                _box(ax, x, 1.2, "$\\overrightarrow{h}_{%d}$" % t, width=1.05, height=0.55,
                     color="#c6dbef" if forward_ok else "#eeeeee")
                _box(ax, x, 2.4, "$\\overleftarrow{h}_{%d}$" % t, width=1.05, height=0.55,
                     color="#fcbba1" if backward_ok else "#fb6a4a")
                _arrow(ax, (x, 0.28), (x, 0.92))
                _arrow(ax, (x + 0.3, 0.28), (x + 0.45, 2.12), connectionstyle="arc3,rad=0.35")
            if t + 1 < steps:
                _arrow(ax, (x + 0.53, 1.2), (x + spacing - 0.53, 1.2), color="tab:blue")
                _arrow(ax, (x + spacing - 0.53, 2.4), (x + 0.53, 2.4), color="tab:red")
        start_x = spacing * (steps - 1)
        ax.annotate("backward starts here", xy=(start_x, 2.7), xytext=(start_x, 3.15), ha="center",
                    va="center", fontsize=9.5, color="tab:red",
                    arrowprops={"arrowstyle": "-|>", "color": "tab:red"})
        if reads_padding:
            ax.text(spacing * (length - 1), -0.55,
                    "every $\\overleftarrow{h}_t$ has read the padding (dark red); "
                    f"$\\overrightarrow{{h}}_{{{length - 1}}}$ is still right",
                    ha="center", va="center", fontsize=9.5)
        else:
            ax.text(spacing * (length - 1) / 2, -0.55,
                    "final states: $\\overrightarrow{h}_{%d}$ (forward) and $\\overleftarrow{h}_{0}$ (backward)"
                    % (length - 1), ha="center", va="center", fontsize=9.5)
        ax.set_title(title, fontsize=11)
    fig.suptitle("A bidirectional layer: output at step t = [forward $\\overrightarrow{h}_t$ ; "
                 "backward $\\overleftarrow{h}_t$]", fontsize=12)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# lesson 5: the sentiment classifier, from token ids to P(positive)
# ---------------------------------------------------------------------------------------------

def draw_sentiment_model(tokens: Sequence[str] = ("a", "great", "film"), padded_to: int = 4) -> Figure:
    """Lesson 5's classifier on one right-padded review, bottom to top, with each tensor's shape.

    ids -> ``Embedding`` -> a bidirectional LSTM over the real steps only (``lengths``) -> the
    summaries the head reads: the final states ``h_n[-2]`` (forward, at the last real token) and
    ``h_n[-1]`` (backward, at the first token), and the max and mean of ``output`` over the real
    steps (``pooling="last+max+mean"``) -> concatenated -> ``Linear`` -> one logit -> sigmoid.
    """
    n = len(tokens)
    if not 1 <= n <= padded_to:
        raise ValueError(f"draw_sentiment_model() needs 1 <= len(tokens) <= padded_to, got {n} and {padded_to}.")
    spacing = 1.6
    right = spacing * (padded_to - 1)
    fig, ax = _blank_axes((10.5, 8.6), (-2.6, right + 4.6), (-0.6, 9.4))
    rows = {"ids": 0.0, "embedding": 1.2, "forward": 2.5, "backward": 3.7}
    for t in range(padded_to):
        x, real = spacing * t, t < n
        _box(ax, x, rows["ids"], tokens[t] if real else "<pad>", width=1.2, height=0.55,
             color=STATE_COLOR if real else PAD_COLOR, textcolor="black" if real else "dimgray")
        _box(ax, x, rows["embedding"], f"$e_{t}$" if real else "0", width=1.0, height=0.55,
             color="#d9f0d3" if real else PAD_COLOR, textcolor="black" if real else "dimgray")
        _arrow(ax, (x, 0.28), (x, 0.92))
        if not real:
            ax.text(x, 3.1, "not read:\nlengths", ha="center", va="center", fontsize=9, color="dimgray")
            continue
        _box(ax, x, rows["forward"], "$\\overrightarrow{h}_{%d}$" % t, width=1.0, height=0.55, color="#c6dbef")
        _box(ax, x, rows["backward"], "$\\overleftarrow{h}_{%d}$" % t, width=1.0, height=0.55, color="#fcbba1")
        _arrow(ax, (x, 1.48), (x, 2.22))
        _arrow(ax, (x + 0.35, 1.48), (x + 0.35, 3.42), connectionstyle="arc3,rad=-0.25")
        if t + 1 < n:
            _arrow(ax, (x + 0.5, rows["forward"]), (x + spacing - 0.5, rows["forward"]), color="tab:blue")
            _arrow(ax, (x + spacing - 0.5, rows["backward"]), (x + 0.5, rows["backward"]), color="tab:red")
    ax.text(-0.9, rows["forward"], "forward →", ha="right", va="center", fontsize=10, color="tab:blue")
    ax.text(-0.9, rows["backward"], "backward ←", ha="right", va="center", fontsize=10, color="tab:red")
    # the four summaries of the review
    summary_y, summaries = 5.3, ["h_n[-2]", "h_n[-1]", "max over t", "mean over t"]
    xs = [right / 2 + spacing * (k - 1.5) for k in range(4)]
    for x, label in zip(xs, summaries):
        _box(ax, x, summary_y, label, width=1.45, height=0.55, color="#fff2cc", fontsize=10)
    last = spacing * (n - 1)
    side = last + 0.8  # round the last column on its right, so that the arrow crosses no box
    _line(ax, [(last + 0.5, rows["forward"]), (side, rows["forward"]), (side, rows["backward"] + 0.6),
               (xs[0], summary_y - 0.28)], color="tab:blue")
    _arrow(ax, (0.0, rows["backward"] + 0.28), (xs[1], summary_y - 0.28), color="tab:red")
    # max and mean read every real step's output, output[t] = [forward h_t ; backward h_t]: the whole
    # column of both directions (dashed), not the backward states alone
    top = rows["backward"] + 0.42
    for t in range(n):
        x = spacing * t
        ax.add_patch(FancyBboxPatch((x - 0.62, rows["forward"] - 0.42), 1.24, top - rows["forward"] + 0.42,
                                    boxstyle="round,pad=0.02,rounding_size=0.1", facecolor="none",
                                    edgecolor="dimgray", linewidth=1.0, linestyle="--", zorder=1))
        for k in (2, 3):
            _arrow(ax, (x, top), (xs[k], summary_y - 0.28), color="gray", linewidth=0.8)
    ax.text(-0.66, top + 0.12, "output[t] = [$\\overrightarrow{h}_t$ ; $\\overleftarrow{h}_t$]", ha="right",
            va="bottom", fontsize=9, color="dimgray")
    _box(ax, right / 2, 6.5, "concatenate", width=4.2, height=0.55, color=STATE_COLOR)
    for x in xs:
        _arrow(ax, (x, summary_y + 0.28), (x, 6.22))
    _box(ax, right / 2, 7.6, "Linear  →  logit $z$", width=3.0, height=0.55, color=TANH_COLOR)
    _box(ax, right / 2, 8.7, "$\\sigma(z)$ = P(positive)", width=3.0, height=0.55, color=GATE_COLOR)
    _arrow(ax, (right / 2, 6.78), (right / 2, 7.32))
    _arrow(ax, (right / 2, 7.88), (right / 2, 8.42))
    shapes = [(rows["ids"], "ids (batch, time)"), (rows["embedding"], "(batch, time, E)"),
              ((rows["forward"] + rows["backward"]) / 2, "output (batch, time, 2H)\nh_n (2, batch, H)"),
              (summary_y, "(batch, H) each, (batch, 2H) each"), (6.5, "(batch, 6H)"), (7.6, "(batch,)"),
              (8.7, "(batch,)")]
    for y, text in shapes:
        ax.text(right + 2.4, y, text, ha="left", va="center", fontsize=9.5, color="dimgray")
    ax.set_title("Lesson 5's classifier: Embedding → BiLSTM → pooling → Linear "
                 '(pooling="last+max+mean")', fontsize=12)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# lesson 8: a language model, trained chunk by chunk
# ---------------------------------------------------------------------------------------------

def draw_language_model(words: Sequence[str] = ("this", "film", "is", "a", "gem", "<eos>", "i"),
                        chunk: int = 3) -> Figure:
    """A language model reading ``words`` in chunks of ``chunk`` steps (truncated BPTT).

    Bottom row: the inputs, ``words[:-1]``; top row: the targets, the same words shifted by one
    (``words[1:]``): after reading word t the model is asked for word t + 1. The LSTM's state flows
    from step to step and on into the next chunk (its *values* carry over), but at a chunk border
    the graph is cut (``detach``): gradients flow back at most ``chunk`` steps.
    """
    steps = len(words) - 1
    if steps < 2 or chunk < 1 or chunk >= steps:
        raise ValueError(f"draw_language_model() needs at least 3 words and 1 <= chunk < {steps}, "
                         f"got {len(words)} words and chunk={chunk}.")
    gap = 1.6
    fig, ax = _blank_axes((min(2.2 + 1.35 * steps, 13), 4.3), (-1.4, gap * steps + 0.2), (-0.6, 4.0))
    _box(ax, -0.7, 1.8, "$h_0$")
    for t in range(steps):
        x = gap * (t + 0.5)
        _box(ax, x, 0.2, words[t], width=1.2, fontsize=10)
        _box(ax, x, 1.8, "LSTM", width=1.1, height=0.8, color=TANH_COLOR, fontsize=11)
        _box(ax, x, 3.4, words[t + 1], width=1.2, fontsize=10, color="#c7e9c0")
        _arrow(ax, (x, 0.5), (x, 1.4))
        _arrow(ax, (x, 2.2), (x, 3.1))
        start = -0.2 if t == 0 else x - gap + 0.55
        border = t > 0 and t % chunk == 0
        _arrow(ax, (start, 1.8), (x - 0.55, 1.8), color="firebrick" if border else "black")
        if border:
            xb = x - gap / 2
            ax.plot([xb, xb], [-0.35, 3.8], color="firebrick", linestyle="--", linewidth=1.2)
            ax.text(xb, 2.3, "detach", ha="center", va="bottom", fontsize=9, color="firebrick",
                    bbox=dict(facecolor="white", edgecolor="none", pad=1))
    ax.text(-1.35, 0.2, "input", ha="left", va="center", fontsize=10, style="italic")
    ax.text(-1.35, 3.4, "target", ha="left", va="center", fontsize=10, style="italic")
    ax.text(gap * steps / 2, -0.55,
            f"chunks of {chunk} steps: the state's values go on, gradients stop at the dashed line",
            ha="center", va="center", fontsize=10, style="italic")
    ax.set_title("A language model: at every step, the target is the next word", fontsize=12)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# lesson 10: who waits for whom
# ---------------------------------------------------------------------------------------------

def draw_dependencies(steps: int = 4) -> Figure:
    """Three ways to read ``steps`` inputs, side by side: what each output must wait for.

    - **LSTM** (lesson 2): the gates of step t read ``h_(t-1)``, so the steps run one after the
      other, each a matrix product (red arrows: the sequential path);
    - **minGRU** (lesson 10): the gate ``z_t`` and the candidate come from ``x_t`` alone, all steps
      at once; what stays sequential is the cheap mix ``h_t = (1 - z_t) h_(t-1) + z_t h~_t``, a
      linear recurrence that a prefix scan computes in parallel;
    - **self-attention**: every output reads every input directly: no chain at all, but
      ``steps x steps`` scores.
    """
    if steps < 2:
        raise ValueError(f"draw_dependencies() needs at least 2 steps, got {steps}.")
    gap = 1.5
    fig, axes = plt.subplots(1, 3, figsize=(min(4.0 + 3.0 * steps, 15), 4.2))
    for ax in axes:
        ax.set_xlim(-0.9, gap * (steps - 1) + 0.9)
        ax.set_ylim(-1.0, 4.0)
        ax.set_aspect("equal")
        ax.axis("off")
    lstm, min_gru, attention = axes
    sequential = "firebrick"
    for t in range(steps):
        x = gap * t
        for ax in axes:
            _box(ax, x, 0.0, f"$x_{t + 1}$", width=0.9, height=0.55)
        # LSTM: gates and state in one box, reading h_(t-1)
        _box(lstm, x, 1.5, "gates", width=1.0, height=0.6, color=GATE_COLOR, fontsize=10)
        _box(lstm, x, 3.0, f"$h_{t + 1}$", width=0.9, height=0.55)
        _arrow(lstm, (x, 0.28), (x, 1.2))
        _arrow(lstm, (x, 1.8), (x, 2.72))
        if t > 0:
            _line(lstm, [(x - gap + 0.45, 3.0), (x - gap + 0.75, 3.0), (x - 0.75, 1.5), (x - 0.5, 1.5)],
                  color=sequential)
        # minGRU: gates from x_t only, then the mix
        _box(min_gru, x, 1.5, "$z, \\tilde h$", width=1.0, height=0.6, color=GATE_COLOR, fontsize=10)
        _box(min_gru, x, 3.0, f"$h_{t + 1}$", width=0.9, height=0.55)
        _arrow(min_gru, (x, 0.28), (x, 1.2))
        _arrow(min_gru, (x, 1.8), (x, 2.72))
        if t > 0:
            _arrow(min_gru, (x - gap + 0.45, 3.0), (x - 0.45, 3.0), color=sequential)
        # self-attention: every output reads every input
        _box(attention, x, 3.0, f"$y_{t + 1}$", width=0.9, height=0.55)
        for s in range(steps):
            _arrow(attention, (gap * s, 0.28), (x, 2.72), color="tab:blue", linewidth=0.9)
    lstm.set_title("LSTM: the gates read $h_{t-1}$", fontsize=11)
    min_gru.set_title("minGRU: the gates read $x_t$ only", fontsize=11)
    attention.set_title("self-attention: all pairs at once", fontsize=11)
    lstm.text(gap * (steps - 1) / 2, -0.75, f"{steps} matrix products in a row", ha="center",
              fontsize=10, style="italic", color=sequential)
    min_gru.text(gap * (steps - 1) / 2, -0.75, "gates: one product; the mix: a scan", ha="center",
                 fontsize=10, style="italic", color=sequential)
    attention.text(gap * (steps - 1) / 2, -0.75, f"no chain, but {steps} x {steps} scores", ha="center",
                   fontsize=10, style="italic", color="tab:blue")
    fig.suptitle("What each step waits for (red: the sequential path)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the title above the three panels
    return fig
