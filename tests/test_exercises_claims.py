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


def rows_02():
    def row(method, shots, acc):
        return {"method": method, "shots": shots, "accuracy": acc, "accuracy_se": 0.03}

    return [row("pre", 5, 0.7), row("scratch", 5, 0.2), row("pre", 100, 0.8),
            row("scratch", 100, 0.76)]  # fmt: skip


def test_lesson02_decided_shots_only_where_the_gap_beats_the_noise(capsys):
    check("02.q4", [5], rows=rows_02(), pre="pre", scratch="scratch")
    assert "at [100] this run cannot tell them apart" in capsys.readouterr().out
    msg = feedback("02.q4", [5, 100], rows=rows_02(), pre="pre", scratch="scratch")
    assert "should not be there [100]" in msg and "2 * sqrt" in msg
    assert "not numbers" in feedback("02.q4", [7], rows=rows_02(), pre="pre", scratch="scratch")


def rows_03(mean_acc):
    return [
        {"max_length": 128, "pooling": "cls", "val_accuracy": 0.70, "std. error": 0.04},
        {"max_length": 128, "pooling": "mean", "val_accuracy": mean_acc, "std. error": 0.04},
    ]


def test_lesson03_pooling_verdict_follows_the_noise():
    reason = "mean 0.74 vs cls 0.70 within the 0.113 margin, ship mean pooling"
    check("03.q4", ("tie", reason), rows=rows_03(0.74), max_length=128)
    check("03.q4", ("mean", reason), rows=rows_03(0.90), max_length=128)
    assert "say 'tie'" in feedback("03.q4", ("mean", reason), rows=rows_03(0.74), max_length=128)
    assert "quotes the run" in feedback("03.q4", ("tie", "mean is nicer I think"),
                                        rows=rows_03(0.74), max_length=128)  # fmt: skip
    assert "not a verdict" in feedback("03.q4", ("CLS", reason), rows=rows_03(0.74), max_length=128)
