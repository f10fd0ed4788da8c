"""How an exercise is written in a source notebook, and how to find the exercises again.

An exercise is two code cells, marked the way nbgrader marks them so a course can also use
nbgrader itself:

- the **answer cell** holds the solution between `### BEGIN SOLUTION` and `### END SOLUTION`
  (nbgrader metadata `solution: true`, `grade_id: "q1"`);
- the **check cell** right after it calls `coursekit.exercises.check("02.q1", ...)` and may hold
  instructor-only asserts between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`
  (nbgrader metadata `grade: true`, `locked: true`, `points`, `grade_id: "q1-check"`).

`tag_exercises` writes that metadata from the markers, so authors only type the markers.

Learners who open the source notebooks (locally or on Colab) should attempt an exercise before
they see its solution, so tagging also **hides each answer cell's code** until asked for: the
`jupyter.source_hidden` metadata collapses the input in JupyterLab (click the bar to expand),
and a first line `#@title ...` with `cellView: "form"` shows only the title on Colab ("Show
code" reveals it). The exercise's text gets one line saying so (`HINT`). The student and
solution builds undo all three with `show_solutions`: their answer cells are meant to be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HIDDEN_BEGIN",
    "HIDDEN_END",
    "HINT",
    "HIDE_TITLE",
    "SOLUTION_BEGIN",
    "SOLUTION_END",
    "NotebookFormatError",
    "Question",
    "find_questions",
    "lesson_of",
    "read_notebook",
    "regions",
    "show_solutions",
    "tag_exercises",
]

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDE_TITLE = "#@title Solution, hidden: try the exercise first, then double-click to reveal"
HINT = (
    "*Try it first, in a new cell below the solution cell; the solution is hidden: click to reveal "
    "(JupyterLab: the collapsed bar; Colab: Show code).*"
)


class NotebookFormatError(ValueError):
    """A notebook that cannot be read, or whose exercise markers do not pair up."""


@dataclass(frozen=True)
class Question:
    """One exercise: its id ("02.q1"), answer cell, check cell and points."""

    qid: str
    grade_id: str
    answer_cell: int
    check_cell: int
    points: float = 1.0


def lesson_of(path: str | Path) -> str:
    """The lesson number of a notebook file, "02" for "02_transfer_learning.ipynb"."""
    match = re.match(r"(\d\d)_", Path(path).name)
    if not match:
        raise NotebookFormatError(
            f"{Path(path).name}: lesson notebooks are named NN_title.ipynb (e.g. 02_transfer.ipynb)"
        )
    return match.group(1)


def read_notebook(path: str | Path) -> Any:
    """Read and validate a notebook; raise `NotebookFormatError` saying what is wrong."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NotebookFormatError(
            f"{path} is not a valid Jupyter notebook ({type(err).__name__}: {reason[:200]}). "
            "Re-download it from Jupyter (File > Download) instead of renaming or editing the JSON."
        ) from None
    return nb


def regions(source: str, begin: str, end: str, where: str = "") -> list[tuple[int, int]]:
    """(begin, end) line indices of each marked region in `source`; checks that they pair up."""
    found, start = [], None
    for i, line in enumerate(source.splitlines()):
        if line.strip() == begin:
            if start is not None:
                raise NotebookFormatError(f"{where}: {begin!r} twice without {end!r} in between")
            start = i
        elif line.strip() == end:
            if start is None:
                raise NotebookFormatError(f"{where}: {end!r} without a {begin!r} before it")
            found.append((start, i))
            start = None
    if start is not None:
        raise NotebookFormatError(f"{where}: {begin!r} is never closed by {end!r}")
    return found


def _nbgrader(grade_id: str, *, solution: bool, points: float | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "grade": points is not None,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def _hide(nb: Any, i: int) -> None:
    """Collapse answer cell `i` (JupyterLab and Colab) and say so in the exercise's text."""
    cell = nb.cells[i]
    cell.metadata["jupyter"] = {**cell.metadata.get("jupyter", {}), "source_hidden": True}
    cell.metadata["cellView"] = "form"
    if not cell.source.startswith(HIDE_TITLE):
        cell.source = f"{HIDE_TITLE}\n{cell.source}"
    text = nb.cells[i - 1] if i > 0 and nb.cells[i - 1].cell_type == "markdown" else None
    if text is not None and HINT not in text.source:  # else the title alone says it
        text.source = f"{text.source.rstrip()}\n\n{HINT}"


def show_solutions(nb: Any) -> Any:
    """Undo the hiding `tag_exercises` adds (metadata, the `#@title` line, the hint), in place."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace(f"\n\n{HINT}", "").replace(HINT, "")
            continue
        cell.metadata.pop("cellView", None)
        jupyter = cell.metadata.get("jupyter", {})
        jupyter.pop("source_hidden", None)
        if "jupyter" in cell.metadata and not jupyter:
            del cell.metadata["jupyter"]
        if cell.source.startswith(HIDE_TITLE):
            cell.source = cell.source[len(HIDE_TITLE) :].lstrip("\n")
    return nb


def tag_exercises(nb: Any, points: float = 1.0, hide: bool = True) -> Any:
    """Write nbgrader metadata on every answer cell and the check cell that follows it; with
    `hide`, also collapse each answer cell until the learner asks for it (see the module text)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    number = 0
    for pos, i in enumerate(code):
        cell = nb.cells[i]
        if not regions(cell.source, SOLUTION_BEGIN, SOLUTION_END, f"cell {i}"):
            continue
        number += 1
        if pos + 1 >= len(code):
            raise NotebookFormatError(f"cell {i}: an answer cell needs a check cell after it")
        check = nb.cells[code[pos + 1]]
        if regions(check.source, SOLUTION_BEGIN, SOLUTION_END, f"cell {code[pos + 1]}"):
            raise NotebookFormatError(f"cell {i}: two answer cells in a row; add a check cell")
        grade_id = f"q{number}"
        cell.metadata["nbgrader"] = _nbgrader(grade_id, solution=True)
        old_points = check.metadata.get("nbgrader", {}).get("points", points)
        check.metadata["nbgrader"] = _nbgrader(
            f"{grade_id}-check", solution=False, points=old_points
        )
    if hide:
        for i, cell in enumerate(nb.cells):
            if cell.metadata.get("nbgrader", {}).get("solution"):
                _hide(nb, i)
    return nb


def find_questions(nb: Any, lesson: str) -> list[Question]:
    """The exercises of a tagged notebook, in order, from their nbgrader metadata."""
    answers: dict[str, int] = {}
    questions = []
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if meta.get("solution"):
            answers[grade_id] = i
        elif meta.get("grade") and grade_id.endswith("-check"):
            base = grade_id[: -len("-check")]
            if base not in answers:
                raise NotebookFormatError(f"cell {i}: check cell {grade_id!r} has no answer cell")
            questions.append(
                Question(f"{lesson}.{base}", base, answers[base], i, float(meta.get("points", 1)))
            )
    return questions
