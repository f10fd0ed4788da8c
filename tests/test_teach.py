"""Instructor tooling: student/solution builds and the autograder, on a small demo lesson."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main as cli
from coursekit.teach import Limits, SandboxUnavailable, build, find_questions, grade, tag_exercises
from coursekit.teach.build import HOW_TO_ASK
from coursekit.teach.collect import collect
from coursekit.teach.notebooks import (
    HIDE_TITLE,
    HINT,
    NotebookFormatError,
    read_notebook,
    show_solutions,
)
from coursekit.teach.reports import write_reports, write_submission_files
from coursekit.teach.results import GradeReport, QuestionResult, clean_text

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
    dead = reports["dying"]  # the kernel is restarted and the next question graded
    assert dead.status == "graded" and scores(dead) == [1, 0, 1]
    assert [q.status for q in dead.questions] == ["passed", "error", "passed"]
    assert "the kernel died" in dead.questions[1].message
    assert any(f.startswith("restarted: ") for f in dead.flags)
    blank = reports["blank"]
    assert scores(blank) == [0, 0, 0]
    # The stubs bind `...` and never raise, so the demo's plain asserts fail on them. (The
    # grader may report untouched stubs as "unanswered"; coursekit's own checks raise
    # NotAnswered under COURSEKIT_CHECKS=strict.)
    assert {q.status for q in blank.questions} == {"unanswered"}, "the stubs are recognised"
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
    partial = (out / "feedback" / "partial__99_demo.md").read_text()
    assert "99.q2 (0/1) failed: a hidden test failed" in partial
    assert "square(-4)" not in partial, "hidden tests stay out of feedback"
    detail = next(q.detail for q in reports["partial"].questions if q.qid == "99.q2")
    assert "hidden test line 1" in detail, "the instructor sees which hidden test failed"


def test_gradebook_csv_has_one_row_per_student_with_points_and_total(graded):
    reports, out = graded
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0] == "student,99.q1,99.q2,99.q3,total"
    assert "correct,1.0,1.0,1.0,3.0" in rows and "partial,1.0,0.0,0.0,1.0" in rows
    assert len(rows) == 1 + len(reports)


# Gradescope's "Autograder Specifications": the fields of results.json and their values.
GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format",
                  "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
                  "leaderboard"}  # fmt: skip
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output",
                   "output_format", "tags", "visibility", "extra_data"}  # fmt: skip
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def test_results_json_follows_gradescopes_format_for_every_submission(graded):
    reports, out = graded
    files = sorted((out / "results").glob("*.json"))
    assert len(files) == len(reports), "one results.json per submission, crashed ones included"
    for path in files:
        result = json.loads(path.read_text())
        assert set(result) <= GRADESCOPE_TOP and isinstance(result["tests"], list)
        assert result["visibility"] in VISIBILITY and result["stdout_visibility"] in VISIBILITY
        assert isinstance(result["execution_time"], int) and isinstance(result["output"], str)
        for number, test in enumerate(result["tests"], 1):
            assert set(test) <= GRADESCOPE_TEST and test["visibility"] in VISIBILITY
            assert isinstance(test["name"], str) and test["number"] == str(number)
            assert 0 <= test["score"] <= test["max_score"] and test["status"] in (
                "passed",
                "failed",
            )
            assert (test["status"] == "passed") == (test["score"] == test["max_score"])
            assert isinstance(test["output"], str) and "isinstance(" not in test["output"]
        assert result["score"] == sum(t["score"] for t in result["tests"])
    malformed = json.loads((out / "results" / "malformed__99_demo.json").read_text())
    assert malformed["score"] == 0 and "not a valid Jupyter notebook" in malformed["output"]


def test_links_fifos_and_hard_links_are_refused_without_being_opened(tmp_path):
    secret = tmp_path / "secret.ipynb"
    secret.write_text('{"SECRET-CONTENT": 1}')
    subs = tmp_path / "subs"
    for name in ("link", "hard", "fifo", "folder"):
        (subs / name).mkdir(parents=True)
    (subs / "link" / "99_demo.ipynb").symlink_to(secret)
    os.link(secret, subs / "hard" / "99_demo.ipynb")
    os.mkfifo(subs / "fifo" / "99_demo.ipynb")  # opening it for reading would block forever
    (subs / "folder" / "99_demo.ipynb").symlink_to(tmp_path, target_is_directory=True)
    found = {s.student: s for s in collect([subs])}
    assert {k: s.refused for k, s in found.items()} == dict.fromkeys(found, True)
    assert set(found) == {"link", "hard", "fifo", "folder"}
    assert "symbolic link" in found["link"].error and "hard link" in found["hard"].error
    assert "not a regular file" in found["fifo"].error
    assert not any("SECRET" in s.error for s in found.values())


def test_strings_from_a_kernel_are_cleaned_before_they_are_written(tmp_path):
    report = GradeReport("s\ud800", "99_demo.ipynb", "graded", 0.0, 1.0)
    report.questions = [QuestionResult("99.q1", 0.0, 1.0, "error", "bad \ud800\x00\x1b[2J")]
    write_submission_files(tmp_path, report)
    write_reports([report], tmp_path)
    for path in tmp_path.rglob("*.*"):
        text = path.read_bytes().decode("utf-8")  # valid UTF-8, every file
        assert "\x00" not in text and "\x1b" not in text
    assert clean_text("a\ud800b\x07\n") == "a\ufffdb\n"


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


DOC = Path(__file__).resolve().parents[1] / "docs" / "instructors.md"
EXAMPLE = re.compile(r"<!-- example: ([\w.]+)(?:, (code|markdown))? -->\n```\w+\n(.*?)\n```", re.S)


def example_course(folder: Path) -> Path:
    """The worked example of docs/instructors.md ("Your own exercises"), as a course folder."""
    course = folder / "course"
    course.mkdir()
    nb, name = nbformat.v4.new_notebook(), None
    for target, kind, text in EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        if not kind:
            (course / target).write_text(text + "\n")
            continue
        new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(new(text))
        name = target
    nbformat.write(tag_exercises(nb), course / name)
    return course


def test_an_instructors_own_lesson_is_built_handed_out_and_graded(tmp_path):
    from nbclient import NotebookClient

    course = example_course(tmp_path)
    handout, solutions = tmp_path / "handout", tmp_path / "solutions"
    for kind, out in (("student", handout), ("solutions", solutions)):
        assert cli(["build", kind, str(course), "--out", str(out), "--colab-dir", ""]) == 0
        shutil.copy(course / "checks.py", out)  # handed out next to the notebooks
    lesson = solutions / "90_statistics.ipynb"
    nb = nbformat.read(lesson, as_version=4)  # the learner's side: self-checks in the notebook
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(solutions)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert [f"✓ 90.q{i}" in printed for i in (1, 2, 3)] == [True] * 3
    subs = tmp_path / "subs"
    (subs / "solved").mkdir(parents=True)
    shutil.copy(lesson, subs / "solved")
    wrong = {"q1": "mean_value = 5", "q2": "def spread(xs):\n    return max(xs) + min(xs)",
             "q3": "above = [9.0]"}  # fmt: skip
    submit(handout / "90_statistics.ipynb", subs / "wrong" / "90_statistics.ipynb", wrong)
    args = ["grade", str(subs), "--source", str(course), "--out", str(tmp_path / "g")]
    assert cli([*args, "--timeout", "60", *([] if SANDBOX else ["--unsafe-no-sandbox"])]) == 0
    rows = {r["student"]: r for r in json.loads((tmp_path / "g" / "grades.json").read_text())}
    assert [q["points"] for q in rows["solved"]["questions"]] == [1, 1, 1]
    assert [q["status"] for q in rows["wrong"]["questions"]] == ["failed", "failed", "passed"]
    assert rows["wrong"]["questions"][0]["message"] == "a hidden test failed"
    assert "spread(values) gives 11.0" in rows["wrong"]["questions"][1]["message"]


def test_cgroup_v2_limits_go_where_the_kernel_reads_them(tmp_path, monkeypatch):
    """The v2 protocol on a stand-in hierarchy (this test needs no root and no cgroup2 mount):
    a parent that delegates memory and pids, one folder per sandbox, the limits in its files."""
    from coursekit.teach import cgroup

    root = tmp_path / "cgroup"
    own = root / "system.slice" / "ci.service"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    (own / "cgroup.controllers").write_text("")
    (own / "cgroup.subtree_control").write_text("")  # not delegated: the root is used
    monkeypatch.setattr(cgroup, "_mounts", lambda: [(str(root), "cgroup2", {"rw"})])
    monkeypatch.setattr(cgroup, "_own_paths", lambda: {"v2": "/system.slice/ci.service"})
    group = cgroup.create("sandbox-1", 3 * 2**30, 200, 1.5)
    folder = root / "sandbox-1"
    assert group.version == 2 and group.folders == {"v2": folder}
    assert (folder / "memory.max").read_text() == str(3 * 2**30)
    assert (folder / "pids.max").read_text() == "200"
    assert group.procs_files() == [str(folder / "cgroup.procs")]
    assert not (folder / "cpu.max").exists(), "no cpu.max file: the CPU quota is left unset"
    (root / "cgroup.subtree_control").write_text("\n")  # nothing delegated anywhere
    with pytest.raises(cgroup.CgroupUnavailable, match="v2"):
        cgroup.create("sandbox-2", 2**30, 100)
    text = cgroup.FALLBACK.format(reason="v2: read-only")
    assert "--cgroupns=host" in text and "children escape" in text
