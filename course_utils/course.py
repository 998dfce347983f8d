"""The course's own settings: where it lives on GitHub, and what a notebook runs on.

Every notebook's first cell installs ``course_utils`` on Google Colab from the course's GitHub
repository, and the README's "Open in Colab" badges point at the same repository. That address
is written out in each notebook (the install runs before ``course_utils`` exists on Colab), so it
is kept in one place here and copied everywhere by one command. A fork runs::

    python -m course_utils.course set-repository OWNER/NAME

and every badge and setup cell then points at ``github.com/OWNER/NAME``. A test checks that the
README and every notebook agree with :data:`REPOSITORY`.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
from pathlib import Path
from typing import Sequence

import torch

import course_utils

#: The course's GitHub repository, ``OWNER/NAME``: the one setting a fork changes.
REPOSITORY = "rnn-course/rnn-pytorch-course"

ROOT = Path(__file__).resolve().parent.parent

# The two forms of the address: the Colab badges' links and the setup cells' pip install (inside a
# notebook's JSON its closing quote is escaped as \").
_ADDRESS = re.compile(r"(git\+https://github\.com/|colab\.research\.google\.com/github/)([\w.-]+/[\w-]+)(?=/blob/|\\?\")")


def versions_line(device: torch.device | str | None = None) -> str:
    """One line naming the versions a notebook runs on, e.g.
    ``Python 3.11.7 | PyTorch 2.13.0+cpu | ipywidgets 8.1.5 | course_utils 0.1.0 | device: cpu``.

    When a result differs from the stored one, these versions are the first thing to compare.
    """
    try:
        import ipywidgets

        widgets = ipywidgets.__version__
    except ImportError:  # the lessons run without widgets; only the sliders need them
        widgets = "not installed"
    parts = [
        f"Python {platform.python_version()}",
        f"PyTorch {torch.__version__}",
        f"ipywidgets {widgets}",
        f"course_utils {course_utils.__version__}",
    ]
    if device is not None:
        parts.append(f"device: {device}")
    return " | ".join(parts)


def print_versions(device: torch.device | str | None = None) -> None:
    """Print :func:`versions_line` (the last line of every notebook's setup cell)."""
    print(versions_line(device))


def course_files(root: Path = ROOT) -> list[Path]:
    """The files that name the repository: the README and every notebook."""
    return [root / "README.md", *sorted((root / "notebooks").rglob("*.ipynb"))]


def repositories_named(path: Path) -> set[str]:
    """Every ``OWNER/NAME`` of a GitHub or Colab address in ``path``."""
    return {match.group(2) for match in _ADDRESS.finditer(path.read_text(encoding="utf-8"))}


def set_repository(repository: str, root: Path = ROOT, module: Path = Path(__file__)) -> list[Path]:
    """Point every badge and setup cell at ``github.com/<repository>``, and :data:`REPOSITORY` in
    ``module`` (this file); return the README and notebooks changed.

    Notebooks are edited as JSON text, so their outputs and formatting stay as they are.
    """
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise ValueError(f"expected OWNER/NAME, e.g. rnn-course/rnn-pytorch-course; got {repository!r}")
    changed = []
    for path in course_files(root):
        text = path.read_text(encoding="utf-8")
        new = _ADDRESS.sub(lambda m: m.group(1) + repository, text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    source = module.read_text(encoding="utf-8")
    module.write_text(re.sub(r'^REPOSITORY = ".*"$', f'REPOSITORY = "{repository}"', source, flags=re.MULTILINE),
                      encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.course",
        description="Show the course's repository, or point the README's badges and the notebooks' "
                    "Colab setup cells at another one (for a fork).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="print the repository and the versions in use")
    setter = commands.add_parser("set-repository", help="use github.com/OWNER/NAME everywhere")
    setter.add_argument("repository", metavar="OWNER/NAME")
    args = parser.parse_args(argv)
    if args.command == "show":
        print(f"repository: {REPOSITORY}")
        print(versions_line())
        return 0
    try:
        changed = set_repository(args.repository)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(changed)} files now point at github.com/{args.repository}; "
          f"course_utils/course.py's REPOSITORY too.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
