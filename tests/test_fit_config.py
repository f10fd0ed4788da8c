"""`fit`'s settings are one typed `FitConfig`; the process(es) it runs in are one `Backend`."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.utils.data import TensorDataset

from coursekit.training import FitConfig, SingleProcess, fit
from coursekit.training.backends import for_this_process


def test_fit_takes_exactly_the_config_fields_with_the_same_defaults():
    params = inspect.signature(fit).parameters
    keywords = {
        name: p.default for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert list(params)[:3] == ["model", "train_data", "val_data"]
    assert keywords == FitConfig.fields()
    assert list(keywords) == list(FitConfig.fields())  # same order: one reads like the other


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"epochs": 1.5}, "epochs must be a whole number"),
        ({"grad_accum_steps": True}, "grad_accum_steps must be a whole number"),
        ({"scheduler_interval": "batch"}, "scheduler_interval must be one of"),
        ({"metrics": "accuracy"}, "metrics is a list of names"),
        ({"metrics": ("accuracy", "f1")}, r"unknown metrics \['f1'\]"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_before_any_weight_moves(setting, message):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = TensorDataset(torch.randn(8, 3), torch.arange(8) % 2)
    with pytest.raises((ValueError, TypeError), match=message):
        fit(model, data, progress=False, device="cpu", **setting)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_config_knows_the_monitor_and_the_checkpoint_folder(tmp_path):
    assert FitConfig().monitor_for(has_val_data=True) == "val_loss"
    assert FitConfig().monitor_for(has_val_data=False) == "train_loss"
    assert FitConfig(monitor="val_accuracy").monitor_for(False) == "val_accuracy"
    assert FitConfig().checkpoint_path is None
    assert FitConfig(checkpoint_dir=str(tmp_path)).checkpoint_path == tmp_path
    with pytest.raises(AttributeError):  # frozen: a run's settings do not change under it
        FitConfig().lr = 1.0


def test_one_process_gets_the_single_process_backend(monkeypatch):
    for var in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    backend = for_this_process()
    assert isinstance(backend, SingleProcess)
    assert backend.main and backend.on_device and backend.gather is None
    losses, correct = torch.tensor([0.5, 0.25]), torch.tensor(3)
    assert backend.combine(losses, correct, 4) == (losses, correct, 4)  # numbers as they are
    assert backend.device("cpu") == torch.device("cpu")
