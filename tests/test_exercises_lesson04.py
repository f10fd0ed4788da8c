"""Lesson 04's self-checks: predict (recorded, then compared), decide (the run's noise decides),
count, freeze by name, catch the BatchNorm trap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coursekit.exercises import Wrong, check, compare_prediction, prediction
from coursekit.freezing import Recipe, RecipeRun
from coursekit.training.history import History


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def runs(*per_seed_correct: list[int]) -> list[RecipeRun]:
    """Recipe runs whose only content is their per-example test results, one list per seed."""
    return [
        RecipeRun(
            Recipe(),
            seed,
            History(),
            torch.tensor(c, dtype=torch.float32),
            0,
            0.0,
            0,
            True,
            0.0,
            [],
            False,
            10,
        )  # fmt: skip
        for seed, c in enumerate(per_seed_correct)
    ]


def test_04_q1_records_a_well_formed_prediction_and_compares_it(capsys):
    said = {"after 1 epoch": "head alone", "after all epochs": "last block"}
    check("04.q1", said)
    assert prediction("04.q1") == said
    capsys.readouterr()
    compare_prediction("04.q1", dict(said))
    right = capsys.readouterr().out
    compare_prediction("04.q1", {**said, "after all epochs": "tie"})
    wrong = capsys.readouterr().out
    assert "you predicted" in right and "you predicted" in wrong and right != wrong


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("last block", "a dict"),
        ({"after 1 epoch": "tie"}, "after all epochs"),
        ({"after 1 epoch": "tie", "after all epochs": "deeper"}, "use one of"),
    ],
)
def test_04_q1_rejects_malformed_predictions(answer, expected):
    assert expected in feedback("04.q1", answer)


def test_04_q1_unanswered_says_not_yet(capsys):
    assert check("04.q1", ...) is None
    assert "04.q1: not answered yet" in capsys.readouterr().out


N = 200
SAME = [1] * 150 + [0] * 50


def shifted(k: int) -> list[int]:
    """SAME with k more (k > 0) or fewer (k < 0) right answers."""
    out = list(SAME)
    for i in range(abs(k)):
        out[150 + i if k > 0 else i] = int(k > 0)
    return out


@pytest.mark.parametrize(
    "gradual, shows",
    [
        ((shifted(40), shifted(38), shifted(42)), "gradual"),  # +0.20 over 200 examples
        ((shifted(-40), shifted(-38), shifted(-42)), "from the start"),
        ((shifted(2), shifted(-1), shifted(1)), "tie"),
    ],
)
def test_04_q2_the_decision_follows_the_runs_noise(gradual, shows):
    context = {"gradual": runs(*gradual), "start": runs(SAME, SAME, SAME)}
    assert "'" + shows + "'" in check("04.q2", shows, **context)
    for other in {"gradual", "from the start", "tie"} - {shows}:
        message = feedback("04.q2", other, **context)
        assert "not what this run's numbers support" in message and shows not in message
    assert "use one of" in feedback("04.q2", "better", **context)


def bn_net() -> nn.Module:
    net = nn.Module()
    net._conv = nn.Conv2d(1, 2, 3)
    net._bn0 = nn.BatchNorm2d(2)
    return net


def test_04_q4_freeze_by_name():
    net = bn_net()
    net._bn0.requires_grad_(False)
    check("04.q4", ["_bn0.weight", "_bn0.bias"], model=net)
    net._conv.requires_grad_(False)
    assert "outside BatchNorm" in feedback("04.q4", ["_bn0.weight", "_bn0.bias"], model=net)
    assert "still trainable" in feedback("04.q4", [], model=bn_net())


def test_04_q5_stats_changed():
    calls = {"trap": True, "fix": False}

    def right(model, data):
        return calls[model]

    check("04.q5", right, trap="trap", fix="fix", data=None)
    assert "reports no change" in feedback(
        "04.q5", lambda m, d: False, trap="trap", fix="fix", data=None
    )
    assert "True or False" in feedback("04.q5", lambda m, d: 1, trap="trap", fix="fix", data=None)
