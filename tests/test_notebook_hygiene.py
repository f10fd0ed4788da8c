"""Every lesson notebook is clean, complete and runnable as learners receive it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

from coursekit import colab
from coursekit.exercises.core import _lookup
from coursekit.teach import build, find_questions, lesson_of, read_notebook, tag_exercises

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ids = [p.stem for p in LESSONS]


def test_the_course_has_its_lessons():
    assert [p.name[:2] for p in LESSONS] == [f"{i:02d}" for i in range(len(LESSONS))]
    assert len(LESSONS) >= 6


@pytest.mark.parametrize("path", LESSONS, ids=ids)
def test_source_notebook_is_valid_and_has_no_outputs(path):
    nb = read_notebook(path)  # validates nbformat
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has stored outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", LESSONS, ids=ids)
def test_colab_badge_and_setup_cell(path):
    nb = read_notebook(path)
    badge = colab.badge_url(f"notebooks/{path.name}")  # exact cells: tests/test_install.py
    assert badge in nb.cells[0].source, "the first cell must hold an Open-in-Colab badge to itself"
    setup = [c.source for c in nb.cells[:6] if c.cell_type == "code"]
    assert any('"google.colab" in sys.modules' in s and "pip" in s for s in setup), (
        "one of the first cells must install coursekit on Colab"
    )
    assert any("import coursekit as ck" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", LESSONS[1:], ids=ids[1:])
def test_every_exercise_has_a_solution_and_a_check(path):
    nb = read_notebook(path)
    lesson = lesson_of(path)
    retagged = tag_exercises(copy.deepcopy(nb))

    def tags(cells):  # nbgrader metadata, the hidden solutions (JupyterLab, Colab) and the hint
        keys = ("nbgrader", "jupyter", "cellView")
        return [([c.metadata.get(k) for k in keys], c.source) for c in cells]

    assert tags(retagged.cells) == tags(nb.cells), (
        "exercise metadata is stale: run `coursekit tag notebooks/` so its answer/check cells are "
        "tagged and the solutions hidden"
    )
    questions = find_questions(nb, lesson)
    assert len(questions) >= 2, "each lesson has at least two exercises"
    for q in questions:
        answer, check = nb.cells[q.answer_cell].source, nb.cells[q.check_cell].source
        assert "### BEGIN SOLUTION" in answer and "### END SOLUTION" in answer
        called = re.findall(r'exercises\.check\(\s*"([\d.q]+)"', check)
        assert called == [q.qid], f"the check cell of {q.qid} must call check({q.qid!r}, ...)"
        _lookup(q.qid)  # the self-check exists


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS[1:], ids=ids[1:])
def test_student_copy_runs_up_to_its_first_exercise(path, tmp_path):
    """What a learner gets runs without error until the first stub, which asks for their code."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    (student,) = build("student", path, tmp_path, "")
    nb = nbformat.read(student, as_version=4)
    first = find_questions(nb, lesson_of(path))[0].answer_cell
    nb.cells = nb.cells[: first + 1]
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with pytest.raises(CellExecutionError) as err:
        client.execute()
    assert err.value.ename == "NotImplementedError", (
        f"failed before the first exercise: {err.value}"
    )
    failed = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert failed == [first], f"cells {failed} raised; only the first exercise's stub may"
