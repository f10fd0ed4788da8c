"""The detectors behind the lesson tests: exercise rules (coursekit.teach.lint) and what a saved
notebook must never show (coursekit.teach.outputs), each on a small made-up notebook."""

from __future__ import annotations

import nbformat
import pytest

from coursekit.teach import tag_exercises
from coursekit.teach.lint import exercise_problems
from coursekit.teach.outputs import code_cell_problems, output_problems, text_problems


def lesson(*cells: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(c[3:])
        if c.startswith("md:")
        else nbformat.v4.new_code_cell(c)
        for c in cells
    ]
    return tag_exercises(nb)


GOOD = (
    "import coursekit as ck\nm3 = make()",
    "md:### Exercise 1",
    "small = m3[:2]  # setup stays outside\n### BEGIN SOLUTION\nk3 = count(small)\nprint(k3)\n"
    "### END SOLUTION",
    'ck.exercises.check("99.q1", k3, model=m3)\n### BEGIN HIDDEN TESTS\nassert k3 == 3\n'
    "### END HIDDEN TESTS",
    "later = train(m3)",
)


def test_a_well_formed_exercise_has_no_problem():
    assert exercise_problems(lesson(*GOOD), "99") == []


@pytest.mark.parametrize(
    "change, expected",
    [
        ((4, "later = train(k3)"), "cell 4 reads `k3`, bound only in the solution of 99.q1"),
        ((2, "### BEGIN SOLUTION\nk3 = count(m3)\n### END SOLUTION\nprint(k3)"),
         "the rest of its answer cell reads `k3`"),
        ((2, "### BEGIN SOLUTION\nsmall = m3[:2]\nk3 = 1\n### END SOLUTION"),
         "reads `small`, bound only in the solution"),
        ((3, 'ck.exercises.check("99.q1", k3, model=m3)\nassert k3 == 3'), "has an assert"),
        ((3, 'print(count(m3))\nck.exercises.check("99.q1", k3, model=m3)'), "has print(...)"),
    ],
)  # fmt: skip
def test_each_broken_rule_is_reported(change, expected):
    cells = list(GOOD)
    index, source = change
    cells[index] = source
    if index == 2 and "small" in source:  # a later cell needs the setup name
        cells[4] = "later = train(small)"
    problems = exercise_problems(lesson(*cells), "99")
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "text, stream, what",
    [
        ("Verdict(name_a='x', a=1.0)", "stdout", "raw repr"),
        ("<coursekit.history.History object at 0x7f3a2c>", "stdout", "raw repr"),
        ("<Figure size 640x480 with 1 Axes>", "display", "raw repr"),
        ("interactive(children=(SelectionSlider(description='k'", "display", "widget repr"),
        ("Loading weights:  40%|####      | 42/105", "stderr", "progress-bar"),
        ("/usr/lib/x.py:3: FutureWarning: `x` is deprecated", "stderr", "warning"),
        ("saved to /tmp/coursekit-00-abc/last.safetensors", "stdout", "path of this machine"),
        ("from /root/.cache/huggingface", "stdout", "path of this machine"),
    ],
)
def test_text_a_learner_should_not_see_is_reported(text, stream, what):
    assert any(what in p for p in text_problems(text, stream)), text_problems(text, stream)


def test_plain_results_pass():
    ok = "✓ 01.q2: 31.2% of all parameters sit in one late stage\nk=3: accuracy 0.812 ± 0.021"
    assert text_problems(ok) == [] and text_problems("100%", "stderr") == []


def test_outputs_small_images_errors_and_long_cells():
    tiny = "iVBORw0KGgoAAAANSUhEUgAAANIAAAC0CAYAAAA="  # a PNG header: 210 x 180
    outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": tiny}),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[]),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=outputs)])
    problems = output_problems(nb)
    assert problems[0] == "cell 0: a 210x180 px image (under 300 px a side)"
    assert problems[1].startswith("cell 0: an error: ValueError")
    long = nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(16)))
    short = nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(15)))
    nb = nbformat.v4.new_notebook(cells=[short, long])
    assert code_cell_problems(nb) == ["cell 1: 16 lines of code (at most 15)"]
