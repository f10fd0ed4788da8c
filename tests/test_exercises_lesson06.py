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


def test_q1_ship_the_cheapest_within_the_noise():
    # LP-FT 0.842 is best; LoRA (0.830, SE from n_test=400) and head + 2 blocks (0.800: gap 0.042
    # <= 2 * hypot(0.018, 0.020) = 0.054) tie with it; the probe (gap 0.067 > 0.055) does not.
    assert "74,498 trainable" in check("06.q1", "LoRA r=8", rows=ROWS)
    assert "cannot tell it from cheaper" in feedback("06.q1", "LP-FT", rows=ROWS)
    assert "more than two standard errors" in feedback("06.q1", "linear probe", rows=ROWS)
    assert "trains fewer" in feedback("06.q1", "head + last 2 blocks", rows=ROWS)
    assert "not a strategy" in feedback("06.q1", "probe", rows=ROWS)
    assert "is a int" in feedback("06.q1", 3, rows=ROWS)
    alone = [dict(r, accuracy_se=0.001) for r in ROWS if "n_test" not in r]
    assert "most accurate, and no strategy" in check("06.q1", "LP-FT", rows=alone)


def solution_drift(before, after):
    def sims(x):
        x = torch.nn.functional.normalize(x.double(), dim=1)
        return (x @ x.T)[~torch.eye(len(x), dtype=torch.bool)]

    return 1 - torch.corrcoef(torch.stack([sims(before), sims(after)]))[0, 1].item()


def test_q2_drift_by_hand():
    g = torch.Generator().manual_seed(0)
    before = torch.randn(12, 8, generator=g)
    after = before + 0.5 * torch.randn(12, 8, generator=g)
    assert "drift" in check("06.q2", solution_drift, before=before, after=after)

    def correlation(b, a):
        return 1 - solution_drift(b, a)

    assert "looks like the correlation" in feedback(
        "06.q2", correlation, before=before, after=after
    )

    def with_diagonal(b, a):
        sims = [torch.nn.functional.normalize(x.double(), dim=1) for x in (b, a)]
        flat = [(x @ x.T).flatten() for x in sims]
        return 1 - torch.corrcoef(torch.stack(flat))[0, 1].item()

    assert "leave out the diagonal" in feedback("06.q2", with_diagonal, before=before, after=after)
    assert "not a function" in feedback("06.q2", 0.3, before=before, after=after)


def test_q3_optimizer_state():
    right = {r["strategy"]: 8 * r["trainable"] for r in ROWS}
    assert "all 4 predictions match" in check("06.q3", right, rows=ROWS)
    one_moment = {r["strategy"]: 4 * r["trainable"] for r in ROWS}
    assert "two moments" in feedback("06.q3", one_moment, rows=ROWS)
    everything = {r["strategy"]: 8 * r["total"] for r in ROWS}
    assert "frozen ones too" in feedback("06.q3", everything, rows=ROWS)
    assert "no prediction for" in feedback("06.q3", {"LP-FT": 1}, rows=ROWS)


def test_q2_nonzero_self_drift():
    before = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    assert "should be 0" in feedback("06.q2", lambda b, a: 0.5, before=before, after=before + 1)
