"""Every comparison table and plot carries its uncertainty (issue 14)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from coursekit import experiments as ex
from coursekit.claims import accuracy_se
from coursekit.datasets import Split
from coursekit.measure.measured import measure_step
from coursekit.viz import plot_data_efficiency, plot_strategies, plot_variants


def half_right(train: Split, test: Split) -> dict:
    """Predicts the true class of every second test example."""
    pred = test.y.clone()
    pred[1::2] = (pred[1::2] + 1) % 3
    return {"logits": torch.nn.functional.one_hot(pred, 3).float()}


def test_data_efficiency_rows_carry_the_binomial_standard_error():
    y = torch.arange(3).repeat(12)
    train, test = Split(torch.randn(36, 4), y), Split(torch.randn(21, 4), y[:21])
    rows = ex.data_efficiency({"a": half_right}, (train, test), (2, 4), (0, 1), progress=False)
    for r in rows:
        assert r["accuracy_se"] == pytest.approx(accuracy_se(r["accuracy"], 21))
    agg = ex.aggregate(rows)
    # same accuracy for both seeds: the SE of the mean is the test-set SE alone
    assert agg[0]["accuracy_se"] == pytest.approx(accuracy_se(agg[0]["accuracy"], 21))
    spread = [{**rows[0], "accuracy": 0.5}, {**rows[0], "accuracy": 0.7, "seed": 1}]
    (one,) = ex.aggregate(spread)
    assert one["accuracy_se"] == pytest.approx(math.sqrt(accuracy_se(0.6, 21) ** 2 + 0.01))


def test_step_times_keep_every_timed_step_and_their_spread():
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    batch = (torch.randn(16, 32), torch.randint(0, 4, (16,)))
    cost = measure_step(model, batch, steps=8, warmup=2, device="cpu")
    assert len(cost.step_times) == 8
    lo, hi = cost.spread
    assert min(cost.step_times) <= lo <= cost.seconds_per_step <= hi <= max(cost.step_times)
    assert cost.seconds_se > 0
    with pytest.raises(ValueError, match="steps"):
        measure_step(model, batch, steps=0, device="cpu")


def _errorbar_count(ax) -> int:
    return sum(1 for c in ax.containers if type(c).__name__ == "ErrorbarContainer")


def test_plots_draw_error_bars_and_say_when_the_axis_is_truncated():
    rows = [
        {"method": m, "shots": s, "accuracy": a, "n_test": 100, "seed": 0}
        for m, a in (("probe", 0.8), ("scratch", 0.3))
        for s in (1, 5)
    ]
    ax = plot_data_efficiency(rows).axes[0]
    assert _errorbar_count(ax) == 2 and "SE" in ax.get_ylabel()
    strat = [
        {"strategy": n, "accuracy": a, "accuracy_se": 0.03, "trainable": t, "seconds": 1.0,
         "peak_mb": 10.0}
        for n, a, t in (("lora", 0.86, 1e4), ("full", 0.88, 1e6))
    ]  # fmt: skip
    fig = plot_strategies(strat)
    assert all(_errorbar_count(ax) == 2 for ax in fig.axes[:3])
    label = fig.axes[0].get_ylabel()
    assert "1 SE" in label and "not 0" in label  # the autoscaled axis starts near 0.8
    bars = plot_variants(strat, x="strategy", y="accuracy", err="accuracy_se", ylim=(0.5, 1))
    assert "axis from 0.5, not 0" in bars.axes[0].get_ylabel()
    assert "not 0" not in plot_variants(strat, x="strategy", y="accuracy").axes[0].get_ylabel()
