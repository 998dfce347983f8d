"""nbgrader settings of the course: the one place to change how the exercises are graded.

`python -m course_utils.instructor release|grade` copies this file into the course folder
(grading/ by default) before every run, so nbgrader's own commands started inside that folder
(`cd grading && nbgrader formgrader`, `nbgrader generate_feedback ...`) use the same settings.
Edit this file, not the copy.
"""

c = get_config()  # noqa: F821  (nbgrader provides get_config when it reads this file)

c.CourseDirectory.course_id = "rnn-pytorch-course"

# Per-cell time limit while autograding, in seconds; `grade --timeout N` overrides it.
# The trait is nbgrader's own `Execute.timeout`: `ExecutePreprocessor.timeout` is ignored by nbgrader.
c.Execute.timeout = 60
# A cell that runs too long (an infinite loop) is interrupted, gets this error and 0 points,
# and grading goes on with the next cell of the same notebook.
c.Execute.interrupt_on_timeout = True
c.Execute.error_on_timeout = {
    "ename": "CellTimeoutError",
    "evalue": "the cell ran longer than the time limit and was stopped (an infinite loop?)",
    "traceback": ["CellTimeoutError: the cell ran longer than the time limit and was stopped"],
}

# A student who deleted a graded test cell gets it back (hidden tests included): they earn the
# points their code deserves, and cannot skip a test by deleting it.
c.OverwriteCells.add_missing_cells = True

# Keep graded notebooks small when a submission prints a lot.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50

# What replaces the code between ### BEGIN SOLUTION and ### END SOLUTION in the student version.
# The checkers turn this NotImplementedError into "... is not implemented yet".
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Every grading kernel starts with course_utils.grading.kernel.prepare, before the first cell:
# - it caps each cell's printed output: a print in an infinite loop would otherwise flood the
#   grader's memory before the time limit stops it;
# - it notes the clean state of torch and of the course's files, and after every cell writes to
#   stderr (0 points for a test cell) what an answer cell replaced, e.g. torch.allclose.
c.Execute.extra_arguments = [
    "--IPKernelApp.exec_lines="
    "from course_utils.grading.kernel import prepare as _prepare; _prepare(100_000); del _prepare",
]
# If output still arrives late after a cell finished, keep grading the notebook (nbgrader's
# default would fail the whole notebook); errors are still recorded from the kernel's reply.
c.Execute.raise_on_iopub_timeout = False
