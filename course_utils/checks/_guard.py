"""Load a lesson's checkers afresh from the course's files, out of reach of ``sys.modules``.

A graded test cell must not trust what an answer cell may have changed: an answer can replace
``course_utils.checks.check_rnn_forward`` or a whole module in ``sys.modules``. So each test cell
calls :func:`fresh_checks`, which executes the checker module's file (and the course modules it
imports) again under a private package name, and then removes that name from ``sys.modules``: the
checkers it returns are the ones on disk, whatever the answer cells did to the imported copies.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from pathlib import Path
from types import ModuleType

# The folder of the package ``course_utils`` (this file is course_utils/checks/_guard.py).
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _package(name: str, folder: Path) -> None:
    """An empty package ``name`` whose submodules are read from ``folder``."""
    package = ModuleType(name)
    package.__path__ = [str(folder)]
    sys.modules[name] = package


def _load(name: str, path: Path) -> ModuleType:
    """Execute the file ``path`` as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fresh_checks(lesson: int) -> ModuleType:
    """The checkers of lesson ``lesson`` (``course_utils/checks/lessonNN.py``), loaded afresh.

    Use it in every graded test cell::

        from course_utils.checks import fresh_checks
        checks = fresh_checks(1)
        checks.check_rnn_forward(rnn_forward)
    """
    path = _PACKAGE_DIR / "checks" / f"lesson{lesson:02d}.py"
    if not path.is_file():
        raise ValueError(f"lesson {lesson} has no checker module ({path.name} not found)")
    private = f"_pristine_course_utils_{secrets.token_hex(8)}"
    try:
        # A private copy of the package: relative imports in the checkers (``from .._common``,
        # ``from ..models``) resolve to fresh copies read from disk, not to the imported ones.
        _package(private, _PACKAGE_DIR)
        _package(f"{private}.checks", _PACKAGE_DIR / "checks")
        return _load(f"{private}.checks.lesson{lesson:02d}", path)
    finally:
        for name in [n for n in sys.modules if n == private or n.startswith(private + ".")]:
            del sys.modules[name]
