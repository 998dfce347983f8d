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


def test_the_concatenated_size_in_the_picture_is_the_models():
    hidden = 8
    model = build_model(50, embedding_dim=4, hidden_size=hidden, bidirectional=True, pooling="last+max+mean")
    features = model.features(torch.tensor([[2, 3, 4, 0]]), torch.tensor([3]))
    assert features.shape == (1, 6 * hidden)  # "(batch, 6H)": H + H + 2H + 2H


def test_bad_sizes_get_a_clear_error():
    with pytest.raises(ValueError, match="padded_to"):
        draw_sentiment_model(("a", "b", "c"), padded_to=2)
