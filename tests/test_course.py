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
