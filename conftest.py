"""pytest configuration shared by the unit tests and the notebooks run under nbval.

At the end of a run it prints how long each notebook and each test file took, so that CI's
clock (under 70 minutes on a 2-core CPU, CONTRIBUTING.md) is watched notebook by notebook.
"""

from __future__ import annotations

from collections import defaultdict

_seconds_per_file: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report) -> None:
    _seconds_per_file[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _seconds_per_file:
        return
    terminalreporter.section("time per notebook and test file")
    for path, seconds in sorted(_seconds_per_file.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_seconds_per_file.values()):8.1f} s  in all")
