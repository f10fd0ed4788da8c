"""The course as learners see it: JupyterLab in a real (headless) Chromium, driven by Playwright.

JupyterLab starts exactly as the README says (`jupyter lab notebooks/`, from this environment),
on a copy of the lessons (the learners' copies, and a solutions copy of one lesson) so nothing is
saved over, with COURSEKIT_MODE=quick and the progress bars on. Each test runs a notebook from
the Run menu and checks the rendered page: no error outputs, progress bars rendered as widgets,
the live plot updated in place, the takeaways and self-checks shown ("not answered yet" in the
learner's copy, ✓ in the solutions copy), the Colab badge pointing at the notebook. A
screenshot of each notebook goes to build/screenshots/ (also when a check fails).

Needs `playwright` (the dev extra) and Chromium (`apt-get install chromium`): skipped locally
without them, a failure in CI (CI=true or COURSEKIT_REQUIRE_ASSETS=1).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coursekit.runtime.config import settings
from coursekit.teach import build

from browser_lab import JupyterLab, LabNotebook, find_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "notebooks" / "source"
SCREENSHOTS = REPO / "build" / "screenshots"
RUN_TIMEOUT_S = 900  # generous: a shared CI machine can run cells several times slower
LESSON = "03_head_replacement.ipynb"  # quick, and it has exercises with self-checks
ERROR = re.compile(r"Traceback|^\w+(Error|Exception)\b|✗ Not yet", re.M)
RAW_WIDGET = re.compile(
    r"Error displaying widget|Loading widget|(Int|Float)Progress\(|HBox\(children", re.M
)


def _in_ci() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("COURSEKIT_REQUIRE_ASSETS") == "1"


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or chromium is None:
        missing = "the playwright package" if sync_playwright is None else "Chromium"
        msg = (
            f"browser test needs {missing}: pip install playwright; apt-get install chromium "
            "(or set COURSEKIT_CHROMIUM to a Chromium binary)"
        )
        if _in_ci():
            pytest.fail(msg + " (required in CI)")
        pytest.skip(msg)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of notebooks/ (the learners' copies) plus the solutions copy of one
    lesson."""
    workdir = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO / "notebooks", workdir / "notebooks")
    build("solutions", SOURCE / LESSON, workdir / "notebooks" / "solutions", "")
    env = {
        "COURSEKIT_MODE": "quick",
        "COURSEKIT_PROGRESS": "1",  # `make test` turns bars off for pytest; learners see them
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    server = JupyterLab(workdir, env).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
    lab.shutdown_kernels()


@contextlib.contextmanager
def screenshot_on_failure(notebook: LabNotebook, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            notebook.screenshot(SCREENSHOTS / f"{name}-FAILED.png")
        raise


def run_notebook(page, lab: JupyterLab, path: str, name: str) -> tuple[LabNotebook, list[dict]]:
    """Open `path`, run all its cells through the UI, screenshot it; the cells as rendered."""
    notebook = LabNotebook(page, lab, path)
    with screenshot_on_failure(notebook, name):
        cells = notebook.open().run_all(RUN_TIMEOUT_S)
    notebook.screenshot(SCREENSHOTS / f"{name}.png")
    return notebook, cells


def code_cells_containing(cells: list[dict], text: str) -> list[int]:
    return [i for i, c in enumerate(cells) if c["type"] == "code" and text in c["source"]]


def errors(cells: list[dict]) -> list[str]:
    return [
        f"cell {i}: {o['text'][:500]}"
        for i, c in enumerate(cells)
        for o in c["outputs"]
        if "stderr" in o["mime"] and ERROR.search(o["text"])
    ]


def assert_as_a_learner_sees_it(cells: list[dict], notebook_path: str) -> None:
    """Checks every lesson passes: all cells ran, no errors, widgets not shown as text,
    the mode is quick, the takeaways printed, the Colab badge points at this notebook."""
    code = [c for c in cells if c["type"] == "code" and not c["hidden"]]
    not_run = [(c["prompt"], c["text"][:60]) for c in code if not c["prompt"][1:-2].isdigit()]
    assert not not_run, not_run
    hidden = [c for c in cells if c["hidden"]]  # the copies collapse nothing
    assert not hidden, [c["text"][:60] for c in hidden]
    assert not errors(cells)
    page_text = "\n".join(o["text"] for c in cells for o in c["outputs"])
    assert not RAW_WIDGET.findall(page_text)
    assert "coursekit mode: QUICK (from $COURSEKIT_MODE)" in page_text
    takeaways = next(i for i, c in enumerate(cells) if c["text"].startswith("Takeaways"))
    printed = [o["text"] for c in cells[takeaways:] for o in c["outputs"] if "stdout" in o["mime"]]
    assert printed and printed[0].startswith("- "), printed
    badges = [a for c in cells for a in c["links"] if "colab.research.google.com" in a]
    lesson = notebook_path.split("/")[-1]  # the solutions copy keeps the learner's badge
    assert badges and all(a.endswith(f"/notebooks/{lesson}") for a in badges), badges


def test_setup_notebook_live_plot_and_progress_bars(page, lab):
    notebook, cells = run_notebook(page, lab, "00_setup.ipynb", "00_setup")
    with screenshot_on_failure(notebook, "00_setup"):
        assert_as_a_learner_sees_it(cells, "00_setup.ipynb")
        seen = notebook.observed()
        assert not seen["widgetErrors"]
        # One epoch bar per epoch, each rendered as a progress widget while its epoch ran.
        (first_fit,) = code_cells_containing(cells, "LivePlot(")
        bars = seen["progress"].get(first_fit, [])
        epochs = settings("quick").epochs
        assert len(bars) >= epochs, bars
        # The live plot: one figure in the cell, redrawn in place once per epoch, the last shown.
        assert len(cells[first_fit]["images"]) == 1, "the live plot stacked figures"
        assert cells[first_fit]["outputs"][0]["mime"] == "image/png", "plot above the epoch lines"
        drawn = seen["images"].get(first_fit, [])
        assert len(set(drawn)) >= epochs, f"{len(set(drawn))} distinct plots for {epochs} epochs"
        assert cells[first_fit]["imageHashes"] == [drawn[-1]]


def exercise_count(lesson: str) -> int:
    """How many exercises the source lesson has: answer cells with nbgrader's solution marker."""
    nb = json.loads((SOURCE / lesson).read_text())
    return sum("### BEGIN SOLUTION" in "".join(c["source"]) for c in nb["cells"])


def test_solutions_copy_passes_its_self_checks(page, lab):
    path, name = f"solutions/{LESSON}", "solutions-" + LESSON.removesuffix(".ipynb")
    notebook, cells = run_notebook(page, lab, path, name)
    with screenshot_on_failure(notebook, name):
        assert_as_a_learner_sees_it(cells, path)
        assert not notebook.observed()["widgetErrors"]
        checks = code_cells_containing(cells, "ck.exercises.check(")
        assert len(checks) == exercise_count(LESSON)
        for i in checks:
            out = " ".join(o["text"] for o in cells[i]["outputs"])
            assert re.match(r"✓ 03\.q\d: ", out), out
        assert all(c["images"] for c in cells if "viz.plot_" in c["source"])


def test_learners_copy_runs_to_the_end_with_every_exercise_not_yet_answered(page, lab):
    notebook, cells = run_notebook(page, lab, LESSON, LESSON.removesuffix(".ipynb"))
    with screenshot_on_failure(notebook, LESSON.removesuffix(".ipynb")):
        assert_as_a_learner_sees_it(cells, LESSON)  # every cell ran, no error
        assert not code_cells_containing(cells, "BEGIN SOLUTION")
        stubs = code_cells_containing(cells, "# Exercise 03.q")
        assert len(stubs) == exercise_count(LESSON), "each exercise is a stub to fill in"
        checks = code_cells_containing(cells, "ck.exercises.check(")
        assert len(checks) == len(stubs)
        for n, i in enumerate(checks, 1):
            feedback = " ".join(o["text"] for o in cells[i]["outputs"])
            assert f"03.q{n}: not answered yet." in feedback, feedback
            assert f'solution("03.q{n}")' in feedback and "Traceback" not in feedback, feedback
