"""Tests for coursekit.runtime.drive: where checkpoints go, so a disconnect costs at most one
epoch."""

from __future__ import annotations

import pytest
import torch

from coursekit.runtime import drive
from coursekit.training import dry_run, fit


def test_checkpoint_folder_local_env_and_drive(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSEKIT_CHECKPOINTS", raising=False)
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    local = drive.checkpoint_folder("04", "k8")
    assert local == tmp_path / "data" / "coursekit-checkpoints" / "04" / "k8" and local.is_dir()
    my_drive = tmp_path / "MyDrive"
    my_drive.mkdir()
    monkeypatch.setattr(drive, "DRIVE_ROOT", my_drive)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")  # as on a Colab runtime
    assert drive.checkpoint_folder("04", "k8").parent.parent.parent == my_drive
    monkeypatch.setenv("COURSEKIT_CHECKPOINTS", str(tmp_path / "mine"))
    assert drive.checkpoint_folder("05").is_relative_to(tmp_path / "mine")
    with pytest.raises(ValueError, match="names a folder"):
        drive.checkpoint_folder("../04")


def test_a_second_fit_in_the_same_folder_resumes(monkeypatch, tmp_path, capsys):
    """A 'disconnect' after 2 of 3 epochs: the rerun trains only the missing epoch."""
    monkeypatch.setenv("COURSEKIT_CHECKPOINTS", str(tmp_path))
    folder = drive.checkpoint_folder("00", "demo")
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.arange(32) % 2)
    torch.manual_seed(0)
    first = fit(
        torch.nn.Linear(4, 2), data, epochs=2, checkpoint_dir=folder, progress=False, device="cpu"
    )
    torch.manual_seed(0)
    history = fit(
        torch.nn.Linear(4, 2), data, epochs=3, checkpoint_dir=folder, progress=False, device="cpu"
    )
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert history.epochs[:2] == first.epochs  # restored, not retrained
    assert "Resumed from" in capsys.readouterr().out
    assert (folder / "last.safetensors").exists()


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("COURSEKIT_CHECKPOINTS", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(drive, "DRIVE_ROOT", tmp_path / "MyDrive")  # not mounted
    monkeypatch.setattr(drive, "_mount_tried", False)
    return tmp_path


def test_resumable_only_checkpoints_full_mode(monkeypatch, clean_env):
    """Quick mode: None (minutes on a CPU, nothing to resume); full mode: a folder per run, named
    for the mode and the run, never shared with a run cut short by a dry run."""
    monkeypatch.setenv("COURSEKIT_MODE", "quick")
    assert drive.resumable("05", "LoRA r=8") is None
    monkeypatch.setenv("COURSEKIT_MODE", "full")
    folder = drive.resumable("05", "LoRA r=8")
    assert folder == clean_env / "data" / "coursekit-checkpoints" / "05" / "full-LoRA-r=8"
    assert folder.is_dir() and drive.resumable("05", "LoRA r=8") == folder
    with dry_run(2):
        assert drive.resumable("05", "LoRA r=8") is None  # a cut run never lands in a real folder
        monkeypatch.setenv("COURSEKIT_CHECKPOINTS", str(clean_env / "check"))
        assert drive.resumable("05", "LoRA r=8").is_relative_to(clean_env / "check")


def test_on_colab_full_mode_mounts_drive_once(monkeypatch, clean_env, capsys):
    """On Colab the first resumable run mounts Drive (Colab asks the learner); a refusal is
    reported, training goes on with local checkpoints, and nobody is asked twice."""
    import sys
    import types

    monkeypatch.setenv("COURSEKIT_MODE", "full")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    calls = []

    def refuse(path: str) -> None:
        calls.append(path)
        raise ValueError("mount failed")

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=refuse)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    sys.modules["google"].colab = colab
    folder = drive.resumable("04", "k8")
    assert calls == ["/content/drive"] and "Drive not mounted" in capsys.readouterr().out
    assert folder.is_relative_to(clean_env / "data")
    drive.resumable("04", "k2")
    assert calls == ["/content/drive"]  # asked once
    monkeypatch.setattr(drive, "_mount_tried", False)
    (clean_env / "MyDrive").mkdir()  # mounted (e.g. by the learner, or by the call)
    assert drive.resumable("04", "k8").is_relative_to(clean_env / "MyDrive")
    assert calls == ["/content/drive"]  # already mounted: not asked
