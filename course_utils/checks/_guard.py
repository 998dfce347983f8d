"""Load a lesson's checkers afresh from the course's files, and refuse to grade a tampered kernel.

A graded test cell runs in the same Python process as the student's answer cells, so it must not
trust what an answer may have changed:

- an answer can replace ``course_utils.checks.check_rnn_forward`` or a whole module in
  ``sys.modules``: :func:`fresh_checks` executes the checker module's file (and the course
  modules it imports) again under a private package name, so the checkers it returns are the ones
  on disk, whatever the answer cells did to the imported copies;
- an answer can patch the functions the checkers compare with (``torch.allclose = lambda *a, **k:
  True``, ``torch.Tensor.__eq__``, ``nn.RNN.forward``, ``builtins.isinstance``) or rewrite the
  checker files themselves: when this module is imported (the grading kernel imports it before the
  first cell; a notebook's setup cell imports it too) it notes which object every such name holds
  and a digest of every file of ``course_utils``. :func:`fresh_checks` compares both with that
  clean state before it returns, and each checker it returns compares again after it ran (an
  answer could patch from inside the function the checker calls). Any difference raises
  ``AssertionError`` (e.g. ``torch.allclose was replaced by an answer cell: ...``), so that test
  cell earns nothing.

This makes cheating from an answer cell hard and visible; it cannot make it impossible, because
the answer runs in the same process and could, with enough effort, undo these checks too. The
grader therefore also scans the answers for such code and flags it for a human look (see
``course_utils.grading.flags``), and it keeps one student's code from reaching another's grade
(``course_utils.grading.isolation``).
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import importlib.util
import os
import secrets
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch
import torch.nn.functional
import torch.nn.init
import torch.nn.utils.rnn

# The folder of the package ``course_utils`` (this file is course_utils/checks/_guard.py).
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_TORCH_DIR = os.path.dirname(os.path.realpath(torch.__file__))

# Our own references to what fresh_checks calls, taken before any answer cell ran.
_spec_from_file_location = importlib.util.spec_from_file_location
_module_from_spec = importlib.util.module_from_spec
_sha256 = hashlib.sha256

# Modules whose public functions and classes the checkers (or the test cells' hidden tests) use.
_WATCHED_MODULES = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.utils.rnn",
                    "torch.linalg", "torch.autograd", "torch.random", "torch.testing", "math",
                    "course_utils", "course_utils.checks", "course_utils.checks._guard")
# Builtins a checker calls; an answer could replace them in ``builtins``.
_WATCHED_BUILTINS = ("abs", "all", "any", "bool", "callable", "dict", "enumerate", "float", "getattr",
                     "hasattr", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max",
                     "min", "next", "range", "repr", "round", "set", "sorted", "str", "sum", "tuple",
                     "type", "zip", "exec", "compile", "__import__")


# Attributes that are no code, or that Python itself caches on a class: ``copy.copy``, pickling
# and ``torch.save`` of a tensor or a module store ``__slotnames__`` (copyreg's list of slots).
_PLAIN_CLASS_ATTRIBUTES = ("__doc__", "__dict__", "__weakref__", "__annotations__", "__slotnames__")


def _public(namespace: dict) -> dict[str, Any]:
    """The names of a module's namespace worth watching: public names and dunder methods."""
    return {name: value for name, value in namespace.items()
            if not name.startswith("_") or (name.startswith("__") and name.endswith("__")
                                            and callable(value))}


def _watched_classes() -> list[type]:
    """Tensor, its C base, and every class of ``torch.nn`` (``nn.RNN.forward`` is an oracle)."""
    classes = [torch.Tensor, torch._C.TensorBase, torch.Size, torch.Generator]
    classes += [value for value in vars(torch.nn).values() if isinstance(value, type)]
    return classes


def _current_state() -> dict[str, Any]:
    """``{"torch.allclose": <object>, ...}``: what every watched name holds right now."""
    state: dict[str, Any] = {}
    for module_name in _WATCHED_MODULES:
        module = sys.modules.get(module_name)
        state[f"sys.modules[{module_name!r}]"] = module
        if isinstance(module, ModuleType):
            for name, value in _public(vars(module)).items():
                if callable(value) or isinstance(value, ModuleType):
                    state[f"{module_name}.{name}"] = value
    for cls in _watched_classes():
        names = [name for name in vars(cls) if name not in _PLAIN_CLASS_ATTRIBUTES]
        state[f"{cls.__module__}.{cls.__qualname__}.<names>"] = frozenset(names)
        for name in names:
            state[f"{cls.__module__}.{cls.__qualname__}.{name}"] = vars(cls)[name]
    for name in _WATCHED_BUILTINS:
        state[f"builtins.{name}"] = getattr(builtins, name, None)
    return state


def _file_digests() -> dict[str, str]:
    """SHA-256 of every Python file of ``course_utils`` (the checkers and what they import)."""
    return {str(path.relative_to(_PACKAGE_DIR.parent)): _sha256(path.read_bytes()).hexdigest()
            for path in sorted(_PACKAGE_DIR.rglob("*.py"))}


def _is_torch_wrapper(value: Any, original: Any) -> bool:
    """Whether ``value`` is torch's own wrapper of ``original``.

    Torch replaces a few of its functions itself: importing ``torch._dynamo`` (which an
    optimizer's first ``step`` does) wraps ``torch.manual_seed``. Such a wrapper is code from
    torch's own folder whose ``__wrapped__`` leads back to the original.
    """
    code = getattr(value, "__code__", None)
    if code is None or not os.path.realpath(code.co_filename).startswith(_TORCH_DIR + os.sep):
        return False
    for _ in range(5):
        value = getattr(value, "__wrapped__", None)
        if value is original:
            return True
        if value is None:
            return False
    return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# The clean state, taken when this module is first imported (before any answer cell ran), and
# again by a grading kernel once ``course_utils.checks`` is fully imported. The files are watched
# only in a grading kernel (the grader sets COURSE_UTILS_GRADING=1): elsewhere, a contributor who
# edits a checker while a notebook is open should not be told to restart.
_GRADING = os.environ.get("COURSE_UTILS_GRADING") == "1"
_CLEAN_STATE: dict[str, Any] = {}
_CLEAN_FILES: dict[str, str] = {}


def note_clean_state() -> None:
    """Remember the current state as the clean one (call it before any student code runs)."""
    global _CLEAN_STATE, _CLEAN_FILES
    _CLEAN_STATE = _current_state()
    _CLEAN_FILES = _file_digests() if _GRADING else {}


note_clean_state()


def tampering() -> list[str]:
    """What differs from the clean state: one line per replaced name or changed file."""
    problems = []
    state = _current_state()
    for key, original in _CLEAN_STATE.items():
        if key.endswith(".<names>"):  # attributes added to a class (``torch.Tensor.__eq__ = ...``)
            added = sorted(state.get(key, original) - original)
            problems += [f"{key[:-len('<names>')]}{name} was replaced by an answer cell (set on the class)"
                         for name in added]
        elif key in state and state[key] is not original and not _is_torch_wrapper(state[key], original):
            problems.append(f"{key} was replaced by an answer cell: it is {_short(state[key])}, "
                            f"not PyTorch's/Python's own {_short(original)}")
        elif key not in state:
            problems.append(f"{key} was deleted by an answer cell")
    if sys.modules.get("torch") is not _CLEAN_STATE["sys.modules['torch']"]:
        problems.append("sys.modules['torch'] is not the real torch module")
    if _GRADING:
        files = _file_digests()
        problems += [f"{path} was changed on disk after the kernel started"
                     for path, digest in files.items() if _CLEAN_FILES.get(path) != digest]
        problems += [f"{path} was deleted after the kernel started"
                     for path in sorted(_CLEAN_FILES.keys() - files.keys())]
    return problems


def verify_untouched() -> None:
    """Raise ``AssertionError`` naming what an answer cell replaced, if it replaced anything."""
    problems = tampering()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise AssertionError(f"{problems[0]}{more}. The checkers cannot be trusted in this kernel: "
                             "restart it and run the notebook without that code.")


def _package(name: str, folder: Path) -> None:
    """An empty package ``name`` whose submodules are read from ``folder``."""
    package = ModuleType(name)
    package.__path__ = [str(folder)]
    sys.modules[name] = package


def _load(name: str, path: Path) -> ModuleType:
    """Execute the file ``path`` as the module ``name``."""
    spec = _spec_from_file_location(name, path)
    module = _module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _verified(checker: Callable) -> Callable:
    """``checker``, followed by :func:`verify_untouched` (the student's code runs inside it)."""

    @functools.wraps(checker)
    def run_then_verify(*args: Any, **kwargs: Any) -> Any:
        try:
            return checker(*args, **kwargs)
        finally:
            verify_untouched()

    return run_then_verify


def fresh_checks(lesson: int) -> ModuleType:
    """The checkers of lesson ``lesson`` (``course_utils/checks/lessonNN.py``), loaded afresh.

    Use it in every graded test cell::

        from course_utils.checks import fresh_checks
        checks = fresh_checks(1)
        checks.check_rnn_forward(rnn_forward)

    Raises ``AssertionError`` when an answer cell replaced a function the checkers rely on, or
    changed the course's files (see the module's docstring).
    """
    verify_untouched()
    path = _PACKAGE_DIR / "checks" / f"lesson{lesson:02d}.py"
    if not path.is_file():
        raise ValueError(f"lesson {lesson} has no checker module ({path.name} not found)")
    private = f"_pristine_course_utils_{secrets.token_hex(8)}"
    try:
        # A private copy of the package: relative imports in the checkers (``from .._common``,
        # ``from ..models``) resolve to fresh copies read from disk, not to the imported ones.
        _package(private, _PACKAGE_DIR)
        _package(f"{private}.checks", _PACKAGE_DIR / "checks")
        module = _load(f"{private}.checks.lesson{lesson:02d}", path)
    finally:
        for name in [n for n in sys.modules if n == private or n.startswith(private + ".")]:
            del sys.modules[name]
    for name, value in vars(module).items():
        if name.startswith("check_") and callable(value):
            setattr(module, name, _verified(value))
    return module
