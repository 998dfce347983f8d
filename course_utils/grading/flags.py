"""Read a submission's answer cells, without running them, for code that tampers with grading.

An answer cell runs in the same Python process as the test cells that grade it, so it *can*
patch ``torch.allclose``, replace a checker in ``sys.modules`` or rewrite the course's files.
The grader defends against what it can (``checks._guard``, ``isolation``); this scan makes the
rest visible: every answer cell (and every cell a student added) is parsed with :mod:`ast` and
these are listed for a human look, with the cell and line:

- assigning to, deleting or ``setattr``/``delattr`` on an attribute or item of ``torch``,
  ``course_utils``, ``sys``, ``builtins``, ``math``, ``IPython`` or anything imported from them
  (``torch.allclose = ...``, ``nn.RNN.forward = ...``, ``sys.modules[...] = ...``);
- changing ``sys.path``/``sys.modules``/``sys.meta_path`` through their methods;
- the IPython shell (``get_ipython()``: input transformers, hooks, magics and ``!`` commands);
- writing, moving or deleting files other than a plain relative name in the student's own folder
  (``open('/abs/path', 'w')``, ``open('../x', 'w')``, ``shutil``, ``os.remove``, ``os.chdir``,
  ``Path.write_text``, ...), and starting processes (``subprocess``, ``os.system``);
- code built at run time (``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``,
  ``globals()``), which a scan cannot read.

A flag does not change the points: the exercise notebooks need none of these, so a flagged cell
deserves a look, and a clever student can hide code from any scan (that is why the other layers
exist). Cells that are not valid Python are left to the grader (they fail their tests).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterable

# Modules whose attributes an answer has no reason to change.
PROTECTED_MODULES = {"torch", "course_utils", "sys", "builtins", "math", "IPython", "ipykernel",
                     "numpy", "nbformat", "nbgrader", "importlib", "unittest"}
DYNAMIC_CODE = {"exec", "eval", "compile", "__import__", "globals", "vars", "breakpoint"}
FILE_CALLS = {"shutil", "subprocess", "ctypes", "pty", "signal", "atexit", "multiprocessing"}
OS_WRITES = {"remove", "unlink", "rename", "renames", "replace", "rmdir", "removedirs", "mkdir",
             "makedirs", "symlink", "link", "chmod", "chown", "chdir", "fchdir", "chroot", "write",
             "open", "system", "popen", "fork", "forkpty", "kill", "killpg", "setsid", "truncate",
             "putenv", "unsetenv", "execv", "execve", "execl", "execvp", "spawnv", "spawnl",
             "posix_spawn", "utime", "mkfifo"}
PATH_WRITES = {"write_text", "write_bytes", "unlink", "rename", "replace", "rmdir", "mkdir",
               "symlink_to", "hardlink_to", "chmod", "touch", "link_to"}
SYS_CHANGES = {"path", "modules", "meta_path", "path_hooks", "path_importer_cache", "settrace",
               "setprofile", "excepthook", "displayhook", "addaudithook", "stdout", "stderr",
               "setrecursionlimit", "__stdout__", "__stderr__", "exit"}
# Names the notebooks bind to protected modules in cells the student cannot change (setup cells).
COMMON_ALIASES = {"nn", "F", "np", "functional"}
MUTATING_METHODS = {"append", "insert", "extend", "remove", "pop", "clear", "update", "setdefault",
                    "popitem", "__setitem__", "__delitem__", "__setattr__", "__delattr__"}


@dataclass
class Flag:
    """One suspicious line of one cell of a student's notebook."""

    cell: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.cell} line {self.line}: {self.reason}"


def _root_name(node: ast.AST) -> str | None:
    """``torch`` for ``torch.nn.RNN.forward`` or ``torch.x[0].y``; None for ``f().x``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    """Source text of an attribute chain, e.g. ``torch.nn.RNN.forward``."""
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001
        return "?"


class _Scanner(ast.NodeVisitor):
    """Collects the flags of one cell's syntax tree."""

    def __init__(self, cell: str, protected: Iterable[str] = ()):
        self.cell = cell
        self.flags: list[Flag] = []
        # names bound to protected modules or things imported from them: {"torch", "nn", "F", ...}
        self.protected: set[str] = {"__builtins__", *PROTECTED_MODULES, *COMMON_ALIASES, *protected}
        self.file_modules: set[str] = set(FILE_CALLS)  # and their aliases: `import signal as s`

    def flag(self, node: ast.AST, reason: str) -> None:
        self.flags.append(Flag(self.cell, getattr(node, "lineno", 0), reason))

    # imports bind names to protected modules
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            if root in PROTECTED_MODULES:
                self.protected.add((alias.asname or alias.name).split(".")[0])
            if root in FILE_CALLS:
                self.file_modules.add((alias.asname or alias.name).split(".")[0])
            if root in {"importlib", "ctypes", "subprocess", "shutil"}:
                self.flag(node, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        root = (node.module or "").split(".")[0]
        if root in PROTECTED_MODULES:
            self.protected.update(alias.asname or alias.name for alias in node.names)
        if root in {"importlib", "ctypes", "subprocess", "shutil"}:
            self.flag(node, f"imports from {node.module}")
        self.generic_visit(node)

    # assignments to attributes or items of protected things
    def _check_target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element, verb)
        elif isinstance(target, ast.Starred):
            self._check_target(target.value, verb)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            root = _root_name(target)
            if root in self.protected:
                self.flag(target, f"{verb} {_dotted(target)}")
            elif isinstance(target.value, ast.Call) and _call_name(target.value) in DYNAMIC_CODE:
                self.flag(target, f"{verb} {_dotted(target)}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, "assigns to")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, "assigns to")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._check_target(node.target, "assigns to")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target, "deletes")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        function = node.func
        root = _root_name(function) if isinstance(function, ast.Attribute) else None
        if name in {"setattr", "delattr"} and node.args:
            target_root = _root_name(node.args[0])
            if target_root in self.protected or not isinstance(node.args[0], ast.Name):
                self.flag(node, f"{name}({_dotted(node.args[0])}, ...)")
        elif name in DYNAMIC_CODE and isinstance(function, ast.Name):
            self.flag(node, f"runs code built at run time ({name}): read it by hand")
        elif name == "get_ipython":
            self.flag(node, "uses the IPython shell (get_ipython): hooks, transformers or magics")
        elif name == "open" and isinstance(function, ast.Name):
            self._check_open(node)
        elif isinstance(function, ast.Attribute):
            self._check_method(node, function, root)
        self.generic_visit(node)

    def _check_open(self, node: ast.Call) -> None:
        mode = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "mode"), None)
        writing = mode is not None and not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)
                                            and not set(mode.value) & set("wax+"))
        if writing and not _own_folder_path(node.args[0] if node.args else None):
            self.flag(node, f"writes a file outside its own folder: open({_dotted(node.args[0])}, ...)"
                      if node.args else "writes a file with open(...)")

    def _check_method(self, node: ast.Call, function: ast.Attribute, root: str | None) -> None:
        owner, method = function.value, function.attr
        owner_text = _dotted(owner)
        if root == "os" or owner_text in {"os", "os.path"}:
            if method in OS_WRITES:
                self.flag(node, f"changes files or processes: {owner_text}.{method}(...)")
        elif root in self.file_modules or owner_text in FILE_CALLS:
            self.flag(node, f"changes files or processes: {owner_text}.{method}(...)")
        elif owner_text.startswith("sys.") and owner_text.split(".")[1] in SYS_CHANGES \
                and method in MUTATING_METHODS:
            self.flag(node, f"changes {owner_text}: {owner_text}.{method}(...)")
        elif root in self.protected and method in MUTATING_METHODS | {"__setattr__"}:
            self.flag(node, f"changes {owner_text}: {owner_text}.{method}(...)")
        elif method in PATH_WRITES:
            self.flag(node, f"changes files: {owner_text}.{method}(...)")
        elif method == "open" and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                      and set(a.value) & set("wax+") for a in node.args):
            self.flag(node, f"writes a file: {owner_text}.open(...)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in {"__globals__", "__builtins__", "__code__", "__closure__", "__subclasses__",
                         "f_globals", "f_locals", "f_back", "gi_frame", "tb_frame"}:
            self.flag(node, f"reaches into the interpreter: {_dotted(node)}")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self.flag(node, "uses __builtins__")
        self.generic_visit(node)


def _call_name(node: ast.Call) -> str:
    function = node.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return ""


def _own_folder_path(node: ast.AST | None) -> bool:
    """Whether ``node`` is a literal relative path without ``..`` (inside the student's folder)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    path = node.value.replace("\\", "/")
    return bool(path) and not path.startswith(("/", "~")) and ":" not in path \
        and ".." not in path.split("/")


def _python_source(source: str) -> str:
    """The cell as plain Python: IPython's magics and ``!`` commands become ``get_ipython()`` calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001  (IPython missing or a cell it cannot read: scan as it is)
        return source


def _parse(source: str) -> ast.AST | None:
    try:
        return ast.parse(_python_source(source))
    except (SyntaxError, ValueError):
        return None


def scan_source(source: str, cell: str = "cell", protected: Iterable[str] = ()) -> list[Flag]:
    """The flags of one cell's code (empty when it is harmless or not valid Python).

    ``protected``: names other cells bound to protected modules (``import torch as t``).
    """
    tree = _parse(source)
    if tree is None:
        return []
    scanner = _Scanner(cell, protected)
    scanner.visit(tree)
    return scanner.flags


def imported_names(sources: Iterable[str]) -> set[str]:
    """Names that these cells bind to protected modules or to things imported from them."""
    scanner = _Scanner("imports")
    for source in sources:
        tree = _parse(source)
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    scanner.visit_Import(node)
                elif isinstance(node, ast.ImportFrom):
                    scanner.visit_ImportFrom(node)
    return scanner.protected


def student_cells(submission, released) -> Iterable[tuple[str, str]]:
    """``(name, source)`` of every code cell the student wrote: answer cells and added cells.

    Locked cells are left out: nbgrader replaces them with the instructor's version.
    """
    locked = {cell.metadata["nbgrader"]["grade_id"] for cell in released.cells
              if cell.metadata.get("nbgrader", {}).get("locked")}
    for index, cell in enumerate(submission.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in locked:
            continue
        yield grade_id or f"added cell {index + 1}", cell.source


def scan_notebook(submission, released) -> list[Flag]:
    """The flags of every cell the student wrote in ``submission`` (see the module docstring)."""
    protected = imported_names(cell.source for cell in submission.cells if cell.cell_type == "code")
    return [flag for name, source in student_cells(submission, released)
            for flag in scan_source(source, name, protected)]
