"""Small helpers shared by every exercise checker.

A checker calls the student's function, compares the result with an oracle (usually PyTorch
itself) and either prints one success line or raises ``AssertionError`` with a message that says
*what* differs and gives a hint. These helpers keep the messages short and alike.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Optional, Sequence

import torch


# Tolerances of every comparison with PyTorch: float32 round-off, not a different formula.
ATOL, RTOL = 1e-5, 1e-4


class StudentCodeError(AssertionError):
    """The student's function raised an exception; the message shows it without library noise."""


def call_student(fn: Callable, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
    """Call the student's ``fn`` and turn any exception it raises into a clear ``AssertionError``.

    ``NotImplementedError`` (the placeholder in the student version) gets its own message.
    """
    name = name or getattr(fn, "__name__", "your function")
    if not callable(fn):
        raise AssertionError(f"Expected a function for {name}, got {type(fn).__name__}.")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise StudentCodeError(
            f"{name} is not implemented yet: replace `raise NotImplementedError` with your code."
        ) from None
    except Exception as exc:  # the student's own error: show its last line of their code
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if len(frames) > 1:
            last = frames[-1]
            where = f" (line {last.lineno}: `{(last.line or '').strip()}`)"
        raise StudentCodeError(
            f"{name} raised {type(exc).__name__}: {exc}{where}"
        ) from None


def assert_tensor(got: Any, what: str) -> torch.Tensor:
    """Check that ``got`` is a tensor; return it."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, got {type(got).__name__}.")
    return got


def assert_shape(got: Any, expected: Sequence[int], what: str, hint: str = "") -> None:
    """Check a tensor's shape, naming both shapes in the message."""
    got = assert_tensor(got, what)
    if tuple(got.shape) != tuple(expected):
        message = f"{what} has shape {tuple(got.shape)}, expected {tuple(expected)}."
        raise AssertionError(f"{message} {hint}".strip())


def assert_close(
    got: torch.Tensor,
    expected: torch.Tensor,
    what: str,
    hint: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """Check shape and values; the message gives the largest difference."""
    assert_shape(got, expected.shape, what)
    got = got.detach().to(expected.dtype)
    if not torch.allclose(got, expected.detach(), atol=atol, rtol=rtol):
        diff = (got - expected.detach()).abs().max().item()
        message = f"{what} differs from PyTorch's result (largest difference {diff:.3g})."
        raise AssertionError(f"{message} {hint}".strip())


def is_close(got: Any, expected: Any) -> bool:
    """True when ``got`` matches ``expected``: a tensor of the same shape and values (within
    ``ATOL``/``RTOL``), or a tuple/list of such tensors. Never raises."""
    if isinstance(expected, (tuple, list)):
        return (
            isinstance(got, (tuple, list))
            and len(got) == len(expected)
            and all(is_close(g, e) for g, e in zip(got, expected))
        )
    return (
        isinstance(got, torch.Tensor)
        and tuple(got.shape) == tuple(expected.shape)
        and torch.allclose(got.detach().to(expected.dtype), expected.detach(), atol=ATOL, rtol=RTOL)
    )


def describe(value: Any) -> str:
    """A few words on what a student's function returned, for error messages."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def first_matching_mistake(
    got: Any,
    mistakes: Sequence[tuple[Callable[[], Any], str]],
    same: Callable[[Any, Any], bool] = is_close,
) -> Optional[str]:
    """The hint of the first known mistake whose result equals ``got``, else ``None``.

    ``mistakes`` pairs a function computing what a typical wrong answer returns with the hint
    to give when the student's result matches it. This is how a checker can say "your gates
    look swapped" instead of only "wrong".
    """
    for compute, hint in mistakes:
        try:
            expected = compute()
        except Exception:  # a mistake that would crash on this input cannot be the one
            continue
        if same(got, expected):
            return hint
    return None


def success(message: str) -> None:
    """Print the one-line success message of a checker."""
    print(f"\N{WHITE HEAVY CHECK MARK} {message}")
