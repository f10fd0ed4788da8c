"""Self-checks for the exercises: specific feedback on what is off, a hint, never the answer.

Each lesson's checks live in `lessonNN.py`, registered by question id with `@question("02.q1")`.
A check receives the learner's answer (plus any context the notebook passes by keyword), raises
`Wrong(what, hint)` when something is off, and returns a short message when all is well.
Checks run in the learner's own kernel, so they work anywhere (Colab included) with no server.

How `check(qid, answer, ...)` answers, as a learner meets it in the learner's copy:

- **not answered yet**: the copy's stubs bind every answer to `...` (Ellipsis), and a function
  answer keeps its `def` line with the body `...`. An answer that is (or holds) `...` or None, or
  a function that returns `...` or None, prints "… 01.q1: not answered yet." and the question's
  hint, and returns: no exception, so *Run All* reaches the end of the notebook.
- **wrong**: raises `Wrong`, shown as "✗ Not yet. ..." with a hint; never the expected value.
- **right**: prints "✓ 01.q1: ...".

Predict-first exercises (`predict=True`) only validate the prediction's form and record it;
after the experiment, `compare_prediction(qid, actual)` sets the prediction against the result
(or says that none was made). Graders set `COURSEKIT_CHECKS=strict`: an unanswered question
then raises `NotAnswered` (a `Wrong`), so it can never pass a grader's check cell.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKS",
    "Feedback",
    "NOT_ANSWERED",
    "NotAnswered",
    "Question",
    "Wrong",
    "check",
    "close",
    "compare_prediction",
    "expect_decision",
    "expect_number",
    "expect_type",
    "prediction",
    "question",
    "unanswered",
]

NOT_ANSWERED = "not answered yet"
DEFAULT_HINT = (
    "write your answer in the cell above (replace each `...`), run it, then run this check again."
)


@dataclass
class Question:
    """A registered self-check: the function, its hint for an unanswered question, and whether
    None is a valid answer (e.g. "no rank qualifies") or the question asks for a prediction."""

    fn: Callable[..., str]
    hint: str = DEFAULT_HINT
    none_is_answer: bool = False
    predict: bool = False


CHECKS: dict[str, Question] = {}
PREDICTIONS: dict[str, Any] = {}  # qid -> the learner's recorded prediction (this kernel)


class Wrong(AssertionError):
    """A self-check failed: `what` says what is off, `hint` points the way without the answer."""

    def __init__(self, what: str, hint: str = "", qid: str = "") -> None:
        self.what, self.hint, self.qid = what, hint, qid
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.qid}: " if self.qid else ""
        return head + self.what + (f"\nHint: {self.hint}" if self.hint else "")

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the learner sees the feedback, not our code.
        red, reset = "\x1b[31m", "\x1b[0m"
        return [f"{red}✗ Not yet. {self}{reset}"]


class NotAnswered(Wrong):
    """The answer is still the stub's `...` (raised only under COURSEKIT_CHECKS=strict)."""


class Feedback(str):
    """What `check` printed, returned for tests and scripts; a notebook does not echo it, since
    the check cell already shows the printed line."""

    def _ipython_display_(self) -> None:
        pass


class _StubCalled(Exception):
    """A learner's function returned `...` or None: its body is still the stub."""


def question(
    qid: str, hint: str = DEFAULT_HINT, *, none_is_answer: bool = False, predict: bool = False
) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register a check function under a question id such as "02.q1".

    hint: what an unanswered learner should do first (never the answer).
    none_is_answer: None is a valid answer here, so only `...` means "not answered".
    predict: a predict-first question; a passing answer is recorded for `compare_prediction`.
    """

    def register(fn: Callable[..., str]) -> Callable[..., str]:
        CHECKS[qid] = Question(fn, hint, none_is_answer, predict)
        return fn

    return register


def _lookup(qid: str) -> Question:
    lesson = qid.split(".")[0]
    if qid not in CHECKS and lesson.isdigit():
        try:
            importlib.import_module(f"{__package__}.lesson{lesson}")
        except ModuleNotFoundError:
            pass
    if qid not in CHECKS:
        known = ", ".join(sorted(CHECKS)) or "none loaded"
        raise KeyError(f"no self-check called {qid!r}; known: {known}")
    return CHECKS[qid]


def unanswered(answer: Any, none_is_answer: bool = False, _depth: int = 0) -> bool:
    """True when `answer` is the stub's `...` (or None), or a tuple, list or dict holding one."""
    if answer is Ellipsis or (answer is None and not none_is_answer):
        return True
    if _depth < 2 and isinstance(answer, tuple | list):
        return any(unanswered(a, none_is_answer, _depth + 1) for a in answer)
    if _depth < 2 and isinstance(answer, dict):
        return any(unanswered(a, none_is_answer, _depth + 1) for a in answer.values())
    return False


def _guard(fn: Callable[..., Any], none_is_answer: bool) -> Callable[..., Any]:
    """`fn` as the check calls it: a call that returns the stub's `...` (or None) means the
    learner has not written the body yet."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        if out is Ellipsis or (out is None and not none_is_answer):
            raise _StubCalled
        return out

    return call


def _not_answered(qid: str, hint: str) -> None:
    if os.environ.get("COURSEKIT_CHECKS", "").lower() == "strict":
        raise NotAnswered(NOT_ANSWERED + ".", hint, qid)
    print(f"… {qid}: {NOT_ANSWERED}. {hint}")
    print(f'   Stuck? ck.exercises.solution("{qid}") prints a worked solution.')


def check(qid: str, answer: Any = None, **context: Any) -> str | None:
    """Check the answer to exercise `qid`: print "✓ ...", raise `Wrong` with feedback, or, when
    the answer is still the stub's `...`, print "not answered yet" and its hint (see module text).

    `context` passes what the check needs from the notebook (the model, the data ...), so the
    check recomputes what it compares against instead of storing the answer.
    """
    q = _lookup(qid)
    if unanswered(answer, q.none_is_answer):
        _not_answered(qid, q.hint)
        return None
    if callable(answer) and not isinstance(answer, type):
        answer = _guard(answer, q.none_is_answer)
    try:
        message = q.fn(answer, **context)
    except _StubCalled:
        _not_answered(qid, q.hint + " (A function that returns nothing counts as unanswered: "
                      "did you forget `return`?)")  # fmt: skip
        return None
    except Wrong as err:
        err.qid = qid
        raise
    except Exception as err:  # a malformed answer must give feedback, not a trace into our code
        raise Wrong(
            f"your answer could not be checked ({type(err).__name__}: {err}).",
            "check the type and shape the exercise asks for.",
            qid,
        ) from None
    if q.predict:
        PREDICTIONS[qid] = answer
    print(f"✓ {qid}: {message}")
    return Feedback(message)


def prediction(qid: str) -> Any:
    """The prediction recorded for `qid` in this kernel, or None if none was checked."""
    return PREDICTIONS.get(qid)


def compare_prediction(
    qid: str, actual: Any, *, describe: Callable[[Any], str] = repr, tolerance: float = 0.0
) -> None:
    """Set the learner's recorded prediction for `qid` against what the run measured.

    Prints one line: what was predicted and what the run shows (numbers agree within
    `tolerance`), or that no prediction was made. Returns None: the cell shows only
    that line.
    """
    if qid not in PREDICTIONS:
        print(
            f"… {qid}: you did not predict. This run shows {describe(actual)}. "
            f"Next time, commit to a prediction before the experiment: it is how intuition grows."
        )
        return
    said = PREDICTIONS[qid]
    if isinstance(said, int | float) and isinstance(actual, int | float):
        right = abs(float(said) - float(actual)) <= tolerance
    else:
        right = said == actual
    verdict = "as you predicted." if right else "not what you predicted: worth a second look."
    print(f"{qid}: you predicted {describe(said)}; this run shows {describe(actual)}, {verdict}")


# --- small helpers the lesson checks share ---------------------------------------------------


def expect_type(value: Any, types: type | tuple[type, ...], name: str, hint: str = "") -> None:
    """Raise `Wrong` unless `value` is an instance of `types`."""
    if value is None:
        raise Wrong(f"`{name}` is None.", "did the cell assign it (and not just print it)?")
    if not isinstance(value, types):
        wanted = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise Wrong(f"`{name}` is a {type(value).__name__}, expected a {wanted}.", hint)


def expect_number(value: Any, name: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """`value` as a float, checked to be a finite number in [lo, hi]."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    expect_type(
        value, (int, float), name, "use .item() to turn a one-element tensor into a number."
    )
    value = float(value)
    if not math.isfinite(value):
        raise Wrong(f"`{name}` is {value}.", "look for a division by zero or a log of zero.")
    if not lo <= value <= hi:
        raise Wrong(f"`{name}` = {value:.4g} is outside the possible range [{lo:g}, {hi:g}].")
    return value


def close(a: float, b: float, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    """True when two numbers agree to a relative (or, near zero, absolute) tolerance."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def expect_decision(answer: Any, name: str, choices: tuple[str, ...], example: str) -> str:
    """A "decide" exercise's `(choice, why)`: `choice` one of `choices`, `why` one sentence that
    quotes the run's numbers (at least six words and a digit). Returns the choice."""
    expect_type(answer, tuple, f"({name}, why)")
    if len(answer) != 2:
        raise Wrong(f"expected two values, `({name}, why)`, got {len(answer)}.")
    choice, why = answer
    expect_type(choice, str, name, f"one of {choices}")
    expect_type(why, str, "why", "one sentence")
    if choice not in choices:
        raise Wrong(f"{choice!r} is not one of the choices.", f"use one of {choices}.")
    if len(why.split()) < 6 or not any(ch.isdigit() for ch in why):
        raise Wrong("`why` should be a sentence that quotes this run's numbers.", example)
    return choice
