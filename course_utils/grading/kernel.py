"""What every grading kernel runs before the first cell (``nbgrader_config.py`` starts it).

:func:`prepare` caps the printed output of each cell, notes the clean state of torch and of the
course's files (by importing ``course_utils.checks._guard``) and, after every cell, reports on
stderr anything an answer cell replaced: nbgrader gives 0 points to a test cell that writes to
stderr, so a test whose ``torch.allclose`` was patched *during* the cell earns nothing.
"""

from __future__ import annotations

import sys


class _CappedStream:
    """Wraps the kernel's ``sys.stdout``/``sys.stderr``: passes on ``limit`` characters per cell,
    then one notice, then nothing."""

    def __init__(self, stream, limit: int):
        self._stream, self._limit, self._written = stream, limit, 0

    def reset(self, *_args) -> None:
        self._written = 0

    def write(self, text: str) -> int:
        room = self._limit - self._written
        self._written += len(text)
        if room > 0:
            self._stream.write(text[:room])
            if len(text) > room:
                self._stream.write(f"\n... [output cut by the grader after {self._limit} characters]\n")
        return len(text)

    def __getattr__(self, name):  # flush, set_parent, isatty, ... of the real stream
        return getattr(self._stream, name)


def limit_output(max_chars: int = 100_000) -> None:
    """Cut each cell's printed output after ``max_chars`` characters; runs inside the kernel.

    nbgrader trims long outputs only after the notebook ran, so a submission that prints in an
    infinite loop would send about 100 MB a second to the grader until the time limit stops it,
    filling the memory of the kernel and of nbgrader (and, past ``Execute.iopub_timeout``, failing
    the whole notebook). The first stderr line still reaches nbgrader, which gives 0 points to a
    test cell that writes to stderr.
    """
    import contextlib

    from IPython import get_ipython

    streams = [_CappedStream(sys.stdout, max_chars), _CappedStream(sys.stderr, max_chars)]
    sys.stdout, sys.stderr = streams
    shell = get_ipython()
    if shell is not None:
        for stream in streams:
            shell.events.register("pre_run_cell", stream.reset)
        # IPython 9 also keeps a copy of everything a cell prints (for `%history -o`), which
        # grows without limit in the same loop; grading needs no such history.
        shell._tee = lambda channel: contextlib.nullcontext()


# What an answer could change in the IPython shell to skip or silence the test cells.
_SHELL_ATTRIBUTES = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers",
                     "custom_exceptions", "CustomTB", "run_cell", "run_cell_async", "run_code",
                     "run_ast_nodes", "transform_cell", "showtraceback", "_showtraceback",
                     "showsyntaxerror", "InteractiveTB", "displayhook", "display_pub")


def _shell_state(shell) -> dict[str, object]:
    """What the shell's cell-running machinery holds now (lists copied, objects by identity)."""
    import inspect

    state: dict[str, object] = {}
    for name in _SHELL_ATTRIBUTES:
        value = getattr(shell, name, None)
        if isinstance(value, list):  # transformers: compare the contents
            value = tuple(value)
        elif inspect.ismethod(value):  # a new bound method every time: compare its function
            value = value.__func__
        state[name] = value
    return state


def _differences(clean: dict[str, object], now: dict[str, object]) -> list[str]:
    changed = []
    for name in clean.keys() | now.keys():
        before, after = clean.get(name), now.get(name)
        same = before == after if isinstance(before, (tuple, dict)) else before is after
        if not same:
            changed.append(f"the IPython shell's {name} was changed by an answer cell")
    return sorted(changed)


def report_tampering_after_each_cell() -> None:
    """After every cell, write to stderr what an answer replaced (see ``checks._guard``)."""
    from IPython import get_ipython

    try:
        from course_utils.checks import _guard
    except Exception:  # noqa: BLE001  (a broken checker package fails the test cells anyway)
        return
    _guard.note_clean_state()  # now that course_utils.checks is fully imported
    shell = get_ipython()
    if shell is None:
        return

    def report(_result=None) -> None:
        problems = _guard.tampering() + _differences(clean_shell, _shell_state(shell))
        if not all(hook in shell.events.callbacks[event] for event, hook in our_hooks):
            problems.append("the grader's hooks were removed from the IPython shell by an answer cell")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            print(f"grader: {problems[0]}{more}", file=sys.stderr)

    shell.events.register("post_run_cell", report)
    our_hooks = [(event, hook) for event, hooks in shell.events.callbacks.items() for hook in hooks]
    clean_shell = _shell_state(shell)


def prepare(max_chars: int = 100_000) -> None:
    """Everything a grading kernel does before the first cell.

    The tampering report needs torch and ``course_utils.checks`` (seconds to import), so the
    grader asks for it (``COURSE_UTILS_GUARD=1``) only for notebooks that use ``course_utils``.
    """
    import os

    limit_output(max_chars)
    if os.environ.get("COURSE_UTILS_GUARD") == "1":
        report_tampering_after_each_cell()
