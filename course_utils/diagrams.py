"""Diagrams of the networks, drawn with matplotlib, so that every picture in the lessons is made by
the course's own code (no hot-linked images) and renders on GitHub, nbviewer and Colab.
"""

from __future__ import annotations
