"""The report an instructor reads after grading: ``grading/report.html`` and a PNG per notebook.

Made from the gradebook's rows alone (so ``merge`` writes it for the whole class too), with
pandas and matplotlib, as static files that any browser opens without a server:

- one line per notebook (also printed at the end of ``grade``): students, mean score, statuses;
- per notebook, a picture of the score distribution: the totals, and for every exercise (graded
  test cell) the share of students with full, partial and no points;
- the most frequent failure reasons per exercise: the checkers' hints, grouped (numbers such as
  shapes and differences are set aside, so "shape (3, 5)" and "shape (4, 2)" count together);
- the flagged and tampered students with their reasons, and the notebooks that could not be
  graded.

Students' texts (exception messages, file names) are escaped: the report shows them, never runs
them.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from .results import NotebookGrade

REPORT_HTML = "report.html"
STATUSES = ("graded", "flagged", "tampered", "missing", "invalid", "error")
SCORED = ("graded", "flagged")  # statuses whose points count in the distributions
NUMBER = re.compile(r"(?<![A-Za-z_0-9.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
TOP_REASONS = 10


def notebook_summaries(rows: Sequence[NotebookGrade]) -> list[str]:
    """One line per notebook: students, mean score of the graded ones, and the statuses."""
    lines = []
    for notebook in sorted({row.notebook for row in rows}):
        mine = [row for row in rows if row.notebook == notebook]
        scored = [row.score for row in mine if row.status in SCORED]
        statuses = Counter(row.status for row in mine)
        mean = f"mean {sum(scored) / len(scored):.1f}/{mine[0].max_score:g}" if scored else "no score"
        counts = ", ".join(f"{statuses[status]} {status}" for status in STATUSES if statuses[status])
        lines.append(f"{notebook}: {len(mine)} students, {mean} over the {len(scored)} graded ({counts})")
    return lines


def reason_group(reason: str) -> str:
    """``reason`` with its numbers replaced by ``#``, so that hints that differ only in the
    numbers (shapes, differences, line numbers) fall into one group."""
    return NUMBER.sub("#", reason)


def failure_reasons(rows: Sequence[NotebookGrade], notebook: str, top: int = TOP_REASONS):
    """The most frequent reasons for lost points in ``notebook`` (graded and flagged rows), as a
    pandas DataFrame: exercise, reason (the most common wording of its group), students, variants."""
    import pandas as pd

    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in rows:
        if row.notebook == notebook and row.status in SCORED:
            for cell in row.cells:
                if cell.score < cell.max_score:
                    key = (cell.cell, reason_group(cell.reason or "no reason given"))
                    groups.setdefault(key, []).append((row.student, cell.reason or "no reason given"))
    table = [{"exercise": cell, "reason": Counter(text for _, text in found).most_common(1)[0][0],
              "students": len(found), "variants": len({text for _, text in found}),
              "for example": ", ".join(sorted(student for student, _ in found)[:5])}
             for (cell, _), found in groups.items()]
    table.sort(key=lambda r: (-r["students"], r["exercise"], r["reason"]))
    return pd.DataFrame(table[:top], columns=["exercise", "reason", "students", "variants", "for example"])


def exercise_table(rows: Sequence[NotebookGrade], notebook: str):
    """Per exercise of ``notebook``: points, and how many graded students got full, partial, none."""
    import pandas as pd

    cells: dict[str, list] = {}
    for row in rows:
        if row.notebook == notebook and row.status in SCORED:
            for cell in row.cells:
                cells.setdefault(cell.cell, []).append(cell)
    table = []
    for name, graded in cells.items():
        full = sum(c.score >= c.max_score for c in graded)
        none = sum(c.score <= 0 for c in graded)
        table.append({"exercise": name, "points": graded[0].max_score, "full": full,
                      "partial": len(graded) - full - none, "none": none,
                      "mean": round(sum(c.score for c in graded) / len(graded), 2)})
    return pd.DataFrame(table, columns=["exercise", "points", "full", "partial", "none", "mean"])


def plot_notebook(rows: Sequence[NotebookGrade], notebook: str, path: Path) -> Path:
    """Save the score distribution of ``notebook`` as a PNG: totals on the left, and the share of
    students with full, partial and no points per exercise on the right."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    mine = [row for row in rows if row.notebook == notebook and row.status in SCORED]
    exercises = exercise_table(rows, notebook)
    figure = Figure(figsize=(10, max(3.2, 0.5 * len(exercises) + 2.0)), layout="constrained")
    totals, shares = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    maximum = max([row.max_score for row in rows if row.notebook == notebook] + [1.0])
    bins = [i - 0.5 for i in range(int(maximum) + 2)] if maximum <= 40 else 20  # a bar per point
    totals.hist([row.score for row in mine], bins=bins, color="tab:blue", edgecolor="white")
    totals.set(title=f"{notebook}: total points ({len(mine)} graded)", xlabel="points", ylabel="students",
               xlim=(-0.5, maximum + 0.5))
    totals.yaxis.set_major_locator(MaxNLocator(integer=True))
    names = [f"{name} ({points:g} pt)" for name, points in zip(exercises["exercise"], exercises["points"])][::-1]
    left = [0.0] * len(names)  # the first exercise on top
    for column, color, label in (("full", "tab:green", "full points"), ("partial", "tab:orange", "some points"),
                                 ("none", "tab:red", "no points")):
        share = [count / max(1, len(mine)) for count in list(exercises[column])[::-1]]
        shares.barh(names, share, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, share)]
    shares.set(title="per exercise: share of the graded students", xlim=(0, 1))
    shares.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize="small", frameon=False)
    figure.savefig(path, dpi=100)
    return path


def _table(frame) -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="table") if len(frame) else "<p>none</p>"


def write_report(rows: Sequence[NotebookGrade], course_dir: Path) -> Path:
    """Write ``report.html`` and ``report_<notebook>.png`` into ``course_dir``; return the HTML's path."""
    import pandas as pd

    course_dir = Path(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    notebooks = sorted({row.notebook for row in rows})
    students = sorted({row.student for row in rows})
    parts = [f"<h1>Grading report</h1><p>{len(students)} students, {len(notebooks)} exercise notebooks. "
             "Points count for the statuses graded and flagged; see gradebook.csv and "
             "gradebook_details.csv for every row.</p><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in notebook_summaries(rows)]
    parts.append("</ul>")

    marked = pd.DataFrame([{"student": r.student, "notebook": r.notebook, "status": r.status,
                            "score": f"{r.score:g}/{r.max_score:g}", "reason": r.reason}
                           for r in sorted(rows, key=lambda r: (r.status != "tampered", r.student, r.notebook))
                           if r.status in ("tampered", "flagged")],
                          columns=["student", "notebook", "status", "score", "reason"])
    parts.append("<h2>Tampered and flagged students</h2><p>tampered: the submission changed the course's "
                 "files (restored; points withheld). flagged: points as earned, but an answer cell holds "
                 f"code that tampers with grading: have a look.</p>{_table(marked)}")
    failed = pd.DataFrame([{"student": r.student, "notebook": r.notebook, "status": r.status,
                            "reason": r.reason} for r in rows if r.status in ("error", "invalid")],
                          columns=["student", "notebook", "status", "reason"])
    parts.append(f"<h2>Notebooks that could not be graded</h2>{_table(failed)}")

    for notebook in notebooks:
        picture = plot_notebook(rows, notebook, course_dir / f"report_{notebook}.png")
        parts.append(f"<h2>{html.escape(notebook)}</h2>"
                     f'<img src="{html.escape(picture.name)}" alt="score distribution of {html.escape(notebook)}">'
                     f"<h3>Exercises</h3>{_table(exercise_table(rows, notebook))}"
                     f"<h3>Most frequent failure reasons</h3>{_table(failure_reasons(rows, notebook))}")

    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left;vertical-align:top}img{max-width:100%}")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Grading report</title>'
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    path = course_dir / REPORT_HTML
    path.write_text(page, encoding="utf-8")
    return path
