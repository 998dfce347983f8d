"""The lessons' network diagrams: each draws a Figure whose labels say what PyTorch does."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils import diagrams
from course_utils.diagrams import figure_texts


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def joined(fig: Figure) -> str:
    return "\n".join(figure_texts(fig))


def test_unrolled_rnn_shows_shared_weights_and_every_step():
    fig = diagrams.draw_unrolled_rnn(steps=4)
    assert isinstance(fig, Figure)
    text = joined(fig)
    for t in range(1, 5):
        assert f"$x_{t}$" in text and f"$h_{t}$" in text
    assert "$x_5$" not in text
    assert "$h_0$" in text and "h_n" in text
    # one per step, the folded cell's loop, and the caption naming the shared weights
    assert text.count("$W_{hh}$") == 4 + 1 + 1
    assert "the same $W_{ih}$, $W_{hh}$" in text


def test_unrolled_rnn_rejects_a_single_step():
    with pytest.raises(ValueError, match="at least 2 steps"):
        diagrams.draw_unrolled_rnn(steps=1)


def test_lstm_cell_labels_pytorch_gate_order():
    text = joined(diagrams.draw_lstm_cell())
    assert "i, f, g, o" in text
    rows = {gate: f"rows {block}" for gate, block in zip("ifgo", ("0:H", "H:2H", "2H:3H", "3H:4H"))}
    for gate, label in rows.items():
        assert f"${gate}_t$" in text and label in text
    assert "$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$" in text
    assert "$h_t = o_t \\odot \\tanh(c_t)$" in text


def test_gru_cell_labels_order_and_reset_placement():
    text = joined(diagrams.draw_gru_cell())
    assert "r, z, n" in text
    for label in ("rows 0:H", "rows H:2H", "rows 2H:3H", "$r_t$", "$z_t$", "$n_t$"):
        assert label in text
    # the reset gate multiplies the product W_hn h + b_hn (PyTorch), not h (the paper)
    assert "r_t \\odot (W_{hn} h_{t-1} + b_{hn})" in text
    assert "W_{hn}(r_t" not in text.replace(" ", "")
    assert "$h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}$" in text


@pytest.mark.parametrize("lengths", [[5, 2, 7, 4], [3, 3, 1], [1], [2, 6, 6, 1, 4, 3]])
def test_packed_batch_texts_equal_pack_padded_sequence(lengths):
    fig = diagrams.draw_packed_batch(lengths)
    texts = figure_texts(fig)
    packed = pack_padded_sequence(torch.zeros(len(lengths), max(lengths)), torch.tensor(lengths),
                                  batch_first=True, enforce_sorted=False)
    footer = next(t for t in texts if t.startswith("batch_sizes = "))
    assert f"batch_sizes = {packed.batch_sizes.tolist()}" in footer
    assert f"sorted_indices = {packed.sorted_indices.tolist()}" in footer
    # batch_sizes[t] is the number of sequences longer than t
    assert packed.batch_sizes.tolist() == [sum(n > t for n in lengths) for t in range(max(lengths))]
    # one labelled cell per real token in each of the two panels, and one "pad" per padded cell
    top, bottom = fig.axes
    real = [f"{chr(65 + b)}{t}" for b, n in enumerate(lengths) for t in range(n)]
    assert sorted(t.get_text() for t in top.texts if t.get_text() != "pad") == sorted(real)
    assert sum(t.get_text() == "pad" for t in top.texts) == len(lengths) * max(lengths) - sum(lengths)
    # the packed row is time-major: every step-t cell comes before any step-(t+1) cell
    cells = [t.get_text() for t in bottom.texts if not t.get_text().startswith("t=")]
    assert sorted(cells) == sorted(real)
    steps = [int(name[1:]) for name in cells]
    assert steps == sorted(steps)
    # within a step, the sequences come in the order of sorted_indices
    order = [chr(65 + b) for b in packed.sorted_indices.tolist()]
    assert [name[0] for name in cells[: len(lengths)]] == order
    assert [t.get_text() for t in bottom.texts if t.get_text().startswith("t=")] == [
        f"t={t}\n{n} row{'s' if n > 1 else ''}" for t, n in enumerate(packed.batch_sizes.tolist())]


@pytest.mark.parametrize("lengths", [[], [3, 0], [1] * 7])
def test_packed_batch_rejects_bad_lengths(lengths):
    with pytest.raises(ValueError, match="draw_packed_batch"):
        diagrams.draw_packed_batch(lengths)


def test_bidirectional_shows_backward_direction_starting_on_padding():
    fig = diagrams.draw_bidirectional(length=3, padded_to=5)
    assert len(fig.axes) == 2
    padded, packed = fig.axes
    padded_texts = [t.get_text() for t in padded.texts]
    packed_texts = [t.get_text() for t in packed.texts]
    assert "starts on padding" in padded.get_title()
    assert packed.get_title().endswith("starts at $w_{2}$")
    for texts in (padded_texts, packed_texts):
        assert [t for t in texts if t.startswith("$w_")] == ["$w_0$", "$w_1$", "$w_2$"]
        assert texts.count("pad") == 2
    # on padded input both directions run over all 5 steps; packed, only over the 3 real ones
    backward = "$\\overleftarrow{h}_{%d}$"
    assert all(backward % t in padded_texts for t in range(5))
    assert all(backward % t in packed_texts for t in range(3)) and backward % 3 not in packed_texts
    starts = [a for a in padded.texts if a.get_text() == "backward starts here"]
    assert len(starts) == 1 and starts[0].xy[0] == pytest.approx(4 * 1.7)  # the last time step: padding
    starts = [a for a in packed.texts if a.get_text() == "backward starts here"]
    assert len(starts) == 1 and starts[0].xy[0] == pytest.approx(2 * 1.7)  # w_2, the last real token
    assert "[forward" in fig._suptitle.get_text()


def test_bidirectional_rejects_a_review_without_padding():
    with pytest.raises(ValueError, match="length < padded_to"):
        diagrams.draw_bidirectional(length=5, padded_to=5)


def test_language_model_targets_are_the_inputs_shifted_and_chunks_are_cut():
    words = ("this", "film", "is", "a", "gem", "<eos>", "i")
    fig = diagrams.draw_language_model(words, chunk=3)
    texts = diagrams.figure_texts(fig)
    assert texts.count("detach") == 1  # 6 steps in chunks of 3: one border
    for word in words:
        assert word in texts
    assert texts.count("LSTM") == len(words) - 1
    fig2 = diagrams.draw_language_model(words, chunk=2)
    assert diagrams.figure_texts(fig2).count("detach") == 2
    plt.close("all")
    with pytest.raises(ValueError, match="chunk"):
        diagrams.draw_language_model(words, chunk=6)


def test_dependencies_show_the_sequential_path_of_each_model():
    fig = diagrams.draw_dependencies(steps=4)
    lstm, min_gru, attention = fig.axes
    assert "h_{t-1}" in lstm.get_title() and "x_t" in min_gru.get_title()
    for ax in fig.axes:
        assert [t.get_text() for t in ax.texts if t.get_text().startswith("$x_")] == [f"$x_{t}$" for t in range(1, 5)]
    arrows = {name: [p for p in ax.patches if p.__class__.__name__ == "FancyArrowPatch"]
              for name, ax in zip(("lstm", "min_gru", "attention"), fig.axes)}
    assert len(arrows["attention"]) == 4 * 4  # every output reads every input
    red = {name: sum(p.get_edgecolor()[:3] == matplotlib.colors.to_rgb("firebrick") for p in patches)
           for name, patches in arrows.items()}
    assert red == {"lstm": 3, "min_gru": 3, "attention": 0}  # one link in the chain between neighbouring steps
    assert "no chain, but 4 x 4 scores" in diagrams.figure_texts(fig)
    plt.close("all")
    with pytest.raises(ValueError, match="at least 2 steps"):
        diagrams.draw_dependencies(steps=1)
