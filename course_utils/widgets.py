"""Interactive controls: lesson 6's text box (the model's opinion as you type) and lesson 8's
writing box (a language model continues your prompt).

The logic is in plain functions, ``describe_prediction`` and ``describe_generation`` (tests call
them directly); each widget is a thin wrapper made of ``Textarea``/``Text``, sliders and ``HTML``,
which behave the same on ipywidgets 7.7 (Colab) and 8.
"""

from __future__ import annotations

import html
from typing import Callable

from .text import EOS_TOKEN


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


END_OF_REVIEW = EOS_TOKEN  # what ``course_utils.lm.generate(..., show_end=True)`` writes when the model ends the review


def describe_generation(prompt: str, write: Callable[..., str], temperature: float = 1.0, top_k: int = 0,
                        seed: int = 0) -> str:
    """HTML showing ``prompt`` (plain) followed by ``write(prompt, temperature=..., top_k=..., seed=...)`` (bold).

    ``top_k=0`` means "no top-k cut" (``top_k=None`` is passed on). A ``ValueError`` or
    ``TypeError`` from ``write`` (an empty prompt, no known word) becomes the message shown.
    A continuation that ends with ``<eos>`` (``generate(..., show_end=True)``) was ended by the
    model: the HTML says so, also when the model ended the review before writing any word.
    """
    try:
        continuation = write(prompt, temperature=temperature, top_k=top_k or None, seed=seed)
    except (ValueError, TypeError) as exc:
        return f"<i>{html.escape(str(exc))}</i>"
    words = continuation.split()
    ended = bool(words) and words[-1] == END_OF_REVIEW
    text = " ".join(words[:-1] if ended else words)
    shown = f"{html.escape(prompt.strip())} <b>{html.escape(text)}</b>"
    if ended and not text:
        return (f"{shown}<br><i>The model ended the review at once: the first word it drew was the end of a "
                f"review ({END_OF_REVIEW}). Change the seed, or the prompt.</i>")
    if ended:
        return f"{shown} <i>[end of review: the model drew {END_OF_REVIEW}]</i>"
    return shown


def writing_box(write: Callable[..., str], value: str = "This movie was"):
    """A prompt box, a temperature slider, a top-k slider and a seed, and the text written; returns the widget.

    ``write(prompt, temperature=..., top_k=..., seed=...)`` returns the continuation, e.g.
    ``functools.partial(course_utils.lm.generate, model, vocab, words=30, show_end=True)`` (with
    ``show_end``, the box says when the model ended the review). The text is
    rewritten when a control changes (the prompt when Enter is pressed or the box loses focus).
    """
    import ipywidgets as widgets  # imported here: importing course_utils never needs a front-end

    prompt = widgets.Text(value=value, description="Prompt:", continuous_update=False,
                          layout=widgets.Layout(width="95%"))
    temperature = widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1, description="temperature",
                                      continuous_update=False)
    top_k = widgets.IntSlider(value=0, min=0, max=100, step=5, description="top-k (0: all)",
                              continuous_update=False)
    seed = widgets.IntText(value=0, description="seed")
    result = widgets.HTML()

    def update(change=None) -> None:
        result.value = describe_generation(prompt.value, write, temperature.value, top_k.value, seed.value)

    for control in (prompt, temperature, top_k, seed):
        control.observe(update, names="value")
    update()
    return widgets.VBox([prompt, widgets.HBox([temperature, top_k, seed]), result])
