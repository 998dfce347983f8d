"""Standard errors and McNemar's paired test, checked against SciPy's exact binomial test."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import binomtest

from course_utils.stats import mcnemar, standard_error


def test_standard_error_of_an_accuracy():
    assert standard_error(0.9, 5000) == pytest.approx(math.sqrt(0.9 * 0.1 / 5000))
    assert standard_error(1.0, 10) == 0.0
    with pytest.raises(ValueError, match="at least one review"):
        standard_error(0.5, 0)


@pytest.mark.parametrize("only_a, only_b", [(0, 0), (5, 5), (30, 12), (3, 40), (700, 640), (1, 0)])
def test_mcnemar_p_value_equals_the_exact_binomial_test_on_the_disagreements(only_a, only_b):
    both_right, both_wrong = 500, 80
    a = [True] * only_a + [False] * only_b + [True] * both_right + [False] * both_wrong
    b = [False] * only_a + [True] * only_b + [True] * both_right + [False] * both_wrong
    result = mcnemar(a, b)
    assert (result.n, result.only_a, result.only_b) == (len(a), only_a, only_b)
    expected = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert result.difference == pytest.approx((sum(a) - sum(b)) / len(a))


def test_mcnemar_takes_tensors_and_agreements_do_not_matter():
    a = torch.tensor([1, 1, 0, 0, 1, 0])
    b = torch.tensor([1, 0, 0, 1, 0, 0])
    assert (mcnemar(a, b).only_a, mcnemar(a, b).only_b) == (2, 1)
    assert "McNemar p" in str(mcnemar(a, b))


def test_mcnemar_refuses_results_on_different_examples():
    with pytest.raises(ValueError, match="same examples"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match="no examples"):
        mcnemar([], [])
