"""Hand out and grade the exercise notebooks: a small package over nbgrader, one module per job.

``python -m course_utils.instructor release|grade`` (see ``cli``) runs it. The modules, in the
order a grading run uses them:

- ``layout``: where things are (the repository, the course folder ``grading/``, the settings);
- ``submissions``: find each student's notebooks in a folder of submissions, and repair them;
- ``flags``: read each answer cell (without running it) for code that tampers with the grader;
- ``isolation``: a pristine copy of ``course_utils`` per student, and the hashes that show whether
  a student changed the course's files (restored, and the student marked ``tampered``);
- ``nbgrader_run``: run ``nbgrader`` in a process of its own, with the kernels' environment;
- ``kernel``: what runs inside each grading kernel before the first cell;
- ``results``: read nbgrader's scores, and a readable reason for every lost point;
- ``gradebook``: write ``gradebook.csv`` and ``gradebook_details.csv``;
- ``workflow``: ``release`` and ``grade``, the steps above put together.

This file imports nothing, so that a grading kernel can import ``course_utils.grading.kernel``
without loading nbgrader.
"""
