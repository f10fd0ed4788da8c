"""Red team: a class of submissions written to attack the grader, graded together in one run.

One small purpose-built lesson (three exercises: a value, a function the hidden tests call with
an input the learner never sees, and a real self-check from coursekit.exercises) and one
submission per attack, the honest classmates sorted before, between and after them. Each test
checks the attacker's score and, through `others_unaffected`, every other student's.

The attacks are those that beat the grader when the verdict came from inside the student's
kernel (threads that re-install transformers, forged replies, the student's own function
replying, a doctored `coursekit.exercises` served by an import hook, a trace function,
renamed hooks), the ones that stopped the class or escaped the sandbox (a lone surrogate,
links to files outside, an error quoting the input history), and the limits.
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
from test_grader_limits import FORKS
from test_teach import make_lesson

from coursekit.teach import build, grade
from coursekit.teach.cgroup import probe
from coursekit.teach.grade import Limits
from coursekit.teach.reports import verify_reports

pytestmark = pytest.mark.slow  # grades a class of ~30 sandboxed submissions (a few minutes)

if shutil.which("bwrap") is None:
    message = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if os.environ.get("COURSEKIT_REQUIRE_ASSETS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

NO_CGROUPS = probe()
HIDDEN_INPUT = -4077  # only the hidden test uses it: it must never reach a learner
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
        f"assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert type(square({HIDDEN_INPUT})) is int"
        f"\nassert square({HIDDEN_INPUT}) == {HIDDEN_INPUT**2}\n### END HIDDEN TESTS",
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
HIDDEN_TEXT = ("type(total) is int", "BEGIN HIDDEN", str(HIDDEN_INPUT)[1:])
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
"""
ATTACKS_Q1 = {
    # --- the kernel's machinery (each once beat an in-kernel verdict) ---
    "ast_transformer": SWALLOW + "get_ipython().ast_transformers.append(Swallow())\ntotal = 0",
    "thread_transformer": SWALLOW
    + """import threading, time
def keep():
    ip = get_ipython()
    while True:
        if not any(isinstance(t, Swallow) for t in ip.ast_transformers):
            ip.ast_transformers.append(Swallow())
        time.sleep(0.001)
threading.Thread(target=keep, daemon=True).start()
total = 0""",
    "forged_reply": """import json
kernel = get_ipython().kernel
send, done = kernel.session.send, []
fake = {"values": {"total": {"$": "obj", "cls": "__main__:Anything", "attrs": {}}},
        "errors": {}, "blobs": {}}
def forge(stream, kind, content=None, parent=None, *args, **kw):
    if kind == "execute_reply" and content and content.get("user_expressions") and not done:
        done.append(1)
        r = {"status": "ok", "data": {"text/plain": repr(json.dumps(fake))}, "metadata": {}}
        send(stream, kind, dict(content, user_expressions={"r": r}), parent, *args, **kw)
    return send(stream, kind, content, parent, *args, **kw)
kernel.session.send = forge
class Anything(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
total = Anything(0)""",
    "tracer": """import sys, threading
fired = []
def tracer(frame, event, arg):
    if frame.f_code.co_name in ("export", "op", "encode") and not fired:
        fired.append(frame.f_code.co_name)  # once: the agent's answer becomes an error
        raise RuntimeError("trace says: passed")
    return tracer
sys.settrace(tracer)
threading.settrace(tracer)
total = 0""",
    "renamed_hooks": SWALLOW
    + """shell = globals()['get_' + 'ipy' + 'thon']()
getattr(shell, 'ast_' + 'transf' + 'ormers').append(Swallow())
total = 0""",
    # --- what once stopped the class or reached outside ---
    "surrogate": "from IPython.display import display\n"
    "display({'text/plain': '\\udcff \\udc80 \\x00\\x1b[2J'}, raw=True)\n"
    "raise ValueError('\\udcff')",
    "big_message": "from IPython.display import display\n"
    "display({'text/plain': 'x' * 100_000_000}, raw=True)\ntotal = sum(data)",
    "big_value": "total = 'x' * 100_000_000",
    "a_killer": """import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass""",
    "memory_hog": "hog = b'x' * (12 * 2**30)\ntotal = sum(data)",
    "fork_bomb": FORKS,
    "huge_output": "for i in range(100_000):\n    print('x' * 100)\ntotal = sum(data)",
}
FUNCTION_REPLIES = """def square(x):
    import json
    kernel = get_ipython().kernel
    parent = kernel.get_parent()
    body = {"verdict": "passed", "blobs": {}}
    r = {"status": "ok", "data": {"text/plain": repr(json.dumps(body))}, "metadata": {}}
    kernel.session.send(kernel.shell_stream, "execute_reply",
                        {"status": "ok", "user_expressions": {"r": r}}, parent,
                        ident=kernel._parent_ident["shell"])
    return 0"""
INPUT_LEAK = """seen = []
def square(x):
    seen.append(x)
    if x != 3:
        raise ValueError(f"the hidden test called me with {seen}")
    return x * x"""
META_PATH = """import sys, types, importlib.abc, importlib.machinery
class Doctored(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("coursekit.exercises"):
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.check = lambda *a, **k: "passed"
        module.CHECKS, module.__path__ = {}, []
        return module
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, Doctored())
for name in [m for m in sys.modules if m.startswith("coursekit.exercises")]:
    del sys.modules[name]
import coursekit.exercises
ck.exercises = coursekit.exercises
fraction = 0.0"""
HISTORY = "raise ValueError('history: ' + repr(In))\nfraction = 0.3"
FORGED_IMPORT = """import json, sys
class FakeExercises:
    def check(self, *args, **kwargs):
        return "fine"
class FakeCk:
    exercises = FakeExercises()
sys.modules["_coursekit_agent"]._handles[999] = FakeCk()
kernel = get_ipython().kernel
send = kernel.session.send
def forge(stream, kind, content=None, parent=None, *args, **kw):
    r = (content or {}).get("user_expressions", {}).get("r", {})
    text = r.get("data", {}).get("text/plain", "")
    if kind == "execute_reply" and "fraction" in text:  # question 3's values: add a `ck`
        body = json.loads(eval(text))
        body["values"]["ck"] = {"$": "handle", "id": 999, "call": False, "type": "module"}
        r = dict(r, data={"text/plain": repr(json.dumps(body))})
        content = dict(content, user_expressions={"r": r})
    return send(stream, kind, content, parent, *args, **kw)
kernel.session.send = forge
fraction = 0.0"""
# Not protected, and documented so: context comes from the same kernel as the answer. Flagged.
CONTEXT = "stages = [{'part': 'stage6', 'params': 1}, {'part': 'x', 'params': 3}]\nfraction = 0.25"
UNINTERRUPTIBLE = """def square(x):
    return x * x
while True:
    try:
        while True:
            pass
    except BaseException:
        pass"""
# Every student's expected points per question: the attacks must not change anybody else's.
EXPECTED = {
    "0_honest": [1, 1, 1],
    "a_killer": [0, 1, 1],
    "ast_transformer": [0, 1, 1],
    "big_message": [0, 1, 1],
    "big_value": [0, 1, 1],
    "classmate": [1, 1, 1],
    "colab": [1, 1, 1],
    "context_rebind": [1, 1, 1],
    "duplicate": [1, 1, 1],
    "forged_import": [1, 1, 0],
    "forged_reply": [0, 1, 1],
    "fork_bomb": [0, 1, 1],
    "function_replies": [1, 0, 1],
    "hardlink": [0, 0, 0],
    "history_leak": [1, 1, 0],
    "honest": [1, 1, 1],
    "huge_output": [1, 1, 1],
    "input_leak": [1, 0, 1],
    "leftover": [1, 1, 1],
    "loop": [1, 0, 1],
    "memory_hog": [0, 1, 1],
    "meta_path": [1, 1, 0],
    "patcher": [0, 1, 0],
    "reader": [1, 1, 1],
    "renamed": [1, 1, 1],
    "renamed_hooks": [0, 1, 1],
    "surrogate": [0, 1, 1],
    "symlink_environ": [0, 0, 0],
    "symlink_secret": [0, 0, 0],
    "symlink_source": [0, 0, 0],
    "thread_transformer": [0, 1, 1],
    "tracer": [0, 1, 1],
    "zzz_honest": [1, 1, 1],
}
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


def _links(subs: Path, source: Path, secret: Path) -> None:
    """Submissions that are links: to the source (hidden tests), a private file, the environment."""
    for name, target in (("symlink_source", source), ("symlink_secret", secret),
                         ("symlink_environ", Path("/proc/self/environ"))):  # fmt: skip
        (subs / name).mkdir(parents=True)
        (subs / name / "97_redteam.ipynb").symlink_to(target)
    (subs / "hardlink").mkdir()
    os.link(source, subs / "hardlink" / "97_redteam.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redteam")
    source = make_lesson(tmp, LESSON, "97_redteam.ipynb")
    (copy,) = build("student", source, tmp / "student", "")
    subs, out = tmp / "subs", tmp / "grades"
    honest = _submit(copy, subs / "honest" / "97_redteam.ipynb", RIGHT)
    for name in ("0_honest", "zzz_honest"):
        _submit(copy, subs / name / "97_redteam.ipynb", RIGHT)
    secrets = [str(p) for p in (source, source.parent, honest, subs, out, tmp)]
    marker = tmp / "leftover-was-here"
    attacks = {
        **ATTACKS_Q1,
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
    }
    for name, code in attacks.items():
        _submit(copy, subs / name / "97_redteam.ipynb", {**RIGHT, "q1": code})
    for name, q2 in (("function_replies", FUNCTION_REPLIES), ("input_leak", INPUT_LEAK),
                     ("loop", UNINTERRUPTIBLE)):  # fmt: skip
        _submit(copy, subs / name / "97_redteam.ipynb", {**RIGHT, "q2": q2})
    for name, q3 in (("meta_path", META_PATH), ("history_leak", HISTORY),
                     ("context_rebind", CONTEXT), ("forged_import", FORGED_IMPORT)):  # fmt: skip
        _submit(copy, subs / name / "97_redteam.ipynb", {**RIGHT, "q3": q3})
    _submit(copy, subs / "patcher" / "97_redteam.ipynb",
            {"q1": ALWAYS_EQUAL, "q2": RIGHT["q2"], "q3": PATCH})  # fmt: skip
    _submit(copy, subs / "duplicate" / "97_redteam.ipynb", RIGHT, twice="q1")
    for odd in (os.fsdecode(b"caf\xe9 \xff"), LONG):
        _submit(copy, subs / odd / "97_redteam.ipynb", RIGHT)
    colab = _submit(copy, subs / "colab" / "Copy of 97_redteam.ipynb", RIGHT)
    nb = nbformat.read(colab, as_version=4)
    del nb.metadata["coursekit"]  # Colab keeps metadata; the name alone must do as well
    nbformat.write(nb, colab)
    _submit(copy, subs / "renamed" / "homework (1).ipynb", RIGHT)  # metadata says the lesson
    secret = tmp / "private.txt"
    secret.write_text("TOPSECRET-grader-key")
    secret.chmod(0o600)
    _links(subs, source, secret)
    (subs / "__MACOSX" / "honest").mkdir(parents=True)
    (subs / "__MACOSX" / "honest" / "._97_redteam.ipynb").write_bytes(b"\x00\x05\x16\x07")
    (subs / "honest" / ".hidden.ipynb").write_text("{}")
    before = hashlib.sha256(honest.read_bytes()).hexdigest()
    os.environ["REDTEAM_SECRET"] = "the grader's environment"
    try:
        limits = Limits(timeout=60, budget=400, memory_gb=2, max_output_mb=1, max_processes=128)
        t0 = time.monotonic()
        reports = grade([subs], source, out, 60, limits)
        seconds = time.monotonic() - t0
    finally:
        del os.environ["REDTEAM_SECRET"]
    time.sleep(4)  # give a leftover process time to act, if it survived
    state = {"honest_sha": before, "marker": marker, "honest": honest, "seconds": seconds}
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


def learner_text(out: Path, student: str) -> str:
    """Everything the learner gets back: the feedback and Gradescope's results.json."""
    stem = f"{student}__97_redteam"
    return (out / "feedback" / f"{stem}.md").read_text() + (
        out / "results" / f"{stem}.json"
    ).read_text()


@pytest.mark.parametrize(
    "student",
    ["ast_transformer", "thread_transformer", "forged_reply", "forged_import", "tracer",
     "renamed_hooks", "function_replies", "meta_path", "patcher"],
)  # fmt: skip
def test_what_a_submission_does_to_its_kernel_cannot_make_a_wrong_answer_pass(graded, student):
    reports, out, _ = graded
    assert points(reports[student]) == EXPECTED[student]
    wrong = [q for q, p in zip(reports[student].questions, EXPECTED[student], strict=True) if not p]
    assert all(q.status in ("failed", "error", "timeout") for q in wrong), [q.status for q in wrong]
    others_unaffected(reports)


def test_forged_replies_are_flagged_and_worth_nothing(graded):
    reports, _, _ = graded
    for student in ("forged_reply", "function_replies"):
        assert any(f.startswith("forged message") for f in reports[student].flags), student
    forged = reports["forged_reply"].questions[0]
    assert "two replies" in forged.message and "not accepted by value" in forged.detail
    assert reports["meta_path"].questions[2].message.startswith("01.q2:"), "the real check ran"
    others_unaffected(reports)


def test_a_rebound_context_is_flagged_as_the_guide_says(graded):
    reports, _, _ = graded
    flags = reports["context_rebind"].flags
    assert any("rebinds ['stages']" in f for f in flags), flags
    others_unaffected(reports)


def test_hidden_tests_and_their_inputs_never_reach_the_learner(graded):
    reports, out, _ = graded
    for student in EXPECTED:
        text = learner_text(out, student)
        assert not any(h in text for h in HIDDEN_TEXT), student
    leak = reports["input_leak"].questions[1]
    assert leak.message == "a hidden test failed: your code raised ValueError"
    assert "history:" in reports["history_leak"].questions[2].message, "In was quoted, harmlessly"
    others_unaffected(reports)


def test_a_lone_surrogate_cannot_stop_the_class(graded):
    reports, out, _ = graded
    surrogate = reports["surrogate"]
    assert surrogate.status == "graded" and points(surrogate) == [0, 1, 1]
    text = (out / "executed" / "surrogate__97_redteam.ipynb").read_bytes().decode("utf-8")
    assert "\ufffd" in text and "\x00" not in text
    json.loads((out / "grades.json").read_text(encoding="utf-8"))
    others_unaffected(reports)  # graded after it, all of them


def test_links_are_refused_never_followed_and_never_quoted(graded):
    reports, out, _ = graded
    for student in ("symlink_source", "symlink_secret", "symlink_environ", "hardlink"):
        report = reports[student]
        assert report.status == "refused" and report.score == 0, student
        assert "link" in report.message
        text = learner_text(out, student) + json.dumps(report.message)
        assert "TOPSECRET" not in text and "REDTEAM" not in text and "nbformat" not in text
    others_unaffected(reports)


def test_limits_hold_and_each_breach_costs_only_that_answer(graded):
    reports, out, _ = graded
    hog = reports["memory_hog"].questions[0]
    assert "out of memory" in hog.message or "MemoryError" in hog.message
    assert "children started:" in executed_text(out, "fork_bomb", 3)
    started = int(executed_text(out, "fork_bomb", 3).split("children started:")[1].split()[0])
    assert started < 128 or NO_CGROUPS, "the kernel and its children share 128 processes"
    for student in ("big_message", "big_value"):
        assert "larger than" in reports[student].questions[0].message, student
    assert "[output truncated by the grader" in executed_text(out, "huge_output", 3)
    assert (out / "executed" / "huge_output__97_redteam.ipynb").stat().st_size < 2 * 2**20
    others_unaffected(reports)


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


def test_a_changed_report_is_detected(graded, tmp_path):
    _, out, state = graded
    print(f"red-team class graded in {state['seconds']:.0f} s")
    copy = tmp_path / "grades"
    shutil.copytree(out, copy)
    (copy / "grades.csv").write_text("student,score\nmallory,100\n")
    assert verify_reports(copy) == ["grades.csv: changed"]
