"""Exercise self-checks: `coursekit.exercises.check("02.q1", answer, ...)` in any notebook."""

from .core import CHECKS, Wrong, check, question

__all__ = ["CHECKS", "Wrong", "check", "question"]
