"""Full-size runs recorded once, so that a lesson can quote them with the command that repeats them.

Some results take longer than a lesson should run: the best recipe trained on all 800 tokens of
every review, a language model pretrained for ten minutes. A lesson quotes such a number from a
*recorded run*: the command, the JSON summary it printed, and the machine it ran on, stored in
``course_utils/runs/<name>.json``. Anyone can repeat the command and compare::

    python -m course_utils.recorded run attention -- python -m course_utils.train --model attention --json
    python -m course_utils.recorded show attention

``run`` executes the command, reads the JSON object it prints last on stdout, and saves it with the
command, the date, the versions and the number of CPU cores. In a notebook::

    from course_utils.recorded import recorded_run
    run = recorded_run("attention")
    run["summary"]["test_acc"], run["command"]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

RUNS_DIR = Path(__file__).resolve().parent / "runs"
REPOSITORY_ROOT = RUNS_DIR.parent.parent


class RecordedRunError(RuntimeError):
    """A recorded run is missing or unreadable, or a command to record printed no JSON."""


def _path(name: str, runs_dir: Optional[Path] = None) -> Path:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(f"a run's name is letters, digits, '-', '_' and '.', e.g. 'attention'; got {name!r}")
    return (runs_dir or RUNS_DIR) / f"{name}.json"


def machine() -> str:
    """The machine a run was made on, in words: processor cores, device, PyTorch version."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores, {device}, PyTorch {torch.__version__}, Python {platform.python_version()}"


def save_run(name: str, command: Sequence[str], summary: dict, seconds: float,
             runs_dir: Optional[Path] = None) -> Path:
    """Store ``summary`` (what ``command`` printed) as the recorded run ``name``; return its path."""
    path = _path(name, runs_dir)
    record = {
        "name": name,
        "command": shlex.join(command),
        "summary": {key: _relative(value) for key, value in summary.items()},
        "wall_seconds": round(seconds, 1),
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def _relative(value):
    """A path inside the repository as it is written from the repository's folder (``data/...``)."""
    if isinstance(value, str) and value.startswith(f"{REPOSITORY_ROOT}{os.sep}"):
        return os.path.relpath(value, REPOSITORY_ROOT)
    return value


def last_json_object(stdout: str) -> dict:
    """The last line of ``stdout`` that is a JSON object (what ``--json`` prints)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise RecordedRunError("the command printed no JSON object on stdout (did you pass --json?)")


def record(name: str, command: Sequence[str], runs_dir: Optional[Path] = None) -> Path:
    """Run ``command`` (its progress goes to stderr as usual) and save what it prints as run ``name``."""
    start = datetime.datetime.now()
    finished = subprocess.run(list(command), stdout=subprocess.PIPE, text=True)
    seconds = (datetime.datetime.now() - start).total_seconds()
    if finished.returncode != 0:
        raise RecordedRunError(f"{shlex.join(command)} failed (exit status {finished.returncode}); nothing recorded")
    return save_run(name, command, last_json_object(finished.stdout), seconds, runs_dir)


def recorded_run(name: str, runs_dir: Optional[Path] = None) -> dict:
    """The recorded run ``name``: ``{"command", "summary", "wall_seconds", "machine", "date"}``."""
    path = _path(name, runs_dir)
    if not path.is_file():
        known = ", ".join(sorted(recorded_runs(runs_dir))) or "none"
        raise RecordedRunError(f"no recorded run named {name!r} (recorded: {known})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RecordedRunError(f"{path.name} is not valid JSON ({error})") from None


def recorded_runs(runs_dir: Optional[Path] = None) -> dict[str, dict]:
    """Every recorded run, by name."""
    folder = runs_dir or RUNS_DIR
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.recorded",
                                     description="Record a full-size run (its command and JSON summary), or show one.")
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="run a command that prints JSON and record it: run NAME -- COMMAND ...")
    run.add_argument("name")
    run.add_argument("command", nargs=argparse.REMAINDER)
    show = sub.add_parser("show", help="print a recorded run (all of them without a name)")
    show.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.verb == "run":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("run NAME -- COMMAND: the command is missing")
            print(f"recorded {record(args.name, command)}")
        else:
            runs = {args.name: recorded_run(args.name)} if args.name else recorded_runs()
            print(json.dumps(runs, indent=2))
    except (RecordedRunError, ValueError) as error:
        print(f"python -m course_utils.recorded: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
