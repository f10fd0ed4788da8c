"""Red team: a class of submissions written to attack the grader, graded together in bubblewrap.

One small purpose-built lesson (three trivial exercises; the third uses a real self-check from
coursekit.exercises) and one submission per attack. Each test checks the attacker's score and
that every other student's result is the one expected (nobody harmed anybody else).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from test_teach import make_lesson

from coursekit.teach import build, grade
from coursekit.teach.grade import Limits
from coursekit.teach.reports import verify_reports

pytestmark = pytest.mark.slow  # grades a class of 15 sandboxed submissions (a few minutes)

if shutil.which("bwrap") is None:
    message = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if os.environ.get("COURSEKIT_REQUIRE_ASSETS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

LESSON = [
    ("md", "# 97 · Red team"),
    ("code", "data = [1, 2, 3]"),
    ("md", "Exercise 1: the sum of `data` in `total`."),
    ("code", "### BEGIN SOLUTION\ntotal = sum(data)\n### END SOLUTION"),
    (
        "code",
        "assert total == 6\n### BEGIN HIDDEN TESTS\nassert type(total) is int and total == 6\n"
        "### END HIDDEN TESTS",
    ),
    ("md", "Exercise 2: `square(x)`."),
    ("code", "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"),
    (
        "code",
        "assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert type(square(-4)) is int\n"
        "assert square(-4) == 16\n### END HIDDEN TESTS",
    ),
    (
        "code",
        'import coursekit as ck\nstages = [{"part": "stage6", "params": 30}, '
        '{"part": "rest", "params": 70}]',
    ),
    ("md", "Exercise 3: stage6's share of the parameters, in `fraction`."),
    (
        "code",
        "### BEGIN SOLUTION\nfraction = stages[0]['params'] / sum(s['params'] for s in stages)\n"
        "### END SOLUTION",
    ),
    (
        "code",
        'ck.exercises.check("01.q2", fraction, stages=stages)\n### BEGIN HIDDEN TESTS\n'
        "assert type(fraction) is float\n### END HIDDEN TESTS",
    ),
]
RIGHT = {
    "q1": "total = sum(data)",
    "q2": "def square(x):\n    return x * x",
    "q3": "fraction = 30 / 100",
}
SWALLOW = """import ast
class Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=[s], handlers=[handler], orelse=[], finalbody=[])
                     for s in node.body]
        return ast.fix_missing_locations(node)
get_ipython().ast_transformers.append(Swallow())
total = 0"""
ALWAYS_EQUAL = """class Anything(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
total = Anything(0)"""
PATCH = """import builtins, coursekit
coursekit.exercises.check = lambda *a, **k: "fine"
ck.exercises.check = coursekit.exercises.check
builtins.sum = lambda *a, **k: 1
fraction = 0.0"""
UNINTERRUPTIBLE = """def square(x):
    return x * x
while True:
    try:
        while True:
            pass
    except BaseException:
        pass"""
KILL = """import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass"""
# Every student's expected points per question; the attacks must not change anybody else's.
EXPECTED = {
    "a_killer": [0, 1, 1],
    "ast_transformer": [0, 1, 1],
    "classmate": [1, 1, 1],
    "colab": [1, 1, 1],
    "duplicate": [1, 1, 1],
    "honest": [1, 1, 1],
    "huge_output": [1, 1, 1],
    "leftover": [1, 1, 1],
    "loop": [1, 0, 1],
    "memory_hog": [0, 1, 1],
    "patcher": [0, 1, 0],
    "reader": [1, 1, 1],
    "renamed": [1, 1, 1],
}
LONG = "l" * 200


def _submit(student_copy: Path, out: Path, answers: dict[str, str], twice: str = "") -> Path:
    nb = nbformat.read(student_copy, as_version=4)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            if meta["grade_id"] == twice:  # a first, wrong copy of the cell, above the right one
                cells.append(nbformat.from_dict({**cell, "id": "dup", "source": "total = 0"}))
            cell.source = answers[meta["grade_id"]]
        cells.append(cell)
    nb.cells = cells
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redteam")
    source = make_lesson(tmp, LESSON, "97_redteam.ipynb")
    (copy,) = build("student", source, tmp / "student", "")
    subs, out = tmp / "subs", tmp / "grades"
    honest = _submit(copy, subs / "honest" / "97_redteam.ipynb", RIGHT)
    secrets = [str(p) for p in (source, source.parent, honest, subs, out, tmp)]
    marker = tmp / "leftover-was-here"
    attacks = {
        "reader": f"import os\nprint('reader saw:', [p for p in {secrets!r} if os.path.exists(p)],"
        " sorted(k for k in os.environ if 'REDTEAM' in k))\nimport socket\ntry:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    print('network: open')\n"
        "except OSError as err:\n    print('network:', type(err).__name__)\ntotal = sum(data)",
        "classmate": f"for p in [{str(honest)!r}]:\n    try:\n        open(p, 'w').write('{{}}')\n"
        "    except OSError as err:\n        print('blocked:', type(err).__name__)\n"
        "total = sum(data)",
        "leftover": "import subprocess, sys\nlater = 'import time, pathlib; time.sleep(3); "
        f"pathlib.Path(%r).write_text(%r)' % ({str(marker)!r}, 'x')\n"
        "subprocess.Popen([sys.executable, '-c', later], start_new_session=True)\n"
        "total = sum(data)",
        "a_killer": KILL,
        "memory_hog": "hog = bytearray(16 * 2**30)\ntotal = sum(data)",
        "huge_output": "for i in range(100_000):\n    print('x' * 100)\ntotal = sum(data)",
    }
    for name, code in attacks.items():
        _submit(copy, subs / name / "97_redteam.ipynb", {**RIGHT, "q1": code})
    _submit(
        copy,
        subs / "patcher" / "97_redteam.ipynb",
        {"q1": ALWAYS_EQUAL, "q2": RIGHT["q2"], "q3": PATCH},
    )
    _submit(copy, subs / "ast_transformer" / "97_redteam.ipynb", {**RIGHT, "q1": SWALLOW})
    _submit(copy, subs / "loop" / "97_redteam.ipynb", {**RIGHT, "q2": UNINTERRUPTIBLE})
    _submit(copy, subs / "duplicate" / "97_redteam.ipynb", RIGHT, twice="q1")
    for odd in (os.fsdecode(b"caf\xe9 \xff"), LONG):
        _submit(copy, subs / odd / "97_redteam.ipynb", RIGHT)
    colab = _submit(copy, subs / "colab" / "Copy of 97_redteam.ipynb", RIGHT)
    nb = nbformat.read(colab, as_version=4)
    del nb.metadata["coursekit"]  # Colab keeps metadata; the name alone must do as well
    nbformat.write(nb, colab)
    _submit(copy, subs / "renamed" / "homework (1).ipynb", RIGHT)  # metadata says the lesson
    (subs / "__MACOSX" / "honest").mkdir(parents=True)
    (subs / "__MACOSX" / "honest" / "._97_redteam.ipynb").write_bytes(b"\x00\x05\x16\x07")
    (subs / "honest" / ".hidden.ipynb").write_text("{}")
    before = hashlib.sha256(honest.read_bytes()).hexdigest()
    os.environ["REDTEAM_SECRET"] = "the grader's environment"
    try:
        limits = Limits(timeout=60, budget=400, memory_gb=8, max_output_mb=1)
        reports = grade([subs], source, out, 60, limits)
    finally:
        del os.environ["REDTEAM_SECRET"]
    time.sleep(4)  # give a leftover process time to act, if it survived
    state = {"honest_sha": before, "marker": marker, "honest": honest}
    return {r.student: r for r in reports}, out, state


def points(report):
    return [q.points for q in report.questions]


def others_unaffected(reports):
    """Every student expected in the class got exactly the expected points."""
    named = {k: v for k, v in reports.items() if k in EXPECTED}
    assert {k: points(v) for k, v in named.items()} == EXPECTED
    assert len(reports) == len(EXPECTED) + 2, "the two odd names, no __MACOSX or hidden file"


def executed_text(out: Path, student: str, cell: int) -> str:
    nb = nbformat.read(out / "executed" / f"{student}__97_redteam.ipynb", as_version=4)
    return "".join(o.get("text", "") for o in nb.cells[cell].outputs)


def test_reading_sources_others_and_environment_sees_nothing(graded):
    reports, out, _ = graded
    assert points(reports["reader"]) == [1, 1, 1]
    seen = executed_text(out, "reader", 3)
    assert "reader saw: [] []" in seen and "network: open" not in seen and "network: " in seen
    others_unaffected(reports)


def test_a_classmate_submission_cannot_be_touched(graded):
    reports, out, state = graded
    assert points(reports["classmate"]) == [1, 1, 1]
    assert "blocked:" in executed_text(out, "classmate", 3)
    assert hashlib.sha256(state["honest"].read_bytes()).hexdigest() == state["honest_sha"]
    others_unaffected(reports)


def test_a_leftover_process_dies_with_the_sandbox(graded):
    reports, out, state = graded
    assert points(reports["leftover"]) == [1, 1, 1]
    assert not state["marker"].exists()
    assert verify_reports(out) == [], "no report changed after the grader wrote it"
    others_unaffected(reports)


def test_killing_the_grader_kills_only_that_kernel(graded):
    reports, _, _ = graded
    killer = reports["a_killer"]  # it sees only its own sandbox: kill(-1) spares the kernel
    assert killer.status == "graded" and points(killer) == [0, 1, 1]
    assert "NameError" in killer.questions[0].message
    others_unaffected(reports)  # graded after it, all of them


def test_patched_checks_and_always_equal_values_fail_and_are_flagged(graded):
    reports, _, _ = graded
    patcher = reports["patcher"]
    assert points(patcher) == [0, 1, 0], "q1: == always true; q3: checks replaced"
    assert patcher.questions[0].status == "failed", "the exact hidden test caught it"
    assert "not stage6's share" in patcher.questions[2].message, "the real check ran"
    flags = " ".join(patcher.flags)
    assert "coursekit.exercises.check replaced" in flags and "builtins.sum" in flags
    others_unaffected(reports)


def test_an_ast_transformer_is_removed_before_the_check(graded):
    reports, _, _ = graded
    swallow = reports["ast_transformer"]
    assert points(swallow) == [0, 1, 1] and swallow.questions[0].status == "failed"
    assert "ast_transformers" in " ".join(swallow.flags)
    others_unaffected(reports)


def test_an_uninterruptible_loop_restarts_the_kernel_and_grading_goes_on(graded):
    reports, _, _ = graded
    loop = reports["loop"]
    assert [q.status for q in loop.questions] == ["passed", "timeout", "passed"]
    assert any("ignored the interrupt" in f for f in loop.flags)
    assert loop.seconds < 400
    others_unaffected(reports)


def test_odd_names_duplicates_copies_and_zip_leftovers(graded):
    reports, out, _ = graded
    odd = [r for name, r in reports.items() if name not in EXPECTED]
    assert [points(r) for r in odd] == [[1, 1, 1], [1, 1, 1]]
    assert all(len(r.student) <= 60 and r.student.isprintable() for r in odd)
    assert any(r.student.startswith("caf") for r in odd)
    assert {r.student for r in odd} <= {p.name.split("__")[0] for p in (out / "feedback").iterdir()}
    assert any("more than once" in f for f in reports["duplicate"].flags)
    assert reports["colab"].notebook == reports["renamed"].notebook == "97_redteam.ipynb"
    rows = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    assert not any("MACOSX" in r["student"] or r["student"].startswith(".") for r in rows)
    others_unaffected(reports)


def test_memory_beyond_the_limit_fails_that_answer_only(graded):
    reports, _, _ = graded
    hog = reports["memory_hog"]
    assert points(hog) == [0, 1, 1] and "MemoryError" in hog.questions[0].message
    others_unaffected(reports)


def test_huge_output_is_truncated(graded):
    reports, out, _ = graded
    assert points(reports["huge_output"]) == [1, 1, 1]
    assert "[output truncated by the grader" in executed_text(out, "huge_output", 3)
    assert (out / "executed" / "huge_output__97_redteam.ipynb").stat().st_size < 2 * 2**20
    others_unaffected(reports)


def test_a_changed_report_is_detected(graded, tmp_path):
    _, out, _ = graded
    copy = tmp_path / "grades"
    shutil.copytree(out, copy)
    (copy / "grades.csv").write_text("student,score\nmallory,100\n")
    assert verify_reports(copy) == ["grades.csv: changed"]
