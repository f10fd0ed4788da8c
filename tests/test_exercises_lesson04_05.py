"""Decision exercises of lesson 05: the run's noise decides; the choice is checked (lesson 04's
are in test_exercises_lesson04.py)."""

from __future__ import annotations

import pytest

from coursekit.exercises import Wrong, check


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def lora_rows(r4: float, r8: float) -> list[dict]:
    return [
        {"strategy": "head only", "test_accuracy": 0.60, "accuracy_se": 0.03},
        {"strategy": "LoRA r=4", "test_accuracy": r4, "accuracy_se": 0.02},
        {"strategy": "LoRA r=8", "test_accuracy": r8, "accuracy_se": 0.02},
        {"strategy": "full fine-tune", "test_accuracy": 0.90, "accuracy_se": 0.02},
    ]


def test_05_q4_ship_the_smallest_rank_within_the_noise():
    # margin 2 * hypot(0.02, 0.02) = 0.057 below full FT's 0.90
    rows = lora_rows(0.87, 0.88)
    assert "smallest such rank" in check("05.q4", 4, rows=rows)
    assert "smaller rank is also" in feedback("05.q4", 8, rows=rows)
    assert "within the noise" in feedback("05.q4", None, rows=rows)
    rows = lora_rows(0.80, 0.88)
    assert "beats r=4 by 0.100" in feedback("05.q4", 4, rows=rows)
    assert "smallest such rank" in check("05.q4", 8, rows=rows)
    assert "ahead of every rank" in check("05.q4", None, rows=lora_rows(0.70, 0.75))
    assert "not trained here" in feedback("05.q4", 16, rows=rows)
