"""Self-checks for the exercises: specific feedback on what is off, a hint, never the answer.

Each lesson's checks live in `lessonNN.py`, registered by question id with `@question("02.q1")`.
A check receives the learner's answer (plus any context the notebook passes by keyword), raises
`Wrong(what, hint)` when something is off, and returns a short message when all is well.
Checks run in the learner's own kernel, so they work anywhere (Colab included) with no server.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

__all__ = ["CHECKS", "Wrong", "check", "close", "expect_number", "expect_type", "question"]

CHECKS: dict[str, Callable[..., str]] = {}


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


def question(qid: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register a check function under a question id such as "02.q1"."""

    def register(fn: Callable[..., str]) -> Callable[..., str]:
        CHECKS[qid] = fn
        return fn

    return register


def _lookup(qid: str) -> Callable[..., str]:
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


def check(qid: str, answer: Any = None, **context: Any) -> str:
    """Check the answer to exercise `qid`; print "✓ ..." or raise `Wrong` with feedback.

    `context` passes what the check needs from the notebook (the model, the data ...), so the
    check recomputes what it compares against instead of storing the answer.
    """
    fn = _lookup(qid)
    try:
        message = fn(answer, **context)
    except Wrong as err:
        err.qid = qid
        raise
    except Exception as err:  # a malformed answer must give feedback, not a trace into our code
        raise Wrong(
            f"your answer could not be checked ({type(err).__name__}: {err}).",
            "check the type and shape the exercise asks for.",
            qid,
        ) from None
    print(f"✓ {qid}: {message}")
    return message


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
