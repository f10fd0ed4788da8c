"""Lesson 06 self-checks: the solution passes; typical mistakes get specific feedback."""

from __future__ import annotations

import pytest
import torch

from coursekit.exercises import Wrong, check

ROWS = [
    {"strategy": "linear probe", "accuracy": 0.775, "accuracy_se": 0.021, "trainable": 770,
     "total": 22_714_370, "optimizer_state_bytes": 6_160},
    {"strategy": "head + last 2 blocks", "accuracy": 0.800, "accuracy_se": 0.020,
     "trainable": 3_549_698, "total": 22_566_146, "optimizer_state_bytes": 28_397_584},
    {"strategy": "LoRA r=8", "accuracy": 0.830, "n_test": 400, "trainable": 74_498,
     "total": 22_640_644, "optimizer_state_bytes": 595_984},
    {"strategy": "LP-FT", "accuracy": 0.842, "accuracy_se": 0.018, "trainable": 22_566_146,
     "total": 22_566_146, "optimizer_state_bytes": 180_529_168},
]  # fmt: skip


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def sweep(gaps: dict[str, list[float]], n: int = 400) -> list[dict]:
    """Sweep rows over 3 seeds: each strategy gets `gap` fewer of `n` test tweets right than
    "LP-FT" (the best) in each seed; trainable counts from ROWS."""
    import numpy as np

    trainable = {r["strategy"]: r["trainable"] for r in ROWS}
    rows = []
    for seed in range(3):
        base = np.zeros(n)
        base[: int(0.85 * n)] = 1
        for name in ("LP-FT", *gaps):
            correct = base.copy()
            if name != "LP-FT":
                correct[: round(gaps[name][seed] * n)] = 0
            rows.append({"strategy": name, "seed": seed, "correct": correct,
                         "accuracy": correct.mean(), "trainable": trainable[name]})  # fmt: skip
    return rows


def test_q1_the_prediction_is_one_of_three_words():
    assert "prediction recorded" in check("06.q1", "LP-FT")
    assert "not one of" in feedback("06.q1", "LoRA")
    assert "is a int" in feedback("06.q1", 1)


def test_q2_any_strategy_the_run_cannot_separate_from_the_best_may_ship():
    rows = sweep({"LoRA r=8": [0.0, 0.01, -0.01], "linear probe": [0.06, 0.07, 0.08],
                  "head + last 2 blocks": [0.01, 0.02, 0.0]})  # fmt: skip
    assert "74,498 trainable" in check("06.q2", "LoRA r=8", rows=rows)
    message = check("06.q2", "LP-FT", rows=rows)  # the best: fine, with a cheaper tie named
    assert "as accurate as this run can tell" in message and "LoRA r=8 ties too" in message
    assert "beyond the noise" in feedback("06.q2", "linear probe", rows=rows)
    assert "not a strategy" in feedback("06.q2", "probe", rows=rows)
    assert "is a int" in feedback("06.q2", 3, rows=rows)


def solution_drift(before, after):
    def sims(x):
        x = torch.nn.functional.normalize(x.double(), dim=1)
        return (x @ x.T)[~torch.eye(len(x), dtype=torch.bool)]

    return 1 - torch.corrcoef(torch.stack([sims(before), sims(after)]))[0, 1].item()


def test_q3_drift_by_hand():
    g = torch.Generator().manual_seed(0)
    before = torch.randn(12, 8, generator=g)
    after = before + 0.5 * torch.randn(12, 8, generator=g)
    assert "drift" in check("06.q3", solution_drift, before=before, after=after)

    def correlation(b, a):
        return 1 - solution_drift(b, a)

    assert "looks like the correlation" in feedback(
        "06.q3", correlation, before=before, after=after
    )

    def with_diagonal(b, a):
        sims = [torch.nn.functional.normalize(x.double(), dim=1) for x in (b, a)]
        flat = [(x @ x.T).flatten() for x in sims]
        return 1 - torch.corrcoef(torch.stack(flat))[0, 1].item()

    assert "leave out the diagonal" in feedback("06.q3", with_diagonal, before=before, after=after)
    assert "not a function" in feedback("06.q3", 0.3, before=before, after=after)


def test_q4_optimizer_state():
    right = {r["strategy"]: 8 * r["trainable"] for r in ROWS}
    assert "all 4 predictions match" in check("06.q4", right, rows=ROWS)
    one_moment = {r["strategy"]: 4 * r["trainable"] for r in ROWS}
    assert "two moments" in feedback("06.q4", one_moment, rows=ROWS)
    everything = {r["strategy"]: 8 * r["total"] for r in ROWS}
    assert "frozen ones too" in feedback("06.q4", everything, rows=ROWS)
    assert "no prediction for" in feedback("06.q4", {"LP-FT": 1}, rows=ROWS)


def test_q3_nonzero_self_drift():
    before = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    assert "should be 0" in feedback("06.q3", lambda b, a: 0.5, before=before, after=before + 1)
