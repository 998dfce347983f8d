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


def devices_seen(checker, arguments_of, **kwargs) -> set[str]:
    """Run ``checker`` on the "meta" device with a student that records the device of the tensors
    it is given (``arguments_of(*args)`` picks them) and then gives up; return those devices.

    On a CPU-only machine this shows that a checker builds its inputs on the device it is asked
    for (the notebooks pass their ``device``, "cuda" on a GPU) instead of on the CPU."""
    seen: set[str] = set()

    def recording(*args):
        seen.update(t.device.type for t in arguments_of(*args))
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not implemented yet"):
        checker(recording, device="meta", **kwargs)
    return seen


def keeps_random_state(run) -> bool:
    """True when ``run()`` leaves the global random stream of torch as it found it."""
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run()
    return torch.equal(torch.rand(3), expected)
