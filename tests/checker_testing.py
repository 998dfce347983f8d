"""Helpers shared by the tests of the exercise checkers (tests/test_checks_*.py)."""

from __future__ import annotations

import pytest


def rejects(checker, fn, *fragments: str) -> str:
    """Run ``checker(fn)``, expect an AssertionError whose message contains every fragment."""
    with pytest.raises(AssertionError) as info:
        checker(fn)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"expected {fragment!r} in the message: {message}"
    return message


def not_implemented(*args, **kwargs):
    """The body of every exercise in the student version."""
    raise NotImplementedError
