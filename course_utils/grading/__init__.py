"""Hand out and grade the exercise notebooks: a small package over nbgrader, one module per job.

``python -m course_utils.instructor release|grade|merge`` (see ``cli``) runs it. The modules, in
the order a grading run uses them:

- ``layout``: where things are (the repository, the course folder ``grading/``, the settings);
- ``submissions``: find each student's notebooks in a folder of submissions, and repair them;
- ``flags``: read each answer cell (without running it) for code that tampers with the grader;
- ``resume``: the content hashes that let a second run skip the students already graded;
- ``shards``: one slice of the class per machine (``--shard K/N``), and ``merge``;
- ``isolation``: a private sandbox per student, copied from a template of the course's files,
  and the snapshots that show whether a student changed the course's files (restored, and the
  student marked ``tampered``);
- ``concurrency``: several students at a time (``--jobs N``), with the tamper check kept exact;
- ``nbgrader_run``: run ``nbgrader`` in a process of its own, with the kernels' environment;
- ``kernel``: what runs inside each grading kernel before the first cell;
- ``results``: read nbgrader's scores, and a readable reason for every lost point;
- ``gradebook``: write (after every student) and read ``gradebook.csv`` and its details;
- ``report``: ``report.html`` and a PNG per notebook, for the instructor;
- ``workflow``: ``release`` and ``grade``, the steps above put together;
- ``bench``: the benchmark ``python -m course_utils.bench grading``.

This file imports nothing, so that a grading kernel can import ``course_utils.grading.kernel``
without loading nbgrader.
"""
