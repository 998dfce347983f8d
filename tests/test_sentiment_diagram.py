"""Lesson 5's picture of the classifier (``diagrams.draw_sentiment_model``) says what the model does."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.diagrams import draw_sentiment_model, figure_texts  # noqa: E402
from course_utils.models import build_model  # noqa: E402


def test_the_picture_names_each_stage_and_the_padding():
    fig = draw_sentiment_model(("a", "great", "film"), padded_to=4)
    texts = figure_texts(fig)
    plt.close(fig)
    for label in ("a", "great", "film", "<pad>", "h_n[-2]", "h_n[-1]", "max over t", "mean over t",
                  "concatenate", "(batch, 6H)", "ids (batch, time)"):
        assert label in texts, label
    assert sum(text.startswith("$\\overrightarrow{h}") for text in texts) == 3  # real steps only, not the pad
    assert any("not read" in text for text in texts)
    # max and mean pool output[t], both directions of each step (issue 20), not the backward states only
    assert any(text.startswith("output[t] = [$\\overrightarrow{h}_t$ ; $\\overleftarrow{h}_t$]") for text in texts)


def test_max_and_mean_read_both_directions_of_every_real_step():
    """Each real step's dashed column (forward and backward state together) sends one arrow to max and one
    to mean, and no pooling arrow leaves a single direction's state."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = draw_sentiment_model(("a", "great", "film"), padded_to=4)
    ax = fig.axes[0]
    columns = [p for p in ax.patches if isinstance(p, FancyBboxPatch) and p.get_linestyle() == "--"]
    gray = [p for p in ax.patches if isinstance(p, FancyArrowPatch)
            and matplotlib.colors.to_hex(p.get_edgecolor()) == matplotlib.colors.to_hex("gray")]
    plt.close(fig)
    assert len(columns) == 3 and len(gray) == 2 * 3
    tops = {round(c.get_y() + c.get_height(), 2) for c in columns}
    assert {round(a._posA_posB[0][1], 2) for a in gray} == tops  # every pooling arrow leaves a column top


def test_the_concatenated_size_in_the_picture_is_the_models():
    hidden = 8
    model = build_model(50, embedding_dim=4, hidden_size=hidden, bidirectional=True, pooling="last+max+mean")
    features = model.features(torch.tensor([[2, 3, 4, 0]]), torch.tensor([3]))
    assert features.shape == (1, 6 * hidden)  # "(batch, 6H)": H + H + 2H + 2H


def test_bad_sizes_get_a_clear_error():
    with pytest.raises(ValueError, match="padded_to"):
        draw_sentiment_model(("a", "b", "c"), padded_to=2)
