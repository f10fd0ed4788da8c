"""Decision exercises of lessons 04 and 05: the run's noise decides; the choice is checked."""

from __future__ import annotations

import pytest

from coursekit.exercises import Wrong, check


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def depth_rows(acc_deep: float) -> list[dict]:
    return [
        {"k": 0, "test_accuracy": 0.70, "accuracy_se": 0.02},
        {"k": 3, "test_accuracy": 0.69, "accuracy_se": 0.02},
        {"k": 8, "test_accuracy": acc_deep, "accuracy_se": 0.02},
    ]


@pytest.mark.parametrize(
    "acc_deep, shows", [(0.80, "deeper"), (0.60, "k=0"), (0.74, "tie"), (0.66, "tie")]
)
def test_04_q4_the_verdict_follows_two_standard_errors(acc_deep, shows):
    # margin = 2 * hypot(0.02, 0.02) = 0.057: a 0.04 gap is a tie, a 0.10 gap decides
    rows = depth_rows(acc_deep)
    assert "as you predicted" in check("04.q4", shows, prediction=shows, rows=rows, deep=8)
    other = next(v for v in ("deeper", "k=0", "tie") if v != shows)
    assert "you predicted" in check("04.q4", shows, prediction=other, rows=rows, deep=8)
    assert "not what this run shows" in feedback(
        "04.q4", other, prediction=shows, rows=rows, deep=8
    )


def test_04_q4_rejects_other_words():
    assert "use one of" in feedback("04.q4", "yes", prediction="tie", rows=depth_rows(0.7), deep=8)
    assert "my_prediction" in feedback(
        "04.q4", "tie", prediction="maybe", rows=depth_rows(0.7), deep=8
    )


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
