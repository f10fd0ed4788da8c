import pytest
import torch
from torch import nn

from coursekit.measure.measured import (
    file_size_mb,
    inference_latency,
    measure_step,
    model_flops_utilization,
    optimizer_state_bytes,
    peak_flops,
    training_flops,
)
from coursekit.runtime.device import HardwareInfo

from helpers import mlp


def test_adamw_state_is_eight_bytes_per_trainable_parameter():
    model = mlp()
    model[0].requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    model(torch.randn(4, 10)).sum().backward()
    opt.step()
    assert optimizer_state_bytes(opt) == 8 * trainable


def test_measure_step_reports_cost_and_leaves_the_model_untouched():
    model = mlp()
    model[0].requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = (torch.randn(16, 10), torch.randint(0, 3, (16,)))
    cost = measure_step(model, batch, steps=3, device="cpu")
    assert cost.seconds_per_step > 0 and cost.peak_mb > 0
    assert cost.trainable == 32 * 3 + 3
    assert cost.optimizer_state_bytes == 8 * cost.trainable
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_inference_latency_grows_with_work():
    small, big = nn.Linear(64, 64), nn.Linear(2048, 2048)
    t_small = inference_latency(small, torch.randn(256, 64), device="cpu")
    t_big = inference_latency(big, torch.randn(256, 2048), device="cpu")
    assert 0 < t_small < t_big


def test_file_size(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 2_500_000)
    assert file_size_mb(tmp_path / "f") == 2.5


def test_training_flops_is_three_forward_passes_of_the_matmuls():
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    batch = (torch.randn(8, 10), torch.randint(0, 3, (8,)))
    forward = 2 * 8 * (10 * 32 + 32 * 3)  # multiply-adds of the two layers, 2 FLOPs each
    assert training_flops(model, batch, device="cpu") == 3 * forward


def test_depthwise_convolutions_are_not_overcounted():
    # torch's counter ignores `groups` in the backward; counting 3 x forward avoids that.
    conv = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Flatten())
    batch = (torch.randn(1, 64, 16, 16), torch.zeros(1, dtype=torch.long))
    assert training_flops(conv, batch, device="cpu") == 3 * 2 * 64 * 9 * 16 * 16


def test_peak_flops_and_mfu(monkeypatch):
    monkeypatch.delenv("COURSEKIT_PEAK_TFLOPS", raising=False)
    h100 = HardwareInfo("cuda", "NVIDIA H100 80GB HBM3", 80.0, (9, 0), True, 16)
    t4 = HardwareInfo("cuda", "Tesla T4", 16.0, (7, 5), False, 4)
    cpu = HardwareInfo("cpu", "x86_64", None, None, False, 2)
    assert peak_flops(h100, torch.bfloat16) == 989.4e12
    assert peak_flops(t4, torch.float16) == 65e12 and peak_flops(t4, None) == 8.1e12
    assert peak_flops(cpu, None) is None
    assert model_flops_utilization(1e12, 0.01, 200e12) == pytest.approx(0.5)
    assert model_flops_utilization(1e12, 0.01, None) is None
    monkeypatch.setenv("COURSEKIT_PEAK_TFLOPS", "100")
    assert peak_flops(cpu, None) == 100e12
