"""Tests for coursekit.measure.predicted: counted work and the time estimate built on it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coursekit.measure import predicted as estimate
from coursekit.measure.measured import training_flops


def test_model_cost_counts_a_small_model_by_hand():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    flops, act_bytes, largest, params = estimate.model_cost(model, torch.zeros(1, 8))
    assert flops == 2 * 8 * 16 + 2 * 16 * 4  # multiply-adds of the two layers, x 2
    assert act_bytes == 2 * (16 + 16 + 4)  # outputs of Linear, ReLU, Linear in fp16
    assert largest == 2 * 16 and params == 8 * 16 + 16 + 16 * 4 + 4
    assert flops == training_flops(model, (torch.zeros(1, 8), None), device="cpu") / 3


def test_roofline_takes_the_slower_of_arithmetic_and_memory():
    peak, bandwidth = estimate.GPUS["T4"]
    f, b = estimate.FLOP_EFFICIENCY * peak, estimate.BANDWIDTH_EFFICIENCY * bandwidth
    # FLOP-bound: 1 GFLOP forward, 1 byte of activations, 1000 training examples
    t = estimate.roofline_seconds(1e9, 1.0, "train", 1000)
    assert t == pytest.approx(3 * 1e9 * 1000 / f)
    # memory-bound: 1 FLOP, 10 MB of activations, read and written 2x in inference
    t = estimate.roofline_seconds(1.0, 10e6, "infer", 1000)
    assert t == pytest.approx(2 * 10e6 * 1000 / b)
    with pytest.raises(ValueError, match="kind"):
        estimate.roofline_seconds(1.0, 1.0, "backprop", 1)
    with pytest.raises(ValueError, match="GPU"):
        estimate.roofline_seconds(1.0, 1.0, "train", 1, gpu="H9000")


def test_meta_models_cost_what_the_real_models_count():
    """The estimate builds weightless (meta) models; their counted FLOPs equal the real ones."""
    from conftest import require_asset

    require_asset("efficientnet_lite0")
    from coursekit.models import load_pretrained

    real = load_pretrained("efficientnet_lite0", num_classes=10)
    x = torch.zeros(1, 3, 64, 64)
    flops = estimate.per_example_cost("efficientnet_lite0", 64).flops
    assert flops == training_flops(real, (x, None), device="cpu") / 3
    assert 0.7e9 < estimate.per_example_cost("efficientnet_lite0", 224)[0] < 0.8e9  # ~0.39 GMACs


def test_full_mode_fits_the_t4_budget():
    """Each lesson's estimated full-mode GPU work is under 20 minutes and the course under 2
    hours on a T4 (an estimate at the stated efficiencies, see docs/performance.md)."""
    seconds = {
        n: estimate.notebook_seconds(n, "T4") for n in ("00", "01", "02", "03", "04", "05", "06")
    }
    assert max(seconds.values()) < 20 * 60 and sum(seconds.values()) < 2 * 3600, seconds
    assert seconds["04"] > seconds["05"]  # 224 px CNN training outweighs 1,450 articles
    assert estimate.notebook_seconds("04", mode="quick") < seconds["04"] / 10
    with pytest.raises(ValueError, match="lesson"):
        estimate.notebook_work("99")
    one = [estimate.Work("x", "efficientnet_lite0", "infer", 1000, 224)]
    cost = estimate.per_example_cost("efficientnet_lite0", 224)
    gpu_only = estimate.roofline_seconds(cost.flops, cost.act_bytes, "infer", 1000)
    assert estimate.estimate_seconds(one) == pytest.approx(
        gpu_only + 4 * estimate.BATCH_OVERHEAD_S  # 1,000 images in 4 batches of 256
    )


def test_gpu_memory_estimate_counts_weights_optimizer_and_activations(monkeypatch):
    """Training keeps every activation of the batch and 16 bytes per weight (fp32 weight,
    gradient, AdamW's two moments); inference keeps the weights and a few of the largest
    activations. Checked by hand on a made-up cost."""
    fake = estimate.ExampleCost(flops=1.0, act_bytes=1e6, largest_bytes=1e5, params=1000)
    monkeypatch.setattr(estimate, "per_example_cost", lambda name, size: fake)
    ctx = estimate.CUDA_CONTEXT_BYTES
    train = estimate.Work("t", "minilm", "train", 100, 8, batch=16)
    assert estimate.peak_gpu_bytes(train) == 18 * 1000 + 16 * 1e6 + ctx
    infer = estimate.Work("i", "minilm", "infer", 100, 8)  # predict's batch of 256
    assert estimate.peak_gpu_bytes(infer) == 4 * 1000 + 256 * estimate.LIVE_OUTPUTS * 1e5 + ctx


def test_every_lesson_fits_a_t4_in_full_mode():
    """The estimated peak GPU memory of every lesson's full mode is within the 13 GB budget of
    a T4's 15 GB, and the budget is not met trivially: a 224 px training batch of 256 would
    not fit."""
    gbs = {n: estimate.notebook_gpu_gb(n) for n in estimate.LESSONS}
    assert max(gbs.values()) <= estimate.T4_BUDGET_GB, gbs
    assert gbs["04"] > 1.0  # training EfficientNet-Lite0 at 224 px keeps GBs of activations
    big = estimate.Work("x", "efficientnet_lite0", "train", 1, 224, batch=512)
    assert estimate.peak_gpu_bytes(big) / 1e9 > estimate.T4_BUDGET_GB


def test_the_workload_model_matches_the_data():
    """The estimate caps BBC News articles per topic where the lessons do (the smallest topic of
    the training split), so a change of the data or the split shows up here."""
    from conftest import require_asset

    require_asset("bbc_news")
    from coursekit.datasets import load_bbc_news

    assert min(load_bbc_news(seed=0).train.class_counts()) == estimate.BBC_SMALLEST_TOPIC


def test_the_docs_show_the_current_estimate():
    """docs/performance.md carries the table `markdown_table()` prints (regenerate when sizes
    or the cost model change)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for doc in ("docs/performance.md", "README.md"):
        assert estimate.markdown_table("T4") in (root / doc).read_text(), doc


def test_announce_prints_the_estimate_and_the_switch(monkeypatch, capsys):
    from coursekit.runtime import config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config.set_mode("full")
    try:
        seconds = estimate.announce("04")
    finally:
        config.set_mode(None)
    out = capsys.readouterr().out
    assert seconds == estimate.notebook_seconds("04") and "T4" in out
    assert "COURSEKIT_MODE=quick" in out and f"about {seconds / 60:.0f} min" in out
