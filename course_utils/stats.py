"""How sure is a difference in accuracy? Standard errors and the paired test (lesson 6, then 7-10).

An accuracy measured on n reviews is itself a random quantity: had other reviews been drawn, it
would differ by about one *standard error*, sqrt(p (1 - p) / n).

Two models scored on the *same* reviews are compared more sharply by looking only where they
disagree. If model A is right and B wrong on ``b`` reviews, and the opposite on ``c``, then under
"A and B are equally good" each disagreement is a fair coin: ``b`` follows Binomial(b + c, 1/2).
McNemar's exact test asks how unlikely a split at least as uneven as ``b`` against ``c`` is under
that coin (two-sided p-value). Reviews both get right, or both get wrong, say nothing about which
model is better, so they do not enter the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch


def standard_error(accuracy: float, n: int) -> float:
    """One standard error of an accuracy measured on ``n`` independent reviews."""
    if n < 1:
        raise ValueError(f"an accuracy needs at least one review, got n={n}")
    return math.sqrt(accuracy * (1 - accuracy) / n)


@dataclass
class PairedTest:
    """McNemar's exact test of two models on the same examples.

    ``only_a``: examples model A gets right and model B wrong; ``only_b``: the opposite;
    ``p_value``: two-sided, the chance of a split at least this uneven if both were equally good.
    """

    n: int
    only_a: int
    only_b: int
    p_value: float

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B (only the disagreements differ)."""
        return (self.only_a - self.only_b) / self.n

    def __str__(self) -> str:
        return (f"A right where B is wrong: {self.only_a:,}; B right where A is wrong: {self.only_b:,}; "
                f"difference {100 * self.difference:+.2f} points, McNemar p = {self.p_value:.3g}")


def _binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of ``k`` successes in ``n`` fair coin flips (min(1, 2 x the smaller tail))."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def _as_bools(correct: Sequence[bool] | torch.Tensor) -> list[bool]:
    values = correct.tolist() if isinstance(correct, torch.Tensor) else list(correct)
    return [bool(v) for v in values]


def mcnemar(correct_a: Sequence[bool] | torch.Tensor, correct_b: Sequence[bool] | torch.Tensor) -> PairedTest:
    """Compare two models scored on the same examples: ``correct_x[i]`` is whether model x got example i right."""
    a, b = _as_bools(correct_a), _as_bools(correct_b)
    if len(a) != len(b):
        raise ValueError(f"the two models must be scored on the same examples: got {len(a)} and {len(b)} results")
    if not a:
        raise ValueError("no examples to compare")
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    return PairedTest(len(a), only_a, only_b, _binomial_two_sided(only_a, only_a + only_b))
