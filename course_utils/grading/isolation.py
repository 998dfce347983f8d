"""Keep one student's code away from the next student's grade.

A submission runs as the instructor's user, so it can write wherever the instructor can. The
grader therefore

1. runs each student's notebooks against a **pristine copy** of ``course_utils``, made afresh for
   that student in a temporary folder outside the course folder and outside every student's
   folder, first on the kernels' ``PYTHONPATH`` (:class:`Sandbox`); the kernels' IPython and
   Jupyter settings folders are fresh and empty, user site-packages are off
   (``PYTHONNOUSERSITE``), and kernels write no ``.pyc`` files (``PYTHONDONTWRITEBYTECODE``),
   so nothing one student leaves behind is on the next one's path;
2. after each student, compares the course's files with a snapshot taken right before that
   student's code ran (:class:`GuardedFiles`): the repository's ``course_utils/**`` and
   ``nbgrader_config.py``, the instructor versions of the exercises, the course folder's settings, ``source/`` and
   ``release/`` notebooks and the assignment definitions in ``gradebook.db``, and the files
   Python and Jupyter run at start-up (``*.pth``, ``sitecustomize.py``, ``usercustomize.py`` in
   site-packages, IPython start-up scripts, Jupyter settings and kernel specs). A file that
   changed is written back, a file that appeared is deleted, and the student is marked
   ``tampered`` with the file names;
3. kills what a student's code left running (processes that carry the sandbox's marker in their
   environment).

What it cannot stop: code that writes elsewhere the user can write (installed packages' own
files, the home folder outside the places above), or a process that detaches itself and clears
its environment. For submissions you do not trust, grade in a container (see the README).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import secrets
import shutil
import signal
import site
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .layout import CONFIG_NAME, rmtree

# What a snapshot holds: a file's bytes, or this prefix and a symbolic link's target.
_LINK = b"\0symlink\0"
# Tables of nbgrader's gradebook that define the assignments (its tests included).
DEFINITION_TABLES = ("course", "assignment", "notebook", "base_cell", "source_cell", "grade_cells",
                     "solution_cells", "task_cells")
STARTUP_FILES = ("*.pth", "sitecustomize.py", "usercustomize.py")


@dataclass(frozen=True)
class Watch:
    """Files under ``folder`` whose path relative to it matches one of ``patterns``.

    ``**`` in a pattern means any depth (``**`` alone: every file); other patterns match files
    of ``folder`` itself only.
    """

    folder: Path
    patterns: tuple[str, ...] = ("**",)


def _files(watch: Watch) -> dict[str, Path]:
    """``{absolute path: path}`` of the files (and links) ``watch`` covers right now."""
    found: dict[str, Path] = {}
    folder = watch.folder
    if not folder.is_dir():
        return found
    deep = [p for p in watch.patterns if "**" in p]
    shallow = [p for p in watch.patterns if "**" not in p]
    if deep:
        for top, dirs, names in os.walk(folder, followlinks=False):
            for name in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                path = Path(top) / name
                relative = path.relative_to(folder).as_posix()
                if any(p == "**" or fnmatch.fnmatch(relative, p) for p in deep):
                    found[str(path)] = path
    if shallow:
        with os.scandir(folder) as entries:
            for entry in entries:
                if any(fnmatch.fnmatch(entry.name, p) for p in shallow) and (
                        entry.is_symlink() or entry.is_file()):
                    found[entry.path] = Path(entry.path)
        for pattern in shallow:  # patterns one folder down, e.g. "*/__init__.py"
            if "/" in pattern:
                found.update({str(p): p for p in folder.glob(pattern) if p.is_file() or p.is_symlink()})
    return found


def _content(path: Path) -> bytes:
    if path.is_symlink():
        return _LINK + os.readlink(path).encode()
    try:
        return path.read_bytes()
    except OSError as exc:  # unreadable (chmod 000, a folder where a file was): a change
        return b"\0unreadable\0" + str(exc).encode()


def snapshot(watches: list[Watch]) -> dict[str, bytes]:
    """``{absolute path: content}`` of every file the watches cover."""
    return {key: _content(path) for watch in watches for key, path in _files(watch).items()}


def _write_back(path: Path, content: bytes) -> None:
    """Put ``content`` at ``path``, whatever is there now (a link, a read-only file, a folder)."""
    for parent in reversed(path.parents):
        if parent.is_symlink() or parent.exists() and not parent.is_dir():
            parent.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, os.stat(path.parent).st_mode | 0o700)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        rmtree(path)
    if content.startswith(_LINK):
        os.symlink(content[len(_LINK):].decode(), path)
    else:
        path.write_bytes(content)


def _remove(path: Path) -> None:
    os.chmod(path.parent, os.stat(path.parent).st_mode | 0o700)
    if path.is_dir() and not path.is_symlink():
        rmtree(path)
    else:
        path.unlink(missing_ok=True)


def restore(before: dict[str, bytes], watches: list[Watch]) -> list[str]:
    """Make the watched files equal to ``before`` again; return the paths that differed.

    Changed and deleted files are written back; files that appeared are deleted.
    """
    now = snapshot(watches)
    changed = sorted(key for key in before.keys() | now.keys() if before.get(key) != now.get(key))
    for key in changed:
        if key in before:
            _write_back(Path(key), before[key])
        else:
            _remove(Path(key))
    return changed


# --------------------------------------------------------------------------------------------
# What is guarded
# --------------------------------------------------------------------------------------------
def startup_watches() -> list[Watch]:
    """Files Python, IPython and Jupyter run when a kernel or nbgrader starts."""
    watches = []
    site_dirs = list(site.getsitepackages()) + [site.getusersitepackages()]
    watches += [Watch(Path(folder), STARTUP_FILES) for folder in dict.fromkeys(site_dirs)]
    home = Path.home()
    watches += [Watch(home / ".ipython" / "profile_default", ("*.py", "startup/*")),
                Watch(home / ".jupyter", ("*.py", "*.json"))]
    try:
        from jupyter_core.paths import jupyter_config_path, jupyter_path

        watches += [Watch(Path(folder), ("*.py", "*.json")) for folder in jupyter_config_path()]
        watches += [Watch(Path(folder)) for folder in jupyter_path("kernels")]
    except ImportError:  # no Jupyter: nothing of it to guard
        pass
    return watches


def course_watches(repo: Path, course_dir: Path, exercises_dir: Path) -> list[Watch]:
    """The course's code and settings, the exercises, and the course folder's definitions."""
    return [
        Watch(repo / "course_utils"),
        Watch(repo, ("*.py", "*.pth", "*/__init__.py")),  # nbgrader_config.py, sitecustomize.py, ...
        Watch(Path(exercises_dir), ("*.ipynb",)),
        Watch(course_dir, ("*.py", "*.pth", "*.json", "*/__init__.py")),
        Watch(course_dir / "source"),
        Watch(course_dir / "release"),
    ]


def _definitions(database: Path) -> bytes:
    """A digest of the assignment definitions (cells, sources, points) in nbgrader's gradebook."""
    digest = hashlib.sha256()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            for table in DEFINITION_TABLES:
                for row in connection.execute(f"SELECT * FROM {table} ORDER BY 1"):  # noqa: S608
                    digest.update(repr(row).encode())
        connection.close()
    except sqlite3.Error as exc:
        digest.update(f"unreadable: {exc}".encode())
    return digest.digest()


@dataclass
class GuardedFiles:
    """A snapshot of everything a student must not change, checked and restored after each one."""

    repo: Path
    course_dir: Path
    exercises_dir: Path
    watches: list[Watch] = field(default_factory=list)
    before: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watches = course_watches(self.repo, self.course_dir, self.exercises_dir) + startup_watches()
        self._database = self.course_dir / "gradebook.db"
        self._backup_dir = Path(tempfile.mkdtemp(prefix="course-grading-backup-"))
        self._backup = self._backup_dir / "gradebook.db"

    def before_student(self) -> None:
        """Take the snapshot, right before a student's code runs, and a copy of ``gradebook.db``.

        The snapshot is taken anew for each student (the previous one was restored, and what
        the student left running was killed), so that an edit the instructor makes to the
        course between two students is not undone; only changes during a student's run are.
        """
        self.before = snapshot(self.watches)
        self._definitions = _definitions(self._database)
        shutil.copyfile(self._database, self._backup)

    def check_and_restore(self) -> list[str]:
        """Undo every change to the guarded files; return their names (relative where possible)."""
        changed = [self._name(key) for key in restore(self.before, self.watches)]
        if _definitions(self._database) != self._definitions:
            shutil.copyfile(self._backup, self._database)
            changed.append(f"{self.course_dir.name}/gradebook.db (the assignments' tests)")
        return changed

    def close(self) -> None:
        rmtree(self._backup_dir)

    def _name(self, key: str) -> str:
        for root in (self.repo, self.course_dir.parent):
            try:
                return Path(key).relative_to(root).as_posix()
            except ValueError:
                continue
        return key


# --------------------------------------------------------------------------------------------
# One student's sandbox
# --------------------------------------------------------------------------------------------
@dataclass
class Sandbox:
    """A temporary folder for one student: a pristine ``course_utils``, empty settings folders,
    an empty working folder for nbgrader, and a marker for the processes started from it."""

    root: Path
    token: str
    guard_kernels: bool = True
    copy: dict[str, bytes] = field(default_factory=dict)

    @property
    def python_path(self) -> Path:
        return self.root / "code"

    @property
    def workdir(self) -> Path:
        return self.root / "run"

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` (the grader's environment) with the sandbox's paths and settings."""
        env = dict(base)
        inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(self.python_path)] + inherited)
        env["PYTHONNOUSERSITE"] = "1"
        # no .pyc written by a kernel (a forged one next to the course's code would be loaded by
        # the next kernel); PYTHONPYCACHEPREFIX would also ignore the installed packages' .pyc
        # files and compile torch anew for every student (a minute)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["IPYTHONDIR"] = str(self.root / "ipython")
        env["JUPYTER_CONFIG_DIR"] = str(self.root / "jupyter-config")
        env["JUPYTER_DATA_DIR"] = str(self.root / "jupyter-data")
        env["JUPYTER_RUNTIME_DIR"] = str(self.root / "jupyter-runtime")
        env["COURSE_UTILS_GRADING"] = "1"
        env["COURSE_UTILS_GRADING_RUN"] = self.token
        env["COURSE_UTILS_GUARD"] = "1" if self.guard_kernels else "0"
        return env

    def changed_files(self) -> list[str]:
        """Files of the pristine copy that differ from what was copied (paths relative to it)."""
        watches = [Watch(self.python_path)]
        return [Path(key).relative_to(self.python_path).as_posix()
                for key in restore(self.copy, watches)]


def _ignore_caches(_folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__" or name.endswith(".pyc")]


def open_sandbox(repo: Path, course_dir: Path, guard_kernels: bool = True) -> Sandbox:
    """A fresh sandbox for one student, with a pristine copy of ``repo/course_utils``.

    ``guard_kernels``: whether the kernels report tampering with torch after every cell (see
    ``kernel.prepare``; worth its seconds only for notebooks that use ``course_utils``).
    """
    root = Path(tempfile.mkdtemp(prefix="course-grading-"))
    sandbox = Sandbox(root, secrets.token_hex(16), guard_kernels)
    shutil.copytree(repo / "course_utils", sandbox.python_path / "course_utils", ignore=_ignore_caches)
    for folder in ("run", "ipython", "jupyter-config", "jupyter-data", "jupyter-runtime"):
        (root / folder).mkdir(exist_ok=True)
    shutil.copyfile(course_dir / CONFIG_NAME, sandbox.workdir / CONFIG_NAME)
    sandbox.copy = snapshot([Watch(sandbox.python_path)])
    return sandbox


def close_sandbox(sandbox: Sandbox) -> list[str]:
    """Kill what the student left running, check the pristine copy, delete the sandbox.

    Returns the files of the pristine copy that the student's code changed.
    """
    kill_leftovers(sandbox.token)
    changed = sandbox.changed_files()
    rmtree(sandbox.root)
    return [f"(pristine copy) {name}" for name in changed]


def kill_leftovers(token: str) -> int:
    """Kill every process whose environment carries ``token`` (Linux; elsewhere nothing).

    nbgrader's own process group is killed when it hangs; this also finds what a student started
    in a new session (a daemon). Returns how many processes were killed.
    """
    marker = f"COURSE_UTILS_GRADING_RUN={token}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    killed = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environment.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed

