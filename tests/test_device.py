import sys
import types
import warnings

import numpy as np
import pytest
import torch

from coursekit.runtime import device as dev
from coursekit.runtime.device import HardwareInfo, precision_policy


def test_cpu_only_machine_gets_cpu_without_crashing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert dev.pick_device().type == "cpu"
    info = dev.describe_hardware("cpu")
    assert info.device_type == "cpu" and info.compute_capability is None and not info.bf16


def _fake_gpu(monkeypatch, name, major, minor, mem_gb):
    props = types.SimpleNamespace(name=name, major=major, minor=minor, total_memory=mem_gb * 1e9)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: props)
    return dev.describe_hardware(torch.device("cuda"))


@pytest.mark.parametrize(
    "name,cc,expected,scaler",
    [
        ("Tesla T4", (7, 5), torch.float16, True),
        ("Tesla V100-SXM2-16GB", (7, 0), torch.float16, True),
        ("NVIDIA A100-SXM4-40GB", (8, 0), torch.bfloat16, False),
        ("NVIDIA H100 80GB HBM3", (9, 0), torch.bfloat16, False),
    ],
)
def test_precision_policy_for_mocked_gpus(monkeypatch, name, cc, expected, scaler):
    info = _fake_gpu(monkeypatch, name, *cc, 16)
    assert info.compute_capability == cc and info.name == name
    policy = precision_policy(info)
    assert policy.dtype is expected and policy.grad_scaler is scaler


def test_precision_policy_on_cpu_and_mps_is_fp32():
    for kind in ("cpu", "mps"):
        policy = precision_policy(HardwareInfo(kind, "x", None, None, False, 2))
        assert policy.dtype is None and not policy.grad_scaler and policy.name == "fp32"


def test_loud_warning_when_gpu_expected_but_missing(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-x")
    with pytest.warns(UserWarning, match="No GPU"):
        assert dev.warn_if_no_gpu(expect_gpu=True) is True
    assert "Change runtime type" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dev.warn_if_no_gpu(expect_gpu=False) is False


def test_peak_memory_sees_a_large_allocation_on_cpu():
    with dev.peak_memory("cpu") as mem:
        x = torch.ones(64, 2**20)  # 256 MiB of float32
        x += 1
        del x
    assert mem.peak >= mem.start
    assert mem.increase_mb > 200, mem


def test_seed_everything_makes_every_generator_repeat():
    import random

    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    dev.seed_everything(123)
    a = draw()
    dev.seed_everything(123)
    assert draw() == a


def test_dataloader_defaults_are_portable(monkeypatch):
    kw = dev.dataloader_kwargs("cpu")
    assert kw["pin_memory"] is False
    monkeypatch.setattr(sys, "platform", "win32")
    assert dev.dataloader_kwargs("cpu")["num_workers"] == 0
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(dev.os, "cpu_count", lambda: 16)
    kw = dev.dataloader_kwargs("cuda")
    assert kw["pin_memory"] is True and kw["num_workers"] == 4 and kw["persistent_workers"]


def test_fused_adamw_where_torch_has_it(monkeypatch):
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    kw = dev.adamw_kwargs("cpu")
    assert kw == ({"fused": True} if (major, minor) >= (2, 4) else {})  # CPU kernel since 2.4
    params = [torch.nn.Parameter(torch.randn(5))]
    params[0].grad = torch.ones(5)
    torch.optim.AdamW(params, lr=0.1, **kw).step()  # what it returns must build and step

    def no_fused(*args, fused=None, **kwargs):
        raise RuntimeError("`fused=True` requires all the params to be on a supported device")

    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    dev._fused_adamw_kwargs.cache_clear()  # the probe runs once per device type: run it again
    try:
        assert dev.adamw_kwargs("cpu") == {}
    finally:
        dev._fused_adamw_kwargs.cache_clear()


def test_channels_last_only_for_conv_models_on_cuda():
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    assert dev.prefer_channels_last(cnn, "cpu") is False
    assert cnn[0].weight.is_contiguous()
    # Only the memory format changes (no copy to the GPU), so this runs without one.
    assert dev.prefer_channels_last(cnn, torch.device("cuda")) is True
    assert cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    mlp = torch.nn.Linear(4, 2)
    assert dev.prefer_channels_last(mlp, torch.device("cuda")) is False
