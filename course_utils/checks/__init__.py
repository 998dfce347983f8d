"""Exercise checkers: each one runs the student's function on random inputs, compares it with an
oracle (PyTorch itself wherever possible), prints one line on success and raises
``AssertionError`` with a specific hint on failure. One submodule per lesson.
"""

from ._common import StudentCodeError, call_student  # noqa: F401
