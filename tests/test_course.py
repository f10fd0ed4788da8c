import os

import nbformat
import pytest

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


def test_a_cut_run_checkpoints_into_a_fresh_folder_it_then_removes(tmp_path, monkeypatch):
    """Under --max-steps each notebook's kernel gets its own temporary $COURSEKIT_CHECKPOINTS
    (so the check exercises checkpointing, and no real run ever resumes a cut one); the user's
    own setting is back afterwards."""
    from coursekit import course

    seen = []

    def fake_run(path, out_dir, timeout, ram_budget_gb, max_steps):
        assert max_steps == 1  # the kernel starts in a dry run of 1 step
        folder = os.environ["COURSEKIT_CHECKPOINTS"]
        seen.append(folder)
        assert os.path.isdir(folder) and not os.listdir(folder)
        return course.NotebookRun(path.name, "ok", 0.1)

    monkeypatch.setattr(course, "run_notebook", fake_run)
    monkeypatch.setenv("COURSEKIT_CHECKPOINTS", str(tmp_path / "mine"))
    monkeypatch.setenv("COURSEKIT_MODE", "quick")
    nbs = [tmp_path / "01_a.ipynb", tmp_path / "02_b.ipynb"]
    course.run_course(nbs, out_dir=tmp_path / "out", mode="full", max_steps=1)
    assert len(set(seen)) == 2 and not any(os.path.exists(f) for f in seen)
    assert os.environ["COURSEKIT_CHECKPOINTS"] == str(tmp_path / "mine")
