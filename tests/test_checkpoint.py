import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from coursekit.runtime.files import temp_path
from coursekit.training import CheckpointError, load_checkpoint, save_checkpoint
from coursekit.training import checkpoint as ck

from helpers import mlp


def _trained_optimizer(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        model(torch.randn(4, 10)).sum().backward()
        opt.step()
        sched.step()
    return opt, sched


def test_round_trip_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    model = mlp()
    opt, sched = _trained_optimizer(model)
    torch.manual_seed(7)
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched, state={"epoch": 3})
    expected_next = torch.rand(5)

    model2 = mlp(seed=1)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    state = load_checkpoint(path, model2, opt2, sched2)
    assert state == {"epoch": 3}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(s1["state"][k][name], s2["state"][k][name])
    assert sched2.state_dict() == sched.state_dict()
    assert torch.equal(torch.rand(5), expected_next)  # RNG restored


def test_weights_are_plain_safetensors_not_pickle(tmp_path):
    model = mlp()
    path = ck.save_weights(tmp_path / "w.safetensors", model)
    raw = path.read_bytes()
    assert not raw.startswith(b"PK") and b"\x80\x04" not in raw[:16]  # not a zip/pickle
    loaded = load_file(str(path))
    assert set(loaded) == set(model.state_dict())


def test_crash_mid_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    model = mlp()
    path = save_checkpoint(tmp_path / "last.safetensors", model, state={"epoch": 1})
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def crashing_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 100)  # a half-written file...
        raise KeyboardInterrupt  # ...and the kernel is interrupted

    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    monkeypatch.setattr(ck, "save_file", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, state={"epoch": 2})
    monkeypatch.undo()

    fresh = mlp(seed=5)
    assert load_checkpoint(path, fresh) == {"epoch": 1}
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]  # no temp file left


def test_checkpoint_from_a_different_model_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", mlp(classes=3))
    with pytest.raises(CheckpointError, match="different model") as err:
        load_checkpoint(path, mlp(classes=5))
    assert "shape" in str(err.value) and "(5, 32)" in str(err.value)
    with pytest.raises(CheckpointError, match="different model"):
        load_checkpoint(path, nn.Sequential(nn.Linear(10, 3)))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", mlp())
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, mlp())


def test_unpicklable_state_is_refused_with_a_reason(tmp_path):
    with pytest.raises(TypeError, match="without pickle"):
        save_checkpoint(tmp_path / "c.safetensors", mlp(), state={"fn": lambda x: x})


def test_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "last.safetensors"
    stale = temp_path(path, pid=2**31 - 2)  # a save killed outright (no such process now)
    stale.write_bytes(b"\x00" * 100)
    own_live = temp_path(path, pid=1)  # a process that still runs (init): left alone
    own_live.write_bytes(b"\x00")
    save_checkpoint(path, mlp(), state={"epoch": 1})
    assert not stale.exists() and own_live.exists()
    assert load_checkpoint(path, mlp()) == {"epoch": 1}


def test_a_refused_checkpoint_changes_nothing(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", mlp(), state={"epoch": 1})
    model = mlp(seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def refuse(state):
        raise CheckpointError(f"refused at epoch {state['epoch']}")

    with pytest.raises(CheckpointError, match="refused at epoch 1"):
        load_checkpoint(path, model, check=refuse)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
