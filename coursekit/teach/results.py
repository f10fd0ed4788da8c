"""What grading produces: one `GradeReport` per submission, one `QuestionResult` per question,
and the cleaning every string from a submission goes through before it is kept.

The grader (`teach.grade`) fills them in; `teach.reports` writes them out (grades.json, CSV,
feedback, Gradescope's results.json). A question's `message` is for the learner (it never holds
a hidden test); `detail` is for the instructor only (grades.json and the executed copy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GradeReport", "QuestionResult", "clean_output", "clean_text"]

# C0/C1 control characters (tab and newline kept), and lone surrogates (not valid in UTF-8)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: Any, keep_escapes: bool = False) -> str:
    """`text` as a string that any file, terminal or JSON parser takes: surrogates become
    U+FFFD, control characters go (`keep_escapes`: ANSI colour codes stay, for notebooks)."""
    if not isinstance(text, str):
        text = str(text)
    text = SURROGATE.sub("\ufffd", text).replace("\r\n", "\n")
    if keep_escapes:
        return CONTROL.sub(lambda m: m.group() if m.group() in "\x1b\r" else "", text)
    return CONTROL.sub("", text)


def clean_output(value: Any) -> Any:
    """A notebook output (or any JSON-like value) with every string cleaned, escapes kept."""
    if isinstance(value, str):
        return clean_text(value, keep_escapes=True)
    if isinstance(value, dict):
        out = type(value)() if type(value) is not dict else {}
        for k, v in value.items():
            out[clean_text(k)] = clean_output(v)
        return out
    if isinstance(value, list | tuple):
        return [clean_output(v) for v in value]
    return value


@dataclass
class QuestionResult:
    """One question: passed, failed, error, timeout, unanswered, missing or not run."""

    qid: str
    points: float
    max_points: float
    status: str
    message: str = ""  # for the learner
    detail: str = ""  # for the instructor: which hidden test failed, and how


@dataclass
class GradeReport:
    """One submission's grade, per question."""

    student: str
    notebook: str
    status: str  # graded | malformed | refused | unknown lesson | kernel died | grader error
    score: float
    max_score: float
    questions: list[QuestionResult] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    flags: list[str] = field(default_factory=list)
    peak_memory_mb: float | None = None
