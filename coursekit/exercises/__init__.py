"""Exercise self-checks and worked solutions, in any notebook (Colab included).

- `check("02.q1", answer, ...)`: feedback on an answer (see `core` for "not answered yet").
- `solution("02.q1")`: prints the worked solution, from `solutions.json`, package data that
  `make notebooks` generates from the instructor sources in `notebooks/source/`.
- `compare_prediction("00.q1", actual)`: a predict-first exercise, set against the run.
"""

from .core import (
    CHECKS,
    NOT_ANSWERED,
    NotAnswered,
    Wrong,
    check,
    compare_prediction,
    prediction,
    question,
    unanswered,
)
from .solutions import SOLUTIONS_FILE, solution, solution_text

__all__ = [
    "CHECKS",
    "NOT_ANSWERED",
    "SOLUTIONS_FILE",
    "NotAnswered",
    "Wrong",
    "check",
    "compare_prediction",
    "prediction",
    "question",
    "solution",
    "solution_text",
    "unanswered",
]
