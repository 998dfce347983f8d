"""The notebooks' widgets (lesson 1's sliders, lesson 6's text box) on the current ipywidgets and on 7.7.1.

Google Colab pins ipywidgets 7.7.1, while a local install gets 8.x: the course's widget code must
work on both. The 7.7.1 copy lives in ``.ipywidgets7`` (``.ci/run`` installs it, or by hand:
``pip install --no-deps --target .ipywidgets7 ipywidgets==7.7.1 ipython_genutils``); the check runs
in a subprocess with that folder first on ``PYTHONPATH``. In CI (``CI=true``) a missing folder is
a failure; elsewhere the test is skipped with the command that installs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from course_utils.widgets import describe_generation, describe_prediction

ROOT = Path(__file__).resolve().parents[1]
IPYWIDGETS7 = ROOT / ".ipywidgets7"
INSTALL_7 = "pip install --no-deps --target .ipywidgets7 ipywidgets==7.7.1 ipython_genutils"

# Runs in a fresh interpreter: builds each widget, moves its controls, and checks what it shows.
WIDGET_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # ipywidgets 7 uses ipykernel's old Comm class
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import ipywidgets
    from course_utils.gradients import gradient_explorer
    from course_utils.widgets import sentiment_box, writing_box

    expected = sys.argv[1]
    assert ipywidgets.__version__.startswith(expected), (ipywidgets.__version__, expected)

    # lesson 6: the text box updates its read-out as the text changes
    box = sentiment_box(lambda text: 0.9 if "good" in text else 0.1, value="a good film")
    text, result = box.children
    assert isinstance(text, ipywidgets.Textarea) and isinstance(result, ipywidgets.HTML)
    assert "0.900" in result.value and "positive" in result.value
    text.value = "a dull film"
    assert "0.100" in result.value and "negative" in result.value
    text.value = ""  # a ValueError from the model becomes a message, not a traceback
    box = sentiment_box(lambda text: (_ for _ in ()).throw(ValueError("write a review first")))
    assert "write a review first" in box.children[1].value

    # lesson 8: the writing box rewrites its text when a control changes
    def write(prompt, temperature, top_k, seed):
        if not prompt.strip():
            raise ValueError("type a prompt first")
        return f"t={temperature} k={top_k} s={seed}"
    box = writing_box(write, value="This film")
    prompt, (temperature, top_k, seed), result = box.children[0], box.children[1].children, box.children[2]
    assert isinstance(prompt, ipywidgets.Text) and isinstance(temperature, ipywidgets.FloatSlider)
    assert result.value == "This film <b>t=1.0 k=None s=0</b>", result.value
    temperature.value, top_k.value, seed.value = 0.5, 10, 3
    assert result.value == "This film <b>t=0.5 k=10 s=3</b>", result.value
    prompt.value = "  "
    assert "type a prompt first" in result.value

    # lesson 1: two sliders that redraw the gradient plot
    explorer = gradient_explorer(spectral_radius=0.9, seq_len=40)
    radius, length = explorer.children[:2]
    assert isinstance(radius, ipywidgets.FloatSlider) and isinstance(length, ipywidgets.IntSlider)
    assert (radius.value, length.value) == (0.9, 40)
    plt.close("all")
    radius.value = 1.5  # continuous_update=False: a change of value redraws at once
    explorer.update()
    title = plt.gcf().axes[0].get_title()
    assert "40 steps" in title, title
    print("widgets OK on ipywidgets", ipywidgets.__version__)
    """
)


def _run_widgets(expected_version: str, extra_path: Path | None = None) -> str:
    env = dict(os.environ)
    paths = ([str(extra_path)] if extra_path else []) + [str(ROOT)]  # the 7.7.1 copy first, when given
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    completed = subprocess.run(
        [sys.executable, "-c", WIDGET_SCRIPT, expected_version],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_describe_prediction_is_plain_html():
    positive = describe_prediction("great", lambda text: 0.8)
    negative = describe_prediction("awful", lambda text: 0.2)
    assert "P(positive) = 0.800" in positive and "(positive)" in positive
    assert "P(positive) = 0.200" in negative and "(negative)" in negative


def test_describe_prediction_turns_bad_input_into_a_message():
    def refuse(text):
        raise ValueError("empty <text>")

    message = describe_prediction("", refuse)
    assert message == "<i>empty &lt;text&gt;</i>"  # escaped: the error text is shown, never run as HTML


def test_widgets_on_the_current_ipywidgets():
    import ipywidgets

    major = ipywidgets.__version__.split(".")[0]
    assert "widgets OK" in _run_widgets(major)


def test_widgets_on_ipywidgets_7_7_1_as_on_colab():
    if not (IPYWIDGETS7 / "ipywidgets").is_dir():
        message = f"ipywidgets 7.7.1 is not installed in {IPYWIDGETS7.name}/ (install it with: {INSTALL_7})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert "widgets OK on ipywidgets 7.7.1" in _run_widgets("7.7.1", IPYWIDGETS7)


def test_describe_generation_escapes_html_and_turns_errors_into_messages():
    def write(prompt, temperature, top_k, seed):
        if not prompt.strip():
            raise ValueError("The prompt is empty: type a few words.")
        return f"<script> at {temperature}, top-{top_k}, seed {seed}"

    shown = describe_generation("A <b>bold</b> film", write, temperature=0.8, top_k=0, seed=2)
    assert shown == "A &lt;b&gt;bold&lt;/b&gt; film <b>&lt;script&gt; at 0.8, top-None, seed 2</b>"
    assert describe_generation("x", write, top_k=20).endswith("top-20, seed 0</b>")
    assert describe_generation("   ", write) == "<i>The prompt is empty: type a few words.</i>"


def test_describe_generation_says_when_the_model_ended_the_review():
    def write(text):
        return lambda prompt, temperature, top_k, seed: text

    ended = describe_generation("the acting was", write("superb <eos>"))
    assert ended.startswith("the acting was <b>superb</b>") and "end of review" in ended
    at_once = describe_generation("the acting was", write("<eos>"))
    assert "<b></b>" in at_once and "ended the review at once" in at_once
    assert "end of review" not in describe_generation("the acting was", write("superb and moving"))
