"""Tests for coursekit.drive: where checkpoints go, so a disconnect costs at most one epoch."""

from __future__ import annotations

import pytest
import torch

from coursekit import drive
from coursekit.train import fit


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
