"""Instructor tooling: one source notebook per lesson builds the student and solution copies,
and grades submissions against hidden tests. Nothing in the rest of coursekit imports this."""

from .build import build, build_notebook
from .grade import GradeReport, QuestionResult, grade, grade_submission
from .notebooks import Question, find_questions, lesson_of, read_notebook, tag_exercises

__all__ = [
    "GradeReport",
    "Question",
    "QuestionResult",
    "build",
    "build_notebook",
    "find_questions",
    "grade",
    "grade_submission",
    "lesson_of",
    "read_notebook",
    "tag_exercises",
]
