"""What grading a submission produces: one `GradeReport` per submission, one `QuestionResult`
per question. The grader (`teach.grade`) fills them in; `teach.reports` writes them out as
grades.json, grades.csv and feedback files. Kept apart so neither of those imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GradeReport", "QuestionResult"]


@dataclass
class QuestionResult:
    """One question: passed, failed, error, timeout, unanswered, missing or not run."""

    qid: str
    points: float
    max_points: float
    status: str
    message: str = ""


@dataclass
class GradeReport:
    """One submission's grade, per question."""

    student: str
    notebook: str
    status: str  # graded | malformed | unknown lesson | kernel died | grader error
    score: float
    max_score: float
    questions: list[QuestionResult] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    flags: list[str] = field(default_factory=list)
