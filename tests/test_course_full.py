"""The full-mode check on a CPU: `run_course(..., max_steps=N)` runs lessons at full-mode data
sizes with every loop cut short, measures each kernel's peak RSS, and fails a lesson over the RAM
budget."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main
from coursekit.course import RAM_BUDGET_GB, run_course

from conftest import require_asset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch):
    """run_course sets these for its kernels; setting them here makes pytest restore them."""
    for name in ("COURSEKIT_MODE", "COURSEKIT_PROGRESS"):
        monkeypatch.setenv(name, "")


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def test_peak_rss_is_measured_and_a_notebook_over_budget_fails(tmp_path):
    hog = write(tmp_path, "01_hog.ipynb", "import numpy as np\nx = np.ones(400_000_000 // 8)")
    small = write(tmp_path, "00_small.ipynb", "x = 1")
    both = write(tmp_path, "02_both.ipynb", "import numpy as np\nx = np.ones(50_000_000)\n1 / 0")
    runs = run_course([small, hog, both], tmp_path / "out", ram_budget_gb=0.3)
    by = {r.name: r for r in runs}
    assert by["00_small"].status == "ok" and by["00_small"].peak_rss_gb < 0.3
    assert by["01_hog"].status == "OVER RAM" and by["01_hog"].peak_rss_gb > 0.4
    assert "peak RSS" in by["01_hog"].error
    assert by["02_both"].status == "OVER RAM and FAILED" and by["02_both"].peak_rss_gb > 0.4
    assert by["02_both"].error.startswith("peak RSS") and "ZeroDivisionError" in by["02_both"].error
    report = (tmp_path / "out" / "course_report.md").read_text()
    assert "OVER RAM" in report and "peak RSS (GB)" in report


def test_max_steps_starts_every_kernel_in_a_dry_run(tmp_path):
    """The runner installs the dry run as the kernel starts, before the notebook's first cell."""
    nb = write(tmp_path, "00_cap.ipynb", "import coursekit.training as t\nt.active_dry_run()")
    for max_steps, shown in ((3, "DryRun(steps=3)"), (None, None)):
        (run,) = run_course([nb], tmp_path / f"out{max_steps}", max_steps=max_steps)
        assert run.status == "ok", run.error
        cell = nbformat.read(tmp_path / f"out{max_steps}" / nb.name, as_version=4).cells[0]
        texts = [o["data"]["text/plain"] for o in cell.outputs if "data" in o]
        assert texts == ([shown] if shown else [])


def test_cli_course_takes_max_steps_and_a_ram_budget(tmp_path):
    nb = write(tmp_path, "00_x.ipynb", "x = 1")
    argv = ["course", str(nb), "--out", str(tmp_path / "o"), "--max-steps", "2"]
    assert main([*argv, "--ram-budget-gb", "10"]) == 0
    assert main([*argv, "--ram-budget-gb", "0.001"]) == 1  # any kernel is over 1 MB
    with pytest.raises(ValueError, match="at least 1"):
        run_course([nb], tmp_path / "o", max_steps=0)


def lesson_prefix(name: str, last_cell: str, folder: Path) -> Path:
    """A copy of lesson `name` with its cells up to `last_cell` (an id): the CI-sized check."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    ids = [c.get("id") for c in nb.cells]
    nb.cells = nb.cells[: ids.index(last_cell) + 1]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_lesson_04_full_mode_data_and_training_fit_the_ram_budget(tmp_path):
    """Lesson 04 in full mode up to its first timed training steps: 10,000 + 1,000 + 10,000
    Fashion-MNIST images prepared per batch at 224 px, the network cut below its last block, and
    a few training steps of the whole network and of the part above the cut at 224 px. The
    benchmark suite runs whole lessons (`--only course --course-mode full`)."""
    require_asset("fashion_mnist")
    require_asset("efficientnet_lite0")
    nb = lesson_prefix("04_layer_freezing", "5a670f31", tmp_path)
    (run,) = run_course([nb], tmp_path / "out", mode="full", max_steps=1, timeout=600)
    assert run.status == "ok", run.error
    assert run.peak_rss_gb is not None and run.peak_rss_gb < RAM_BUDGET_GB
    out = nbformat.read(tmp_path / "out" / nb.name, as_version=4)
    text = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert "10,000 train, 1,000 val, 10,000 test images at 224 px" in text
    assert "one step: whole network" in text


@pytest.mark.slow
@pytest.mark.full_mode  # 7 minutes on CI's 2 cores: `make test-full-mode`
def test_lesson_06_full_mode_fits_the_ram_budget(tmp_path):
    """Text: the whole capstone in full mode (4,000 tweets at 64 tokens, every strategy, the
    forgetting probe on BBC News), each loop cut to 1 step or batch."""
    require_asset("tweets")
    require_asset("minilm")
    (run,) = run_course(
        [REPO / "notebooks" / "06_capstone.ipynb"], tmp_path, mode="full", max_steps=1, timeout=900
    )
    assert run.status == "ok", run.error
    assert run.peak_rss_gb is not None and run.peak_rss_gb < RAM_BUDGET_GB
