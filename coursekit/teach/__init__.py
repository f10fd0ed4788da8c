"""Instructor tooling: one source notebook per lesson builds the student and solution copies,
and grades submissions: each runs in a sandboxed kernel, and a separate checking process judges
the values it hands over against the hidden tests (`grade`, docs/instructors.md). Nothing in the
rest of coursekit imports this."""

from .build import build, build_notebook
from .grade import Limits, grade, grade_submission
from .notebooks import Question, find_questions, lesson_of, read_notebook, tag_exercises
from .reports import verify_reports, write_reports
from .results import GradeReport, QuestionResult
from .sandbox import SandboxUnavailable

__all__ = [
    "GradeReport",
    "Limits",
    "Question",
    "QuestionResult",
    "SandboxUnavailable",
    "build",
    "build_notebook",
    "find_questions",
    "grade",
    "grade_submission",
    "lesson_of",
    "read_notebook",
    "tag_exercises",
    "verify_reports",
    "write_reports",
]
