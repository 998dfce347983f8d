"""Keep one student's code away from another student's grade, also while they run side by side.

A submission runs as the instructor's user, so it can write wherever the instructor can. The
grader therefore

1. copies what grading reads from the course (``course_utils``, the nbgrader course folder's
   settings, tests and gradebook) **once**, into a :class:`Template` in a temporary folder (in the
   course folder, removed at the end), before the first student runs; each student then gets a
   **private copy** of the template in a sandbox
   of their own (:class:`Sandbox`): a pristine ``course_utils`` first on the kernels'
   ``PYTHONPATH``, a private nbgrader course folder and gradebook, fresh and empty IPython and
   Jupyter settings folders; user site-packages are off (``PYTHONNOUSERSITE``) and kernels write
   no ``.pyc`` files (``PYTHONDONTWRITEBYTECODE``), so nothing one student leaves behind is on
   another one's path;
2. compares the course's files with a snapshot (:class:`GuardedFiles`): the repository's
   ``course_utils/**`` and ``nbgrader_config.py``, the instructor versions of the exercises, the
   course folder's settings, ``source/`` and ``release/`` notebooks, the assignment definitions
   in ``gradebook.db`` and the gradebook files, and the files Python and Jupyter run at start-up
   (``*.pth``, ``sitecustomize.py``, ``usercustomize.py`` in site-packages, IPython start-up
   scripts, Jupyter settings and kernel specs). A file that changed is written back, a file that
   appeared is deleted, and the student is marked ``tampered`` with the file names;
3. kills what a student's code left running (processes that carry the sandbox's marker in their
   environment).

Files that kernels read while students run (the start-up files, the template, each sandbox) are
*live*: besides their bytes, the snapshot notes each file's and folder's inode and change time
(``ctime``, which no process of the user can set back), so that a change that was undone before
the check (write a ``.pth`` file, let another student's kernel start, delete it) still shows (on
Linux and macOS; Windows keeps the creation time there, so only lasting changes show).
How ``concurrency`` uses this to keep the tamper check exact with students side by side is
explained there.

What it cannot stop: code that writes elsewhere the user can write (installed packages' own
files, the home folder outside the places above, the working folder of another student's kernel
while both run), or a process that detaches itself and clears its environment. For submissions
you do not trust, grade in a container (see the README).
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
from typing import Optional

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
    of ``folder`` itself only. ``live``: kernels read these files while students run, so
    :func:`stamps` also notes when the files and the folders changed (see the module docstring).
    """

    folder: Path
    patterns: tuple[str, ...] = ("**",)
    live: bool = False


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


Stamp = Optional[tuple[int, int]]  # (inode, ctime in ns) of a path; None when it does not exist


def _stamp(path: Path) -> Stamp:
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return status.st_ino, status.st_ctime_ns


def stamps(watches: list[Watch]) -> dict[str, Stamp]:
    """``{absolute path: (inode, ctime)}`` of the live watches' folders, sub-folders and files.

    Writing, replacing, renaming, deleting or adding a file changes the ctime of the file or of
    its folder, and no process of the user can set a ctime back: two equal results mean that
    nothing was touched in between, even if the bytes were put back.
    """
    found: dict[str, Stamp] = {}
    for watch in watches:
        if not watch.live:
            continue
        found[str(watch.folder)] = _stamp(watch.folder)
        if any("**" in pattern for pattern in watch.patterns) and watch.folder.is_dir():
            for top, dirs, _names in os.walk(watch.folder, followlinks=False):
                found.update({os.path.join(top, d): _stamp(Path(top) / d) for d in dirs})
        found.update({key: _stamp(path) for key, path in _files(watch).items()})
    return found


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
    """Files Python, IPython and Jupyter run when a kernel or nbgrader starts.

    Those that the grading kernels read are live (site-packages, Jupyter's settings and kernel
    specs outside the user's home); the user's own folders are replaced by the sandbox's
    settings folders and ``PYTHONNOUSERSITE`` while students run, and are watched so that a
    student cannot leave something behind for the instructor's next session.
    """
    watches = [Watch(Path(folder), STARTUP_FILES, live=True) for folder in dict.fromkeys(site.getsitepackages())]
    home = Path.home()
    watches += [Watch(Path(site.getusersitepackages()), STARTUP_FILES),
                Watch(home / ".ipython" / "profile_default", ("*.py", "startup/*")),
                Watch(home / ".jupyter", ("*.py", "*.json"))]
    try:
        from jupyter_core.paths import jupyter_config_dir, jupyter_config_path, jupyter_data_dir, jupyter_path

        own = {jupyter_config_dir(), os.path.join(jupyter_data_dir(), "kernels")}
        watches += [Watch(Path(folder), ("*.py", "*.json"), live=folder not in own)
                    for folder in jupyter_config_path()]
        watches += [Watch(Path(folder), live=folder not in own) for folder in jupyter_path("kernels")]
    except ImportError:  # no Jupyter: nothing of it to guard
        pass
    return watches


def course_watches(repo: Path, course_dir: Path, exercises_dir: Path,
                   gradebook_files: tuple[str, ...] = ()) -> list[Watch]:
    """The course's code and settings, the exercises, the course folder's definitions, and the
    gradebook files this run writes (``gradebook_files``, names in ``course_dir``)."""
    return [
        Watch(repo / "course_utils"),
        Watch(repo, ("*.py", "*.pth", "*/__init__.py")),  # nbgrader_config.py, sitecustomize.py, ...
        Watch(Path(exercises_dir), ("*.ipynb",)),
        Watch(course_dir, ("*.py", "*.pth", "*.json", "*/__init__.py", *gradebook_files)),
        Watch(course_dir / "source"),
        Watch(course_dir / "release"),
    ]


def definitions_digest(database: Path) -> bytes:
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


def restore_definitions(database: Path, backup: Path) -> None:
    """Put the assignment definitions of ``backup`` back into ``database``, keeping the
    submissions graded since (the whole backup when the tables themselves were broken)."""
    try:
        with sqlite3.connect(database) as connection:
            connection.execute("ATTACH DATABASE ? AS backup", (str(backup),))
            for table in DEFINITION_TABLES:
                connection.execute(f"DELETE FROM main.{table}")  # noqa: S608
                connection.execute(f"INSERT INTO main.{table} SELECT * FROM backup.{table}")  # noqa: S608
        connection.close()
    except sqlite3.Error:
        shutil.copyfile(backup, database)


@dataclass
class GuardedFiles:
    """A snapshot of everything a student must not change, checked and restored after each one.

    ``gradebook_files``: the gradebook files (names in ``course_dir``) the grader writes, guarded
    too; ``template``: the grading run's :class:`Template`, if any.
    """

    repo: Path
    course_dir: Path
    exercises_dir: Path
    gradebook_files: tuple[str, ...] = ()
    template: Optional["Template"] = None
    watches: list[Watch] = field(default_factory=list)
    before: dict[str, bytes] = field(default_factory=dict)
    before_stamps: dict[str, Stamp] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watches = (course_watches(self.repo, self.course_dir, self.exercises_dir, self.gradebook_files)
                        + startup_watches())
        if self.template is not None:
            self.watches.append(Watch(self.template.root, live=True))
        self._database = self.course_dir / "gradebook.db"
        self._backup_dir = Path(tempfile.mkdtemp(prefix="course-grading-backup-"))
        self._backup = self._backup_dir / "gradebook.db"

    def before_student(self) -> None:
        """Take the snapshot (bytes, and stamps of the live files) and a copy of ``gradebook.db``.

        Taken right before a student's code runs when students are graded one at a time, and
        once before the first of the students graded side by side (see ``concurrency``). It is
        taken anew each time (the previous one was restored, and what the student left running
        was killed), so that an edit the instructor makes to the course between two students is
        not undone; only changes while students run are.
        """
        self.before = snapshot(self.watches)
        self.before_stamps = stamps(self.watches)
        self._definitions = definitions_digest(self._database)
        shutil.copyfile(self._database, self._backup)

    def touched(self) -> list[str]:
        """Names of the guarded files changed since the snapshot, even for a moment (live files
        whose bytes were put back included); nothing is restored."""
        now, now_stamps = snapshot(self.watches), stamps(self.watches)
        keys = {key for key in self.before.keys() | now.keys() if self.before.get(key) != now.get(key)}
        keys |= {key for key in self.before_stamps.keys() | now_stamps.keys()
                 if self.before_stamps.get(key) != now_stamps.get(key)}
        changed = [self._name(key) for key in sorted(keys)]
        if definitions_digest(self._database) != self._definitions:
            changed.append(f"{self.course_dir.name}/gradebook.db (the assignments' tests)")
        return changed

    def check_and_restore(self) -> list[str]:
        """Undo every change to the guarded files' bytes; return their names (relative where
        possible)."""
        changed = [self._name(key) for key in restore(self.before, self.watches)]
        if definitions_digest(self._database) != self._definitions:
            restore_definitions(self._database, self._backup)
            changed.append(f"{self.course_dir.name}/gradebook.db (the assignments' tests)")
        return changed

    def accept(self, path: Path, content: bytes) -> None:
        """Note that the grader itself wrote ``content`` to the guarded file ``path``."""
        self.before[str(path)] = content

    def close(self) -> None:
        rmtree(self._backup_dir)

    def _name(self, key: str) -> str:
        if self.template is not None and Path(key).is_relative_to(self.template.root):
            return f"(the grader's copy) {Path(key).relative_to(self.template.root).as_posix()}"
        for root in (self.repo, self.course_dir.parent):
            try:
                return Path(key).relative_to(root).as_posix()
            except ValueError:
                continue
        return key


# --------------------------------------------------------------------------------------------
# The template, and one student's sandbox
# --------------------------------------------------------------------------------------------
def _ignore_caches(_folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__" or name.endswith(".pyc")]


@dataclass(frozen=True)
class Template:
    """What every sandbox starts from, copied from the course once, before any student runs.

    ``code/course_utils`` (the repository's, without caches), ``course/`` (the course folder's
    ``nbgrader_config.py`` and ``source/``) and ``gradebook.db`` (the assignments' tests). A
    student's code that changes the course's files while others run can therefore not change
    what the next sandbox is made of without it showing (the template is a live watch).
    """

    root: Path
    course_name: str  # the course folder's name, for messages: "grading"


def make_template(repo: Path, course_dir: Path, root: Path) -> Template:
    """Copy what grading reads from ``repo`` and ``course_dir`` into ``root/template``."""
    template = Template(root / "template", course_dir.name)
    shutil.copytree(repo / "course_utils", template.root / "code" / "course_utils", ignore=_ignore_caches)
    (template.root / "course").mkdir()
    shutil.copyfile(course_dir / CONFIG_NAME, template.root / "course" / CONFIG_NAME)
    shutil.copytree(course_dir / "source", template.root / "course" / "source")
    shutil.copyfile(course_dir / "gradebook.db", template.root / "gradebook.db")
    return template


@dataclass
class Sandbox:
    """A temporary folder for one student, copied from the :class:`Template`: a pristine
    ``course_utils`` (``code/``), a private nbgrader course folder (``course/``, with the
    submissions) and gradebook (``db/``), an empty working folder for nbgrader (``run/``), empty
    settings folders, and a marker for the processes started from it."""

    root: Path
    token: str
    course_name: str = "grading"
    guard_kernels: bool = True
    copy: dict[str, bytes] = field(default_factory=dict)
    copy_stamps: dict[str, Stamp] = field(default_factory=dict)
    definitions: bytes = b""

    @property
    def python_path(self) -> Path:
        return self.root / "code"

    @property
    def workdir(self) -> Path:
        return self.root / "run"

    @property
    def course(self) -> Path:
        return self.root / "course"

    @property
    def database(self) -> Path:
        return self.root / "db" / "gradebook.db"

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

    def watches(self) -> list[Watch]:
        """What only the grader writes in the sandbox, all live (nbgrader's results, in
        ``course/autograded/``, ``course/logs/`` and ``db/``, are not among them)."""
        return [Watch(self.python_path, live=True),
                Watch(self.course, ("*.py", "*.pth", "*.json", "*/__init__.py"), live=True),
                Watch(self.course / "source", live=True),
                Watch(self.course / "submitted", live=True),
                Watch(self.workdir, ("*", "*/__init__.py"), live=True)]

    def seal(self) -> None:
        """Note the sandbox as it is, once the submissions are in it and before they run."""
        self.copy, self.copy_stamps = snapshot(self.watches()), stamps(self.watches())
        self.definitions = definitions_digest(self.database)

    def changed_files(self) -> list[str]:
        """Files of the private copies whose bytes differ from what the grader put there."""
        now = snapshot(self.watches())
        changed = [self._name(key) for key in sorted(self.copy.keys() | now.keys())
                   if self.copy.get(key) != now.get(key)]
        if definitions_digest(self.database) != self.definitions:
            changed.append(f"{self.course_name}/gradebook.db (the assignments' tests)")
        return changed

    def _name(self, key: str) -> str:
        relative = Path(key).relative_to(self.root)
        if relative.parts[0] == "code":
            return Path(*relative.parts[1:]).as_posix()
        if relative.parts[0] == "course":
            return Path(self.course_name, *relative.parts[1:]).as_posix()
        return f"nbgrader's working folder/{Path(*relative.parts[1:]).as_posix()}"


def open_sandbox(template: Template, guard_kernels: bool = True) -> Sandbox:
    """A fresh sandbox for one student, copied from ``template``, in a folder of its own next to
    the template.

    ``guard_kernels``: whether the kernels report tampering with torch after every cell (see
    ``kernel.prepare``; worth its seconds only for notebooks that use ``course_utils``). Write the
    submissions into ``sandbox.course / "submitted"``, then call ``seal()``.
    """
    root = Path(tempfile.mkdtemp(prefix="student-", dir=template.root.parent))
    sandbox = Sandbox(root, secrets.token_hex(16), template.course_name, guard_kernels)
    shutil.copytree(template.root / "code", sandbox.python_path)
    shutil.copytree(template.root / "course", sandbox.course)
    sandbox.database.parent.mkdir()
    shutil.copyfile(template.root / "gradebook.db", sandbox.database)
    for folder in ("run", "ipython", "jupyter-config", "jupyter-data", "jupyter-runtime",
                   "course/submitted", "course/autograded", "course/logs"):
        (root / folder).mkdir(exist_ok=True)
    shutil.copyfile(template.root / "course" / CONFIG_NAME, sandbox.workdir / CONFIG_NAME)
    return sandbox


@dataclass
class SandboxCheck:
    """What :func:`stop_sandbox` found: the changed files (their bytes) and whether anything
    the grader put in the sandbox was touched at all."""

    changed: list[str]
    touched: bool


def stop_sandbox(sandbox: Sandbox) -> SandboxCheck:
    """Kill what the student left running, then check the sandbox's private copies."""
    kill_leftovers(sandbox.token)
    changed = [f"(pristine copy) {name}" for name in sandbox.changed_files()]
    return SandboxCheck(changed, bool(changed) or stamps(sandbox.watches()) != sandbox.copy_stamps)


def remove_sandbox(sandbox: Sandbox) -> None:
    rmtree(sandbox.root)


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

