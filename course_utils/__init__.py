"""course_utils: the small library shared by the notebooks of "Recurrent neural networks in PyTorch".

Every function here was first written out and explained in a lesson; later lessons import it.
The modules follow the course's table of contents:

- ``data``      IMDb download, cache and loading (lesson 3)
- ``text``      tokenizer and vocabulary (lesson 3)
- ``batching``  collate, length bucketing, padded recurrent layers equal to packing (lesson 4)
- ``models``    the configurable sentiment classifier (lesson 5)
- ``training``  seeds, devices, train / evaluate loops, checkpoints (lesson 6)
- ``plots``, ``widgets``  pictures and interactive controls used by the notebooks
- ``checks``    exercise checkers with PyTorch as the oracle
- ``instructor`` hand out and grade the exercises with nbgrader

Nothing is downloaded or computed at import time.
"""

__version__ = "0.1.0"
