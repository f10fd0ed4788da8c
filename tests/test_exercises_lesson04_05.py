"""Decision exercises of lesson 05: the run's noise decides; the choice is checked (lesson 04's
are in test_exercises_lesson04.py)."""

from __future__ import annotations

import pytest

from coursekit.exercises import Wrong, check


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


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
