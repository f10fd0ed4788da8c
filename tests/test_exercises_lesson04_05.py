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


def lora_runs(gaps: list[float], n: int = 400) -> list[dict]:
    """Rows of a 3-seed sweep where full fine-tuning gets `gap` more test examples right than
    LoRA r=8 in each seed (the rest of the answers identical)."""
    import numpy as np

    rows = []
    for seed, gap in enumerate(gaps):
        lora = np.zeros(n)
        lora[: n // 2] = 1
        full = lora.copy()
        full[n // 2 : n // 2 + round(gap * n)] = 1
        for name, correct in (("LoRA r=8", lora), ("full fine-tune", full)):
            rows.append({"strategy": name, "seed": seed, "correct": correct})
    return rows


def test_05_q5_the_paired_runs_decide_whether_full_fine_tuning_is_ahead():
    ahead = lora_runs([0.05, 0.06, 0.07])  # every seed: 20-28 more tweets right of 400
    assert "beyond two standard errors" in check("05.q5", True, rows=ahead)
    assert "not what these runs show" in feedback("05.q5", False, rows=ahead)
    tied = lora_runs([0.05, -0.04, 0.0])  # the seeds disagree: inside the noise
    assert "cannot tell them apart" in check("05.q5", False, rows=tied)
    assert "not what these runs show" in feedback("05.q5", True, rows=tied)
    assert "True or False" in feedback("05.q5", "yes", rows=tied)
