"""Every lesson is clean, complete and runnable as learners receive it.

The instructor sources live in notebooks/source/; the learners' copies in notebooks/ are
generated from them by `make notebooks` (with the worked solutions behind
`ck.exercises.solution`), and must never go stale.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from coursekit.exercises.core import _lookup
from coursekit.runtime import colab
from coursekit.teach import build, find_questions, lesson_of, read_notebook, tag_exercises
from coursekit.teach.build import solution_data
from coursekit.teach.lint import exercise_problems

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "source").glob("[0-9][0-9]_*.ipynb"))
LEARNER = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ids = [p.stem for p in SOURCES]
REGENERATE = "run `make notebooks` (after editing notebooks/source/) and commit the result"


def test_the_course_has_its_lessons_and_a_learners_copy_of_each():
    assert [p.name[:2] for p in SOURCES] == [f"{i:02d}" for i in range(len(SOURCES))]
    assert len(SOURCES) >= 6
    assert [p.name for p in LEARNER] == [p.name for p in SOURCES], REGENERATE


@pytest.mark.parametrize("path", SOURCES + LEARNER, ids=[f"source/{i}" for i in ids] + ids)
def test_notebook_is_valid_and_has_no_outputs(path):
    nb = read_notebook(path)  # validates nbformat
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has stored outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_learners_copy_is_the_student_build_of_its_source(path, tmp_path):
    (built,) = build("student", path, tmp_path, "notebooks")
    committed = ROOT / "notebooks" / path.name
    assert committed.exists(), f"{committed.name}: no learner's copy; {REGENERATE}"
    same = json.loads(committed.read_text()) == json.loads(built.read_text())  # not the bytes:
    assert same, f"{committed.name} is stale; {REGENERATE}"  # nbformat versions write them apart


def test_worked_solutions_are_generated_from_the_sources():
    shipped = json.loads((ROOT / "coursekit" / "exercises" / "solutions.json").read_text())
    assert shipped == solution_data(ROOT / "notebooks" / "source"), (
        f"coursekit/exercises/solutions.json is stale; {REGENERATE}"
    )
    text = json.dumps(shipped)
    assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text


def test_worked_solutions_ship_with_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"coursekit\.exercises"\s*=\s*\[\s*"solutions\.json"\s*\]', pyproject)


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_colab_badge_and_setup_cell(path):
    learner = ROOT / "notebooks" / path.name
    for nb in (read_notebook(path), read_notebook(learner)):
        badge = colab.badge_url(f"notebooks/{path.name}")  # exact cells: tests/test_install.py
        assert badge in nb.cells[0].source, "the first cell's badge opens the learner's copy"
        setup = [c.source for c in nb.cells[:6] if c.cell_type == "code"]
        assert any('"google.colab" in sys.modules' in s and "pip" in s for s in setup), (
            "one of the first cells must install coursekit on Colab"
        )
        assert any("import coursekit as ck" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", SOURCES[1:], ids=ids[1:])
def test_every_exercise_has_a_solution_and_a_check(path):
    nb = read_notebook(path)
    lesson = lesson_of(path)
    retagged = tag_exercises(copy.deepcopy(nb))

    def tags(cells):  # nbgrader metadata, the hidden solutions (JupyterLab, Colab) and the hint
        keys = ("nbgrader", "jupyter", "cellView")
        return [([c.metadata.get(k) for k in keys], c.source) for c in cells]

    assert tags(retagged.cells) == tags(nb.cells), (
        "exercise metadata is stale: run `make notebooks` (or `coursekit tag notebooks/source`) "
        "so its answer/check cells are tagged"
    )
    questions = find_questions(nb, lesson)
    assert len(questions) >= 2, "each lesson has at least two exercises"
    for q in questions:
        answer, check = nb.cells[q.answer_cell].source, nb.cells[q.check_cell].source
        assert "### BEGIN SOLUTION" in answer and "### END SOLUTION" in answer
        called = re.findall(r'exercises\.check\(\s*"([\d.q]+)"', check)
        assert called == [q.qid], f"the check cell of {q.qid} must call check({q.qid!r}, ...)"
        _lookup(q.qid)  # the self-check exists


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_exercises_work_when_tried_first(path):
    """No name read after an exercise is bound only in its solution (the learner's copy binds it
    to `...`); no visible check cell asserts or prints an expected value (coursekit.teach.lint)."""
    problems = exercise_problems(read_notebook(path), lesson_of(path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_learners_copy_holds_no_solution_and_no_hidden_test(path):
    nb = read_notebook(ROOT / "notebooks" / path.name)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "raise NotImplementedError" not in text, "stubs never raise: Run All reaches the end"
    for q in find_questions(nb, lesson_of(path)):
        assert f'ck.exercises.solution("{q.qid}")' in nb.cells[q.answer_cell - 1].source, (
            f"{q.qid}: the exercise's text says how to ask for the worked solution"
        )


def test_the_learners_copies_are_what_the_commands_run():
    """`make test` runs the learners' copies under nbval; `coursekit course` defaults to them."""
    makefile = (ROOT / "Makefile").read_text()
    assert "notebooks/[0-9][0-9]_*.ipynb" in makefile and "--nbval-lax" in makefile
    assert "build student notebooks/source --out notebooks" in makefile


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_links_to_the_course_follow_the_copy(path):
    """Links to the course's own files either stay inside notebooks/ (relative, so they follow
    every copy) or go through `coursekit.runtime.colab` (REPOSITORY at REF, retargeted by
    `coursekit build --repo --ref`); never a hard-coded address of the course elsewhere."""
    nb = read_notebook(path)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        text = colab.BADGE.sub("", cell.source)
        for target in MARKDOWN_LINK.findall(text):
            if "://" not in target:
                name = target.split("#")[0]
                if name and (
                    not name.endswith(".ipynb") or not (ROOT / "notebooks" / name).exists()
                ):
                    problems.append(f"cell {i}: relative link {target!r} (only to a lesson)")
                continue
            match = colab.REPO_LINK.fullmatch(target.split("#")[0])
            if match and match.group("repo") == colab.REPOSITORY:
                if (
                    match.group("ref") != colab.REF
                    or target
                    != colab.repo_link(match.group("path")) + target[len(target.split("#")[0]) :]
                ):
                    problems.append(f"cell {i}: {target!r} is not colab.repo_link(...)")
                elif not (ROOT / match.group("path")).exists():
                    problems.append(f"cell {i}: {target!r} names no file of the repository")
        loose = re.findall(rf"github\.com/{re.escape(colab.REPOSITORY)}[^\s)]*", text)
        for address in loose:
            if not any(address in t for t in MARKDOWN_LINK.findall(text)):
                problems.append(f"cell {i}: a bare address of the course: {address!r}")
    assert not problems, "\n".join(problems)


def test_build_retargets_links_to_the_course(tmp_path):
    path = next(p for p in SOURCES if "performance.md" in p.read_text())
    (built,) = build("student", path, tmp_path, "student", "school/ft", "v2.1")
    text = built.read_text()
    assert "github.com/coursekit/coursekit" not in text
    assert colab.repo_link("docs/performance.md", "school/ft", "v2.1") in text
