"""Self-checks of the exercises that ask for a decision against the noise (issue 14)."""

from __future__ import annotations

import pytest

from coursekit.claims import interval
from coursekit.exercises import Wrong, check


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def test_lesson01_interval_and_decision(capsys):
    lo, hi = interval(0.62, 50)
    check("01.q5", ((lo, hi), True), accuracy=0.62, n=50, chance=0.2)
    assert "above chance beyond doubt" in capsys.readouterr().out
    assert "Wilson" in feedback("01.q5", ((0.5, 0.7), True), accuracy=0.62, n=50, chance=0.2)
    lo, hi = interval(0.3, 10)
    assert "low end" in feedback("01.q5", ((lo, hi), True), accuracy=0.3, n=10, chance=0.2)
    assert "surrounds" in feedback("01.q5", ((0.7, 0.8), True), accuracy=0.62, n=50, chance=0.2)


# Lessons 02 and 03's decide exercises are tested in test_exercises.py (decided from paired gaps).
