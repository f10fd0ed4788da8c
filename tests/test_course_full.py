"""The full-mode check on a CPU: `run_course(..., max_steps=N)` runs lessons at full-mode data
sizes with every loop cut short, measures each kernel's peak RSS, and fails a lesson over the RAM
budget."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main
from coursekit.course import run_course

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch):
    """run_course sets these for its kernels; setting them here makes pytest restore them."""
    for name in ("COURSEKIT_MODE", "COURSEKIT_MAX_STEPS", "COURSEKIT_PROGRESS"):
        monkeypatch.setenv(name, "")


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def test_peak_rss_is_measured_and_a_notebook_over_budget_fails(tmp_path):
    hog = write(tmp_path, "01_hog.ipynb", "import numpy as np\nx = np.ones(400_000_000 // 8)")
    small = write(tmp_path, "00_small.ipynb", "import os\nprint(os.environ['COURSEKIT_MAX_STEPS'])")
    runs = run_course([small, hog], tmp_path / "out", max_steps=3, ram_budget_gb=0.3)
    by = {r.name: r for r in runs}
    assert by["00_small"].status == "ok" and by["00_small"].peak_rss_gb < 0.3
    executed = nbformat.read(tmp_path / "out" / "00_small.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "3"  # the kernel saw the cap
    assert by["01_hog"].status == "OVER RAM" and by["01_hog"].peak_rss_gb > 0.4
    assert "peak RSS" in by["01_hog"].error
    report = (tmp_path / "out" / "course_report.md").read_text()
    assert "OVER RAM" in report and "peak RSS (GB)" in report


def test_cli_course_takes_max_steps_and_a_ram_budget(tmp_path):
    nb = write(tmp_path, "00_x.ipynb", "x = 1")
    argv = ["course", str(nb), "--out", str(tmp_path / "o"), "--max-steps", "2"]
    assert main([*argv, "--ram-budget-gb", "10"]) == 0
    assert main([*argv, "--ram-budget-gb", "0.001"]) == 1  # any kernel is over 1 MB
    with pytest.raises(ValueError, match="at least 1"):
        run_course([nb], tmp_path / "o", max_steps=0)
