"""Small helpers shared by every exercise checker.

A checker calls the student's function, compares the result with an oracle (usually PyTorch
itself) and either prints one success line or raises ``AssertionError`` with a message that says
*what* differs and gives a hint. These helpers keep the messages short and alike.
"""

from __future__ import annotations

import contextlib
import random
import traceback
from typing import Any, Callable, Iterator, Optional, Sequence
from unittest import mock

import torch
from torch import nn

Tensor = torch.Tensor


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


# ----------------------------------------------------------------------------------------------
# Random inputs and argument checks shared by several lessons' checkers
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with its own random stream, leaving the student's stream untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def random_sizes(seed: int) -> dict[str, int]:
    """Random sizes with batch > 1, several steps, hidden_size != input_size, batch != seq_len."""
    with seeded(seed):
        batch = int(torch.randint(2, 4, ()))
        seq_len = int(torch.randint(4, 7, ()))
        input_size = int(torch.randint(3, 7, ()))
        hidden_size = input_size + int(torch.randint(1, 4, ()))
    return {"batch": batch, "seq_len": seq_len, "input_size": input_size, "hidden_size": hidden_size}


def randomize(module: nn.Module) -> nn.Module:
    """Give every weight and bias random values (biases too: a missing bias must show)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.4)
    return module


def as_pair(got: Any, name: str, what: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Check that the student returned a pair of tensors (e.g. ``(output, h_n)``)."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise AssertionError(
            f"{name} should return a pair ({what[0]}, {what[1]}), but it returned {describe(got)}."
        )
    first = assert_tensor(got[0], f"{what[0]} (the first value {name} returns)")
    second = assert_tensor(got[1], f"{what[1]} (the second value {name} returns)")
    return first, second


def clones(*tensors: Tensor) -> list[Tensor]:
    return [t.detach().clone() for t in tensors]


def check_inputs_untouched(name: str, given: Sequence[Tensor], originals: Sequence[Tensor],
                            names: Sequence[str]) -> None:
    """Fail when the student's function changed one of its arguments in place."""
    for tensor, original, arg in zip(given, originals, names):
        if not torch.equal(tensor, original):
            raise AssertionError(
                f"{name} changed its argument `{arg}` in place. Compute new tensors instead "
                "(e.g. `h = torch.tanh(...)`, not `h[:] = ...` or `h += ...`)."
            )


class ForbiddenModuleError(RuntimeError):
    """Raised when a counting exercise builds the PyTorch module instead of using a formula."""


def call_without_modules(fn: Callable, *args: Any, name: str) -> Any:
    """Call the student's ``fn`` while building nn.RNN / nn.LSTM / nn.GRU (or a cell) is refused.

    The counting exercises ask for a formula; building the module and counting its parameters
    would skip the point of the exercise.
    """
    refused = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        refused.append(True)
        raise ForbiddenModuleError("building a recurrent module is not allowed here")

    try:
        with mock.patch.object(nn.modules.rnn.RNNBase, "__init__", refuse), \
                mock.patch.object(nn.modules.rnn.RNNCellBase, "__init__", refuse):
            return call_student(fn, *args, name=name)
    except AssertionError:
        if refused:
            raise AssertionError(
                f"{name} builds a recurrent PyTorch module (nn.RNN, nn.LSTM, ...): derive the "
                "answer from the sizes with a formula instead, that is the point of the exercise."
            ) from None
        raise


def random_lengths(rng: random.Random, batch: int, longest: int) -> Tensor:
    """Random lengths in 1..longest, with ``longest`` itself present and at least one short one."""
    lengths = [rng.randint(1, longest) for _ in range(batch)]
    lengths[rng.randrange(batch)] = longest
    lengths[rng.randrange(batch)] = max(1, longest // 3)
    return torch.tensor(lengths)
