"""Worked solutions on request: `ck.exercises.solution("04.q1")` prints one.

The texts are package data (`solutions.json`, shipped in the wheel and in a git install),
generated from the instructor sources by the same build that writes the learners' copies
(`make notebooks`, i.e. `coursekit build student notebooks/source --out notebooks
--solutions-data coursekit/exercises/solutions.json`); a test fails when it is stale. They hold
each exercise's answer cell as the solutions copy has it, never the instructor's hidden tests.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

__all__ = ["SOLUTIONS_FILE", "solution", "solution_text"]

SOLUTIONS_FILE = "solutions.json"


@cache
def _solutions() -> dict[str, dict[str, str]]:
    path = resources.files(__package__) / SOLUTIONS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["questions"]


def solution_text(qid: str) -> str:
    """The worked solution of exercise `qid` ("04.q1"), as code."""
    found = _solutions()
    if qid not in found:
        known = ", ".join(sorted(found)) or "none: run `make notebooks` to generate them"
        raise KeyError(f"no worked solution for {qid!r}; known: {known}")
    return found[qid]["code"]


def solution(qid: str) -> None:
    """Print the worked solution of exercise `qid`: try the exercise first."""
    found = _solutions()
    text = solution_text(qid)
    print(f"# Worked solution of exercise {qid} ({found[qid]['notebook']}):\n")
    print(text)
