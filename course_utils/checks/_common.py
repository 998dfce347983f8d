"""Small helpers shared by every exercise checker.

A checker calls the student's function, compares the result with an oracle (usually PyTorch
itself) and either prints one success line or raises ``AssertionError`` with a message that says
*what* differs and gives a hint. These helpers keep the messages short and alike.

Conventions every checker follows (lessons 1 to 6):

- **Devices.** A checker that builds tensors takes ``device=None``; :func:`resolve_device` turns
  ``None`` into :func:`default_device` (``cuda`` when available, else ``cpu``, as the notebooks'
  setup cell does). Random inputs are drawn on the CPU with a local generator (the same numbers on
  every machine) and moved to that device with :func:`on_device`; the student's function runs on
  them there. Test cells pass the notebook's own ``device``.
- **Random numbers.** Never the student's global random state: use :func:`generator` (a local
  ``torch.Generator``), ``random.Random(seed)``, or :func:`seeded`, which restores the state.
- **Comparisons.** :func:`is_close` / :func:`assert_close` are relative and float32-aware
  (:func:`tolerances`); they accept a Python number or a 0-d tensor where a scalar is expected,
  on any device.
- **Calling the student.** Always through :func:`call_student`: an exception becomes one line
  naming the student's own line of code; ``forbid=`` refuses recurrent layers, building modules
  or autograd during the call (:func:`forbidding`).
- **Exactness on a GPU.** NVIDIA GPUs since Ampere run cuDNN's recurrent layers in TF32 by
  default (errors near 1e-3), far above the checkers' tolerances. So the student's code runs in
  full float32 (:func:`call_student` does it, with ``training.full_float32``), and a checker whose
  reference also runs on the device is decorated with :func:`exact_float32`: the whole check,
  student and reference, in full float32. The settings are restored afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import random
import sysconfig
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union
from unittest import mock

import torch
from torch import nn
from torch.autograd.variable import Variable
from torch.overrides import TorchFunctionMode

from ..training import full_float32

Tensor = torch.Tensor
#: Where a checker builds its inputs: a device, its name, or None for the default device.
Device = Union[torch.device, str, None]

# Relative tolerance of every comparison: round-off of the less precise dtype, not a different formula.
RTOL = {torch.float64: 1e-9}
RTOL_DEFAULT = 1e-4  # float32 (and anything less precise than float64)


def default_device() -> torch.device:
    """The notebooks' device: ``cuda`` when a GPU is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: Any = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means :func:`default_device`."""
    return default_device() if device is None else torch.device(device)


def on_device(device: torch.device, *tensors: Tensor) -> list[Tensor]:
    """Copies of ``tensors`` on ``device`` (detached: the student gets fresh leaves)."""
    return [t.detach().to(device).clone() for t in tensors]


def keeps_random_state(checker: Callable) -> Callable:
    """Decorate a checker so that the student's global random state is the same after it: building
    a module (``nn.LSTM(...)`` draws its initial weights) or the student's own code may draw from it."""
    @functools.wraps(checker)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            return checker(*args, **kwargs)
    return wrapper


def exact_float32(checker: Callable) -> Callable:
    """Decorate a checker so that all of it (the student's code and the reference) runs in full
    float32 on a GPU: no TF32, whose errors near 1e-3 would fail correct work. Nothing changes on a
    CPU; the settings are restored afterwards (``training.full_float32``)."""
    @functools.wraps(checker)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with full_float32():
            return checker(*args, **kwargs)
    return wrapper


def generator(seed: int) -> torch.Generator:
    """A local CPU random stream: draw with ``torch.randn(..., generator=g)``, never the global one."""
    return torch.Generator().manual_seed(seed)


class StudentCodeError(AssertionError):
    """The student's function raised an exception; the message shows it without library noise."""


class ForbiddenModuleError(RuntimeError):
    """Raised inside the student's call when it uses something the exercise forbids."""


# Folders whose code is not the student's: PyTorch, installed packages, the standard library and
# course_utils itself. The deepest traceback frame outside them is the student's own line.
_LIBRARY_DIRS = tuple(sorted({os.path.realpath(p) + os.sep for p in (
    Path(torch.__file__).parent, Path(__file__).parent.parent,
    *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")))}))


def _is_student_file(filename: str) -> bool:
    return not os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def student_line(exc: BaseException) -> str:
    """`` (line N: `code`)`` for the deepest frame of ``exc``'s traceback in the student's code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_student_file(f.filename)]
    if not frames:
        return ""
    code = (frames[-1].line or "").strip()
    return f" (line {frames[-1].lineno}: `{code}`)" if code else f" (line {frames[-1].lineno})"


# What ``forbid=`` refuses during the student's call (see :func:`forbidding`).
_RECURRENT_KERNELS = {
    "rnn_tanh", "rnn_relu", "lstm", "gru", "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell",
    "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "_cudnn_rnn", "miopen_rnn", "mkldnn_rnn_layer",
    "quantized_lstm_cell", "quantized_gru_cell", "quantized_rnn_tanh_cell", "quantized_rnn_relu_cell",
}
_WHY = {
    "recurrent": "PyTorch's recurrent layers (nn.RNN, nn.LSTM, nn.GRU, their cells, or their "
                 "functional forms such as torch._VF.lstm or torch.func.functional_call of such a "
                 "module): write the computation with tensor operations, that is the exercise",
    "modules": "a recurrent PyTorch module (nn.RNN, nn.LSTM, ...): derive the answer from the "
               "sizes with a formula instead, that is the point of the exercise",
    "autograd": "autograd (backward(), torch.autograd.grad, torch.func, ...): compute the "
                "gradients by hand, autograd is what the checker compares your answer with",
}


class _RefuseRecurrentKernels(TorchFunctionMode):
    def __init__(self, used: list[str]):
        super().__init__()
        self.used = used

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "").split(".")[0] in _RECURRENT_KERNELS:
            self.used.append("recurrent")
            raise ForbiddenModuleError("recurrent layers are not allowed in this exercise")
        return func(*args, **(kwargs or {}))


class _RefuseBackward:
    """Stands in for autograd's engine while the student's code runs."""

    def __init__(self, used: list[str]):
        self.used, self.engine = used, Variable._execution_engine

    def run_backward(self, *args: Any, **kwargs: Any) -> None:
        self.used.append("autograd")
        raise ForbiddenModuleError("autograd is not allowed in this exercise")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


@contextlib.contextmanager
def forbidding(forbid: Sequence[str], used: list[str]) -> Iterator[None]:
    """Refuse, inside the block, what ``forbid`` names; each use is appended to ``used``.

    ``"recurrent"``: running any recurrent kernel, however it is reached (``nn.LSTM``,
    ``nn.GRUCell``, ``torch._VF.rnn_tanh``, ``torch.func.functional_call``, ``torch.ops.aten``);
    ``"modules"``: building ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` or a cell; ``"autograd"``: any
    backward pass (``backward()``, ``torch.autograd.grad``, ``torch.func.grad``, ...).
    """
    def refuse_building(*args: Any, **kwargs: Any) -> None:
        used.append("modules")
        raise ForbiddenModuleError("building a recurrent module is not allowed here")

    with contextlib.ExitStack() as stack:
        if "modules" in forbid:
            stack.enter_context(mock.patch.object(nn.modules.rnn.RNNBase, "__init__", refuse_building))
            stack.enter_context(mock.patch.object(nn.modules.rnn.RNNCellBase, "__init__", refuse_building))
        if "autograd" in forbid:
            engine = _RefuseBackward(used)
            stack.enter_context(mock.patch.object(Variable, "_execution_engine", engine))
        if "recurrent" in forbid:
            stack.enter_context(_RefuseRecurrentKernels(used))
        yield


def call_student(fn: Callable, *args: Any, name: str | None = None, forbid: Sequence[str] = (),
                 **kwargs: Any) -> Any:
    """Call the student's ``fn`` and turn any exception it raises into a clear ``AssertionError``.

    ``NotImplementedError`` (the placeholder in the student version) gets its own message; any
    other exception is shown with the student's own line (not a line deep inside PyTorch).
    ``forbid`` (see :func:`forbidding`) refuses what the exercise rules out, even when the
    student's code catches the exception. The call runs in full float32 (``full_float32``: no TF32
    on a GPU), as the checkers' references do.
    """
    name = name or getattr(fn, "__name__", "your function")
    if not callable(fn):
        raise AssertionError(f"Expected a function for {name}, got {type(fn).__name__}.")
    used: list[str] = []
    try:
        with forbidding(forbid, used), full_float32():
            result = fn(*args, **kwargs)
    except NotImplementedError:
        raise StudentCodeError(
            f"{name} is not implemented yet: replace `raise NotImplementedError` with your code."
        ) from None
    except Exception as exc:  # the student's own error: show its last line of their code
        if used:
            raise StudentCodeError(f"{name} uses {_WHY[used[0]]}.") from None
        raise StudentCodeError(f"{name} raised {type(exc).__name__}: {exc}{student_line(exc)}") from None
    if used:
        raise StudentCodeError(f"{name} uses {_WHY[used[0]]}.")
    return result


def call_without_modules(fn: Callable, *args: Any, name: str) -> Any:
    """Call the student's ``fn`` while building (or running) a recurrent module is refused."""
    return call_student(fn, *args, name=name, forbid=("modules", "recurrent"))


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


def as_scalar_tensor(value: Any) -> Optional[Tensor]:
    """A Python number (not a bool) as a float64 0-d tensor, a tensor as itself, else ``None``."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def whole_number(got: Any, what: str) -> int:
    """``got`` as an int: an int, or a float or 1-element tensor holding a whole number."""
    value = as_scalar_tensor(got)
    if value is None or value.numel() != 1 or value.dtype == torch.bool or not float(value.item()).is_integer():
        raise AssertionError(f"{what} should return a whole number, got {got!r}.")
    return int(value.item())


def tolerances(got: Any, expected: Tensor) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing ``got`` with ``expected``: relative, float32-aware.

    ``rtol`` is set by the less precise of the two (1e-4 for float32, 1e-9 only when both are
    float64 tensors: a Python float may hold a float32 result, e.g. ``x.mean().item()``);
    ``atol`` is ``rtol`` times the largest value of ``expected``, so that entries that should be
    0 may carry the round-off of the others, whatever the scale of the numbers.
    """
    precise = isinstance(got, torch.Tensor) and got.dtype == expected.dtype == torch.float64
    rtol = RTOL[torch.float64] if precise else RTOL_DEFAULT
    scale = expected.detach().abs().max().item() if expected.numel() else 0.0
    return rtol, rtol * (scale if scale > 0 else 1e-6)


def _compare(got: Any, expected: Any, rtol: float | None, atol: float | None) -> Optional[float]:
    """The largest difference between ``got`` and ``expected`` when they differ, else ``None``;
    ``math.inf`` when ``got`` is not a tensor (or number) of ``expected``'s shape."""
    given = got  # as the student returned it: its own precision sets the tolerance
    got, expected = as_scalar_tensor(got), as_scalar_tensor(expected)
    if got is None or expected is None or tuple(got.shape) != tuple(expected.shape):
        return math.inf
    expected = expected.detach()
    if not expected.is_floating_point():
        expected = expected.double()
    try:
        default_rtol, default_atol = tolerances(given, expected)
        got = got.detach().to(expected.device, torch.promote_types(got.dtype, expected.dtype))
        rtol, atol = default_rtol if rtol is None else rtol, default_atol if atol is None else atol
        if torch.allclose(got, expected.to(got.dtype), rtol=rtol, atol=atol):
            return None
        return (got - expected).abs().max().item()
    except (RuntimeError, NotImplementedError):  # e.g. a complex tensor, or the meta device
        return math.inf


def is_close(got: Any, expected: Any, rtol: float | None = None, atol: float | None = None) -> bool:
    """True when ``got`` matches ``expected``: a tensor of the same shape and values (within
    :func:`tolerances`, on any device, any float dtype), a number or 0-d tensor where ``expected``
    is one, or a tuple/list of such. Never raises."""
    if isinstance(expected, (tuple, list)):
        return (
            isinstance(got, (tuple, list))
            and len(got) == len(expected)
            and all(is_close(g, e, rtol, atol) for g, e in zip(got, expected))
        )
    return _compare(got, expected, rtol, atol) is None


def assert_close(got: Any, expected: Any, what: str, hint: str = "",
                 atol: float | None = None, rtol: float | None = None) -> None:
    """Check shape and values (see :func:`is_close`); the message gives the largest difference."""
    if as_scalar_tensor(expected) is not None and as_scalar_tensor(expected).dim() > 0:
        assert_shape(got, expected.shape, what)
    diff = _compare(got, expected, rtol, atol)
    if diff is not None:
        message = f"{what} differs from the expected result (largest difference {diff:.3g})."
        raise AssertionError(f"{message} {hint}".strip())


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
    rng = random.Random(seed)
    batch, seq_len, input_size = rng.randint(2, 3), rng.randint(4, 6), rng.randint(3, 6)
    return {"batch": batch, "seq_len": seq_len, "input_size": input_size,
            "hidden_size": input_size + rng.randint(1, 3)}


def randomize(module: nn.Module, seed: int | None = None) -> nn.Module:
    """Give every weight and bias random values (biases too: a missing bias must show).

    With ``seed``, the values come from a local generator (the student's stream is not used)."""
    g = None if seed is None else generator(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g) * 0.4)
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


def check_inputs_untouched(name: str, given: Sequence[Tensor], originals: Sequence[Tensor],
                            names: Sequence[str]) -> None:
    """Fail when the student's function changed one of its arguments in place."""
    for tensor, original, arg in zip(given, originals, names):
        if not torch.equal(tensor.detach().cpu(), original.detach().cpu()):
            raise AssertionError(
                f"{name} changed its argument `{arg}` in place. Compute new tensors instead "
                "(e.g. `h = torch.tanh(...)`, not `h[:] = ...` or `h += ...`)."
            )


def random_lengths(rng: random.Random, batch: int, longest: int) -> Tensor:
    """Random lengths in 1..longest, with ``longest`` itself present and at least one short one."""
    lengths = [rng.randint(1, longest) for _ in range(batch)]
    lengths[rng.randrange(batch)] = longest
    lengths[rng.randrange(batch)] = max(1, longest // 3)
    return torch.tensor(lengths)


def result_on(got: Any, device: torch.device, what: str) -> Tensor:
    """Check that the student's tensor ``got`` lies on ``device`` (where its inputs were); return it
    detached on the CPU, where the checker's oracle computed the expected result (used by lessons 4-6)."""
    got = assert_tensor(got, what)
    if got.device.type != device.type:
        raise AssertionError(
            f"{what} is on the {got.device.type} device, but its inputs were on {device.type}: create "
            "new tensors on the inputs' device (e.g. torch.arange(n, device=x.device)).")
    return got.detach().cpu()
