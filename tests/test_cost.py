import torch
from torch import nn

from coursekit.cost import file_size_mb, inference_latency, measure_step, optimizer_state_bytes

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
