"""The comparisons every checker shares (course_utils/checks/_common.py): float32 answers are
accepted against a float64 oracle, wrong ones are not."""

from __future__ import annotations

import pytest
import torch

from course_utils.checks._common import is_close

EXPECTED = torch.tensor([1 / 3, 2.0, -5.5], dtype=torch.float64)


@pytest.mark.parametrize("got", [
    EXPECTED.float(),                       # a float32 tensor
    EXPECTED.clone(),                       # float64, exact
], ids=["float32", "float64"])
def test_a_right_tensor_is_accepted_whatever_its_precision(got):
    assert is_close(got, EXPECTED)


@pytest.mark.parametrize("got", [
    float(EXPECTED[0].float().item()),      # a Python float computed in float32 (x.item())
    EXPECTED[0].float(),                    # a float32 0-d tensor
    1 / 3,                                  # a Python float computed in float64
])
def test_a_right_scalar_is_accepted_as_a_number_or_0d_tensor(got):
    assert is_close(got, EXPECTED[0])


@pytest.mark.parametrize("got", [
    EXPECTED * (1 + 1e-3),                  # off by 0.1%: a different formula, not round-off
    EXPECTED.float() * (1 + 1e-3),
    EXPECTED[:2],                           # wrong shape
    [1 / 3, 2.0, -5.5],                     # a list, not a tensor
])
def test_a_wrong_tensor_is_rejected(got):
    assert not is_close(got, EXPECTED)


@pytest.mark.parametrize("got", [float(EXPECTED[0]) * (1 + 1e-3), "0.333", None, True])
def test_a_wrong_scalar_is_rejected(got):
    assert not is_close(got, EXPECTED[0])
