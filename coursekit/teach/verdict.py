"""From a finished run to each question's score: the two checking phases and what they mean.

The checking process first runs the visible part of every check (the self-check a learner runs
in the notebook), then the hidden tests of every question whose visible part passed. Hidden
inputs thus reach the student's code only after everything that can be quoted back to the
learner has run, and a hidden test that fails says only that it failed (which line, and how,
go to the instructor's `detail`). A question passes when both parts end without an exception.

Around that, the run itself decides: a missing answer cell is `missing`, an answer cell still
holding the student copy's stub (or answers that are still `...`) is `unanswered`, an answer
cell that raised or ran out of time gives its error, and a check whose values never came
(the kernel died first) is `not run`. Used by `teach.grade`.
"""

from __future__ import annotations

import builtins
import time
from typing import Any

from .checking import CheckingProcess, PartResult
from .kernel import Kernel
from .plan import LessonPlan, bound_names
from .results import QuestionResult, clean_text
from .run import RunResult

__all__ = ["judge", "score", "unanswered_stub"]

EXCEPTIONS = {
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
}


def _normal(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


def unanswered_stub(submitted: str, stub: str) -> bool:
    """Whether an answer cell is still the student copy's stub (whitespace aside)."""
    return _normal(submitted) == _normal(stub)


def _all_ellipsis(values: tuple[dict, dict] | None, names: list[str]) -> bool:
    if values is None or not names:
        return False
    got = values[0].get("values", {})
    return all(isinstance(got.get(n), dict) and got[n].get("$") == "ellipsis" for n in names)


def _phase(checker, plan, run, kernel, part, todo, timeout, deadline) -> dict:  # noqa: ANN001
    results: dict[str, PartResult] = {}
    for check in todo:
        qid = check.question.qid
        left = deadline - time.monotonic()
        if left <= 0:
            results[qid] = PartResult("timeout", "the submission used up its time limit")
            continue
        code = check.visible if part == "visible" else check.hidden
        if part == "hidden" and qid not in checker.holds:
            code = check.visible + "\n" + check.hidden  # a restarted checker: run it all again
        assigned = bound_names(check.visible) if part == "visible" else []
        results[qid] = checker.run(
            qid, part, code, run.values.get(qid), assigned, kernel, timeout, check.names, deadline
        )
    return results


def judge(
    plan: LessonPlan,
    run: RunResult,
    checker: CheckingProcess,
    kernel: Kernel,
    timeout: float,
    deadline: float,
) -> tuple[dict[str, PartResult], dict[str, PartResult]]:
    """Both phases: every visible part, then the hidden tests where the visible part passed."""
    ready = [c for c in plan.checks if c.question.qid in run.values]
    visible = _phase(checker, plan, run, kernel, "visible", ready, timeout, deadline)
    passed = [c for c in ready if visible[c.question.qid].status == "ok" and c.hidden.strip()]
    hidden = _phase(checker, plan, run, kernel, "hidden", passed, timeout, deadline)
    return visible, hidden


def _exception_name(name: str) -> str:
    return name if name in EXCEPTIONS else "an exception of its own"


def _from_parts(vis: PartResult | None, hid: PartResult | None) -> tuple[str, str, str]:
    """(status, message for the learner, detail for the instructor)."""
    if vis is None:
        return "not run", "", ""
    if vis.status != "ok":
        message = vis.message
        if vis.remote:
            message = f"your code raised {vis.message}"
        return vis.status, message, vis.detail
    if hid is None or hid.status == "ok":
        return "passed", "", ""
    message = "a hidden test failed"
    if hid.remote:
        message += f": your code raised {_exception_name(hid.remote)}"
    elif hid.status == "timeout":
        message += ": it ran out of time"
    where = f"hidden test line {hid.line}: " if hid.line else ""
    return "failed", message, f"{where}{hid.message}\n{hid.detail}".strip()


def score(
    plan: LessonPlan,
    answers: dict[str, Any],
    run: RunResult,
    parts: tuple[dict[str, PartResult], dict[str, PartResult]],
    forged: set[str] = frozenset(),
) -> list[QuestionResult]:
    """Each question's result from the submission's answers, the run and the two phases;
    a question whose values or calls got a second reply (`forged`) is an error."""
    out = []
    for check in plan.checks:
        q = check.question
        vis, hid = parts[0].get(q.qid), parts[1].get(q.qid)
        status, message, detail = _from_parts(vis, hid)
        answer = run.cells.get(q.answer_cell)
        if status == "not run" and q.qid in run.value_errors:
            status, message = "error", run.value_errors[q.qid]
        elif status == "not run":
            message = run.stopped or "the kernel stopped before this check"
        if (
            answer is not None
            and answer.status in ("error", "timeout", "dead")
            and status != "passed"
        ):
            status = "error" if answer.status == "dead" else answer.status
            message = f"your answer cell: {answer.message}"
        if status != "passed" and _all_ellipsis(run.values.get(q.qid), check.answer_names):
            status, message = "unanswered", "the answer is still `...`"
        cell = answers.get(q.grade_id)
        if (
            cell is not None
            and status != "passed"
            and unanswered_stub(str(cell.source), check.stub)
        ):
            status, message = "unanswered", "the exercise's stub is still in place"
        if (
            status != "passed"
            and answer is not None
            and "NotImplementedError: Exercise" in (answer.message)
        ):
            status, message = "unanswered", "the exercise's stub is still in place"
        if cell is None and status != "passed":
            status, message = "missing", "no answer cell for this question in the submission"
        if q.qid in forged:
            status, detail = "error", f"{message}\n{detail}".strip()
            message = "the kernel sent two replies to one request of the grader (forged messages)"
        passed = status == "passed"
        out.append(
            QuestionResult(
                q.qid,
                q.points if passed else 0.0,
                q.points,
                status,
                clean_text(message)[:2000],
                clean_text(detail)[:4000],
            )  # fmt: skip
        )
    return out
