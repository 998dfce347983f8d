"""What the course's command lines share: one-line errors and argument types.

``python -m course_utils.train`` and ``python -m course_utils.lm`` both answer a wrong argument
with one line that lists the valid choices, never with a traceback.
"""

from __future__ import annotations

import argparse
import math


def significant(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (never to 0 for a positive value)."""
    return float(f"{value:.{digits}g}")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that lists the valid choices."""

    def error(self, message: str) -> None:  # type: ignore[override]
        usage = " ".join(self.format_usage().split())  # argparse's own usage line, on one line
        self.exit(2, f"{self.prog}: error: {message} ({usage})\n")


def positive_int(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argument that must be a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value
