"""Interactive controls of lesson 6: type a review, see the model's opinion as you type.

The logic is the plain function ``describe_prediction`` (tests call it directly); the widget is a
thin wrapper made of ``Textarea`` + ``HTML``, which behave the same on ipywidgets 7.7 (Colab)
and 8.
"""

from __future__ import annotations

import html
from typing import Callable


def describe_prediction(text: str, predict: Callable[[str], float]) -> str:
    """A short HTML line describing ``predict(text)``, or a friendly note when there is nothing to rate.

    Bad input (empty text, no words) is not an error in the text box: the ``ValueError`` /
    ``TypeError`` from ``predict`` becomes the message shown.
    """
    try:
        p = predict(text)
    except (ValueError, TypeError) as exc:
        return f"<i>{html.escape(str(exc))}</i>"
    verdict = "positive" if p >= 0.5 else "negative"
    color = "green" if p >= 0.5 else "firebrick"
    bar = "&#9608;" * int(round(p * 20)) + "&#9617;" * (20 - int(round(p * 20)))
    return (
        f'<span style="font-family:monospace">{bar}</span> '
        f'<b style="color:{color}">P(positive) = {p:.3f}</b> ({verdict})'
    )


def sentiment_box(predict: Callable[[str], float], value: str = "This movie was great, I loved every minute of it."):
    """A text box and a live read-out of ``predict(text)``; returns the widget to display."""
    import ipywidgets as widgets  # imported here: importing course_utils never needs a front-end

    box = widgets.Textarea(
        value=value,
        placeholder="Type a review...",
        description="Review:",
        continuous_update=True,
        layout=widgets.Layout(width="95%", height="80px"),
    )
    result = widgets.HTML(value=describe_prediction(value, predict))

    def update(change) -> None:
        result.value = describe_prediction(change["new"], predict)

    box.observe(update, names="value")
    return widgets.VBox([box, result])
