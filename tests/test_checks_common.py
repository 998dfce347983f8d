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


# --- exactness on a GPU: no TF32 while a checker runs -------------------------------------------
def _tf32_is_off() -> bool:
    from course_utils import training
    return all(getattr(owner, name) == exact for owner, name, exact in training._tf32_backends())


def _settings() -> list:
    from course_utils import training
    return [getattr(owner, name) for owner, name, _ in training._tf32_backends()]


def test_the_students_code_and_an_exact_checker_run_in_full_float32_and_the_settings_come_back():
    from course_utils.checks._common import StudentCodeError, call_student, exact_float32

    before, seen = _settings(), []
    call_student(lambda: seen.append(_tf32_is_off()), name="student")

    @exact_float32
    def checker(answer):
        seen.append(_tf32_is_off())  # the checker's own reference
        call_student(answer, name="answer")
        seen.append(_tf32_is_off())  # still off after the student's call (nested blocks)
        return "done"

    assert checker(lambda: seen.append(_tf32_is_off())) == "done"
    assert seen == [True] * 4
    assert _settings() == before
    with pytest.raises(StudentCodeError):  # also after the student's code raised
        checker(lambda: 1 / 0)
    assert _settings() == before
