"""Instructor tooling: student/solution builds and the autograder, on a small demo lesson."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main as cli
from coursekit.teach import Limits, SandboxUnavailable, build, find_questions, grade, tag_exercises
from coursekit.teach.build import HOW_TO_ASK
from coursekit.teach.notebooks import (
    HIDE_TITLE,
    HINT,
    NotebookFormatError,
    read_notebook,
    show_solutions,
)

SANDBOX = shutil.which("bwrap") is not None  # tests/test_grader_redteam.py requires it
BADGE = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/coursekit/coursekit/blob/main/notebooks/99_demo.ipynb)"
)
CELLS = [
    ("md", f"# 99 · Demo\n\n{BADGE}"),
    ("code", "data = [1, 2, 3]"),
    ("md", "### Exercise 1: add up `data` into `total`."),
    ("code", "### BEGIN SOLUTION\ntotal = sum(data)\n### END SOLUTION\nprint(total)"),
    (
        "code",
        'assert total == 6, "total should be the sum of data"\n'
        "### BEGIN HIDDEN TESTS\nassert isinstance(total, int)\n### END HIDDEN TESTS",
    ),
    ("md", "### Exercise 2: write `square(x)`."),
    ("code", "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"),
    (
        "code",
        "assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert square(-4) == 16\n"
        "### END HIDDEN TESTS",
    ),
    ("md", "### Exercise 3: the mean of `data`, as a float, in `mean`."),
    ("code", "### BEGIN SOLUTION\nmean = sum(data) / len(data)\n### END SOLUTION"),
    (
        "code",
        "assert mean == 2\n### BEGIN HIDDEN TESTS\nassert isinstance(mean, float)\n"
        "### END HIDDEN TESTS",
    ),
]
RIGHT = {
    "q1": "total = sum(data)",
    "q2": "def square(x):\n    return x * x",
    "q3": "mean = sum(data) / len(data)",
}


def make_lesson(folder: Path, cells=CELLS, name: str = "99_demo.ipynb") -> Path:
    """A tagged source lesson (default: three exercises with hidden tests) in folder/source/."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    path = folder / "source" / name
    path.parent.mkdir()
    nbformat.write(tag_exercises(nb), path)
    return path


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    return make_lesson(tmp_path)


def submit(student_copy: Path, out: Path, answers: dict[str, str]) -> Path:
    """A learner's submission: the student copy with some answer cells filled in."""
    nb = nbformat.read(student_copy, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def test_tagging_finds_answer_and_check_cells(lesson):
    questions = find_questions(read_notebook(lesson), "99")
    assert [(q.qid, q.answer_cell, q.check_cell, q.points) for q in questions] == [
        ("99.q1", 3, 4, 1.0),
        ("99.q2", 6, 7, 1.0),
        ("99.q3", 9, 10, 1.0),
    ]
    meta = read_notebook(lesson).cells[4].metadata["nbgrader"]
    assert meta["grade"] and meta["locked"] and meta["grade_id"] == "q1-check"


def test_source_hides_solutions_until_asked_and_the_builds_show_them(lesson, tmp_path):
    source = read_notebook(lesson)
    for q in find_questions(source, "99"):
        answer = source.cells[q.answer_cell]
        assert answer.metadata["jupyter"]["source_hidden"] is True  # JupyterLab: collapsed input
        assert answer.metadata["cellView"] == "form"  # Colab: only the #@title line shows
        assert answer.source.splitlines()[0] == HIDE_TITLE
        assert source.cells[q.answer_cell - 1].source.endswith(HINT)
    again = tag_exercises(read_notebook(lesson))
    assert [c.source for c in again.cells] == [c.source for c in source.cells], "idempotent"
    for kind in ("student", "solutions"):
        (path,) = build(kind, lesson, tmp_path / kind, "")
        copy_nb = read_notebook(path)
        assert all("cellView" not in c.metadata for c in copy_nb.cells)
        assert not any(c.metadata.get("jupyter", {}).get("source_hidden") for c in copy_nb.cells)
        text = "\n".join(c.source for c in copy_nb.cells)
        assert HIDE_TITLE not in text and HINT not in text
    (path,) = build("solutions", lesson, tmp_path / "solutions", "")
    assert read_notebook(path).cells[3].source.startswith("### BEGIN SOLUTION\ntotal = sum(data)")


def test_unbalanced_markers_and_missing_check_are_reported():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")]
    with pytest.raises(NotebookFormatError, match="never closed"):
        tag_exercises(nb)
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")]
    with pytest.raises(NotebookFormatError, match="needs a check cell"):
        tag_exercises(nb)


def test_student_build_stubs_solutions_and_drops_hidden_tests(lesson, tmp_path):
    (path,) = build("student", lesson.parent, tmp_path / "build" / "student", "build/student")
    nb = read_notebook(path)
    text = "\n".join(c.source for c in nb.cells)
    assert "HIDDEN" not in text and "isinstance(total" not in text
    assert "sum(data)" not in text and "x * x" not in text, "no solution may leak"
    stub = nb.cells[3].source
    assert "total = ...  # your answer" in stub and "raise" not in stub
    assert nb.cells[6].source == (
        "def square(x):\n    # Exercise 99.q2: your code here (the instructions are in the text "
        "above).\n    ...  # replace with your code"
    )
    assert 'ck.exercises.solution("99.q1")' in nb.cells[2].source, "how to ask for the solution"
    assert "blob/main/build/student/99_demo.ipynb" in nb.cells[0].source
    assert all(c.get("outputs", []) == [] for c in nb.cells)
    nbformat.validate(nb)


STUB_LESSON = [
    (
        "code",
        "import coursekit as ck\n"
        "stages = [{'part': 'stage6', 'params': 3}, {'part': 'stem', 'params': 1}]\n"
        "share = 0.0",
    ),
    ("md", "### Exercise 1: stage6's share of the parameters, in `stage6_fraction`."),
    (
        "code",
        "### BEGIN SOLUTION\nshare = stages[0]['params'] / sum(r['params'] for r in stages)\n"
        "stage6_fraction = share\n### END SOLUTION",
    ),
    ("code", 'print(share)\nck.exercises.check("01.q2", stage6_fraction, stages=stages)'),
]


def test_unanswered_stub_binds_answers_to_ellipsis_and_the_check_says_not_yet(tmp_path, capsys):
    lesson = make_lesson(tmp_path, STUB_LESSON, "99_stub.ipynb")
    (path,) = build("student", lesson, tmp_path / "student", "")
    setup, _, stub, check = (c.source for c in read_notebook(path).cells)
    assert "stage6_fraction = ...  # your answer" in stub
    assert "share = ..." not in stub, "a name an earlier cell set must be left alone"
    namespace: dict = {}
    exec(setup, namespace)  # the learner runs the cells in order without answering
    exec(stub, namespace)  # a stub never raises: Run All reaches the end
    assert namespace["stage6_fraction"] is Ellipsis and namespace["share"] == 0.0
    exec(check, namespace)  # no exception either: "not answered yet" and the hint
    out = capsys.readouterr().out
    assert "… 01.q2: not answered yet." in out and 'solution("01.q2")' in out


def test_solution_data_holds_each_worked_solution_without_hidden_tests(lesson):
    from coursekit.teach.build import solution_data

    data = solution_data(lesson)["questions"]
    assert data["99.q1"] == {
        "notebook": "99_demo.ipynb",
        "code": "total = sum(data)\nprint(total)\n",
    }
    assert data["99.q2"]["code"] == "def square(x):\n    return x * x\n"
    assert "HIDDEN" not in str(data) and "isinstance" not in str(data)


def test_round_trip_student_plus_solutions_gives_the_solutions_build(lesson, tmp_path):
    (student,) = build("student", lesson, tmp_path / "student", "")
    (solutions,) = build("solutions", lesson, tmp_path / "solutions", "")
    source, stu, sol = (read_notebook(p) for p in (lesson, student, solutions))
    show_solutions(source)  # the builds show what the source hides from learners
    for q in find_questions(source, "99"):  # put the source's solutions back
        stu.cells[q.answer_cell].source = source.cells[q.answer_cell].source
        ask = "\n\n" + HOW_TO_ASK.format(qid=q.qid)  # only the learner asks for solutions
        text = stu.cells[q.answer_cell - 1]
        assert text.source.endswith(ask)
        text.source = text.source.removesuffix(ask)
    assert [c.source for c in stu.cells] == [c.source for c in sol.cells]
    assert "HIDDEN" not in "".join(c.source for c in sol.cells)
    assert sol.cells[0].source == source.cells[0].source, "'' leaves the badge alone"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade a class of submissions once; return the reports by student and the output dir."""
    tmp_path = tmp_path_factory.mktemp("class")
    lesson = make_lesson(tmp_path)
    (student_copy,) = build("student", lesson, tmp_path / "student", "")
    subs, out = tmp_path / "subs", tmp_path / "grades"
    submit(student_copy, subs / "correct" / "99_demo.ipynb", RIGHT)
    submit(
        student_copy,
        subs / "partial" / "99_demo.ipynb",
        {
            "q1": RIGHT["q1"],
            "q2": "def square(x):\n    return x * 3",  # passes the visible check, not the hidden
            "q3": "mean = sum(data) // len(data)",  # an int: hidden test fails
        },
    )
    submit(student_copy, subs / "crashing" / "99_demo.ipynb", {**RIGHT, "q1": "total = 1 / 0"})
    submit(
        student_copy, subs / "looping" / "99_demo.ipynb", {**RIGHT, "q2": "while True:\n    pass"}
    )
    submit(
        student_copy, subs / "dying" / "99_demo.ipynb", {**RIGHT, "q2": "import os\nos._exit(1)"}
    )
    submit(student_copy, subs / "blank" / "99_demo.ipynb", {})  # handed in untouched
    (subs / "malformed").mkdir()
    (subs / "malformed" / "99_demo.ipynb").write_text('{"cells": [ this is not json')
    tamper = submit(
        student_copy,
        subs / "tamper" / "99_demo.ipynb",
        {
            # swallow failing asserts, peek at the history for hidden tests, overwrite the reports
            "q1": "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)\n"
            "print('seen:', [h for h in In if 'BEGIN ' + 'HIDDEN' in h])\n"
            f"open({str(out / 'grades.json')!r}, 'w').write('[]')\ntotal = 0",
            "q2": "def square(x):\n    return 0",
            "q3": "mean = 0",
        },
    )
    nb = nbformat.read(tamper, as_version=4)
    for cell in nb.cells:  # and replace every check cell by a no-op
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "pass"
    nbformat.write(nb, tamper)
    reports = grade([subs], lesson, out, 5, Limits(sandbox=SANDBOX))
    return {r.student: r for r in reports}, out


def scores(report):
    return [q.points for q in report.questions]


def test_grades_correct_partial_crashing_looping_malformed(graded):
    reports, _ = graded
    assert scores(reports["correct"]) == [1, 1, 1] and reports["correct"].score == 3
    assert scores(reports["partial"]) == [1, 0, 0], "hidden tests catch what the checks miss"
    crash = reports["crashing"]
    assert scores(crash) == [0, 1, 1] and crash.questions[0].status == "error"
    assert "ZeroDivisionError" in crash.questions[0].message
    loop = reports["looping"]
    assert scores(loop) == [1, 0, 1] and loop.questions[1].status == "timeout"
    dead = reports["dying"]
    assert dead.status == "kernel died" and scores(dead) == [1, 0, 0]
    assert [q.status for q in dead.questions] == ["passed", "not run", "not run"]
    blank = reports["blank"]
    assert scores(blank) == [0, 0, 0]
    # The stubs bind `...` and never raise, so the demo's plain asserts fail on them. (The
    # grader may report untouched stubs as "unanswered"; coursekit's own checks raise
    # NotAnswered under COURSEKIT_CHECKS=strict.)
    assert {q.status for q in blank.questions} <= {"unanswered", "failed"}
    bad = reports["malformed"]
    assert bad.status == "malformed" and bad.score == 0 and bad.max_score == 3
    assert "not a valid Jupyter notebook" in bad.message


def test_tampering_does_not_succeed(graded):
    reports, out = graded
    tamper = reports["tamper"]
    assert scores(tamper) == [0, 0, 0], "swallowed asserts and no-op check cells earn nothing"
    assert tamper.flags, "answers that touch kernel internals are flagged for review"
    executed = read_notebook(out / "executed" / "tamper__99_demo.ipynb")
    seen = "".join(o.get("text", "") for o in executed.cells[3].outputs)
    assert "seen: []" in seen, "hidden tests are not in the kernel before their check runs"
    rows = json.loads((out / "grades.json").read_text())
    assert {r["student"] for r in rows} == set(reports), "the report was not overwritten"


def test_reports_json_csv_and_feedback(graded):
    reports, out = graded
    csv_rows = (out / "grades.csv").read_text().splitlines()
    assert csv_rows[0] == "student,notebook,status,99.q1,99.q2,99.q3,score,max_score,flags"
    assert len(csv_rows) == 1 + len(reports)
    assert any(r.startswith("correct,99_demo.ipynb,graded,1.0,1.0,1.0,3.0,3.0") for r in csv_rows)
    feedback = (out / "feedback" / "looping__99_demo.md").read_text()
    assert "99.q2 (0/1) timeout" in feedback


def test_cli_build_and_grade(lesson, tmp_path, capsys):
    assert cli(["build", "solutions", str(lesson.parent), "--out", str(tmp_path / "sol")]) == 0
    assert (tmp_path / "sol" / "99_demo.ipynb").exists()
    assert (
        cli(
            [
                "grade",
                str(tmp_path / "sol" / "99_demo.ipynb"),
                "--source",
                str(lesson),
                "--out",
                str(tmp_path / "g"),
                "--timeout",
                "30",
                *([] if SANDBOX else ["--unsafe-no-sandbox"]),
            ]
        )
        == 0
    )
    rows = json.loads((tmp_path / "g" / "grades.json").read_text())
    assert rows[0]["score"] == 3, "the solutions copy earns full marks"
    assert cli(["grade", "--verify", "--out", str(tmp_path / "g")]) == 0
    (tmp_path / "g" / "grades.json").write_text("[]")
    assert cli(["grade", "--verify", "--out", str(tmp_path / "g")]) == 1


def test_without_bubblewrap_the_grader_refuses(lesson, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        grade([lesson], lesson, tmp_path / "g")
    assert cli(["grade", str(lesson), "--source", str(lesson), "--out", str(tmp_path)]) == 2
    assert "--unsafe-no-sandbox" in capsys.readouterr().err
    assert not (tmp_path / "g").exists(), "nothing ran"
