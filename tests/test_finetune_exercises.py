"""Lesson 07 self-checks: the solution passes; typical mistakes get specific feedback."""

from __future__ import annotations

import math

import pytest

from coursekit.claims import interval
from coursekit.exercises import Wrong, check
from coursekit.finetune import load_data


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def test_q1_wilson_interval_by_hand():
    assert "anywhere from" in check("07.q1", interval(67 / 90, 90), correct=67, n=90)
    p = 67 / 90
    half = 1.96 * math.sqrt(p * (1 - p) / 90)
    assert "Wald" in feedback("07.q1", (p - half, p + half), correct=67, n=90)
    assert "not Wilson's" in feedback("07.q1", (0.6, 0.8), correct=67, n=90)
    assert "low is above high" in feedback("07.q1", (0.8, 0.6), correct=67, n=90)
    assert "store (low, high)" in feedback("07.q1", (0.6,), correct=67, n=90)


def test_q3_own_data(tmp_path):
    from conftest import require_asset

    require_asset("tweets")
    from coursekit.finetune.examples import tweets_csv

    data = load_data(tweets_csv(tmp_path / "t.csv", per_class=10, binary=True))
    assert "20 text examples in 2 classes" in check("07.q3", data)
    assert "load_data" in feedback("07.q3", str(tmp_path / "t.csv"))
