"""Checks (and one clean-up) that keep the stored notebooks true on every machine and readable anywhere.

``tests/test_notebook_hygiene.py`` runs the checks on every notebook under ``notebooks/``:

* ``absolute_time_asserts``: an ``assert`` that compares a time with a fixed number
  (``assert fit_seconds <= 180``) fails on a slower laptop; a lesson prints its times and asserts
  only ratios of times measured in the same run (``assert slow_seconds > 2 * fast_seconds``).
* ``widget_state``: ``metadata.widgets`` (``application/vnd.jupyter.widget-state+json``), which
  GitHub shows as junk and Colab's ipywidgets 7 may show as errors.
* ``widget_outputs`` and ``progress_residue``: progress bars and widgets stored as outputs
  ("train:   0%|          | 0/313"), which mean nothing without a running kernel.

After executing a notebook, strip what the kernel left behind (progress bars, widgets, their
state), then commit it::

    jupyter nbconvert --to notebook --execute --inplace notebooks/06_imdb_training.ipynb
    python tests/notebook_hygiene.py notebooks/06_imdb_training.ipynb
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# Words that name a duration, inside identifiers and string keys: fit_seconds, elapsed,
# time.perf_counter(), result.wall_time, minutes... (whole words: "sentiment" is not "time"), and
# units in table columns such as "s / epoch" or "reviews / s".
TIME_WORDS = {"second", "seconds", "sec", "secs", "ms", "time", "times", "timing", "elapsed", "duration",
              "durations", "minute", "minutes", "mins", "hour", "hours", "perf", "wall", "took"}
TIME_UNIT = re.compile(r"\bs\s*/|/\s*s\b")
# tqdm's bar: "45%|████▌     | 141/313 [00:07<00:08, 20.1it/s]"
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\d+/\d+ \[\d+:\d+")


def _names(node: ast.AST) -> list[str]:
    """The identifiers inside an expression, and the string keys it indexes with (``table["s / epoch"]``)."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.append(child.id)
        elif isinstance(child, ast.Attribute):
            found.append(child.attr)
        elif isinstance(child, ast.Subscript):
            found += [c.value for c in ast.walk(child.slice) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return found


def _has_number(node: ast.AST) -> bool:
    return any(isinstance(c, ast.Constant) and isinstance(c.value, (int, float)) and not isinstance(c.value, bool)
               for c in ast.walk(node))


def _is_time_name(name: str) -> bool:
    words = re.split(r"[^a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower())
    return bool(TIME_WORDS.intersection(words)) or bool(TIME_UNIT.search(name))


ARITHMETIC = (ast.BinOp, ast.UnaryOp, ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Tuple,
              ast.Load, ast.operator, ast.unaryop, ast.Call)
SIMPLE_CALLS = {"sum", "min", "max", "abs", "float", "int", "round", "perf_counter", "time", "monotonic"}


def _is_arithmetic(node: ast.AST) -> bool:
    """An expression made only of names, numbers, + - * / and sum/min/max-like calls (a derived number)."""
    for child in ast.walk(node):
        if not isinstance(child, ARITHMETIC):
            return False
        if isinstance(child, ast.Call):
            name = child.func.id if isinstance(child.func, ast.Name) else getattr(child.func, "attr", "")
            if name not in SIMPLE_CALLS:
                return False
    return True


def _is_timing(node: ast.AST, tainted: set[str]) -> bool:
    """Does the expression involve a time: a time word, or a variable computed from one?"""
    return any(_is_time_name(name) or name in tainted for name in _names(node))


def _code(source: str) -> str:
    """A cell's code with IPython magics and shell lines blanked, so that ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def absolute_time_asserts(source: str, tainted: set[str] | None = None) -> list[str]:
    """The asserts of ``source`` that compare a measured time with a fixed number.

    A comparison is flagged when one side names a time (``seconds``, ``elapsed``,
    ``perf_counter``...) and the side it is compared with names no time but holds a number. A
    ratio of two times of the same run (``a_seconds > 2 * b_seconds``) passes. A variable assigned
    from a time (``total = a_seconds + b_seconds``) is a time too; pass the same ``tainted`` set
    to the cells of one notebook in order, so that this carries across cells.
    """
    tainted = set() if tainted is None else tainted
    try:
        tree = ast.parse(_code(source))
    except SyntaxError:
        return []
    flagged = []
    for node in ast.walk(tree):  # parents come before children, statements in order
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            if _is_arithmetic(node.value) and _is_timing(node.value, tainted):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tainted.update(name for target in targets for name in _names(target))
        if not isinstance(node, ast.Assert):
            continue
        for compare in (c for c in ast.walk(node.test) if isinstance(c, ast.Compare)):
            sides = [compare.left, *compare.comparators]
            for left, right in zip(sides, sides[1:]):
                for a, b in ((left, right), (right, left)):
                    if _is_timing(a, tainted) and not _is_timing(b, tainted) and _has_number(b):
                        flagged.append(ast.unparse(node).splitlines()[0])
    return sorted(set(flagged))


def _output_texts(output: dict) -> list[str]:
    texts = [output.get("text", "")]
    texts += [output.get("data", {}).get("text/plain", "")]
    return ["".join(t) if isinstance(t, list) else t for t in texts]


def progress_residue(notebook: dict) -> list[str]:
    """Stored outputs that hold a progress bar's text."""
    return [line.strip() for cell in notebook["cells"] for output in cell.get("outputs", [])
            for text in _output_texts(output) for line in text.splitlines() if PROGRESS_BAR.search(line)]


def widget_outputs(notebook: dict) -> int:
    """How many stored outputs are widget views (they need the widget state and a kernel)."""
    return sum(WIDGET_VIEW in output.get("data", {}) for cell in notebook["cells"] for output in cell.get("outputs", []))


def widget_state(notebook: dict) -> bool:
    """True when the notebook stores the state of its widgets."""
    return "widgets" in notebook.get("metadata", {}) or WIDGET_STATE in json.dumps(notebook.get("metadata", {}))


def strip_kernel_residue(notebook: dict) -> dict:
    """Remove widget state, widget views and progress-bar lines from a notebook's outputs (in place)."""
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook["cells"]:
        kept = []
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                continue
            if output.get("output_type") == "stream":
                text = "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
                lines = [line for line in re.split(r"(?<=\n)", text) if not PROGRESS_BAR.search(line)]
                if not "".join(lines).strip():
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return notebook


def main(paths: list[str]) -> int:
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        strip_kernel_residue(notebook)
        nbformat.write(notebook, path)
        print(f"{path}: widget state, widget views and progress bars removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
