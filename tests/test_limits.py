"""The dry run (`coursekit course --max-steps N`) is installed from the outside; it cuts training
runs and prediction passes short and never makes up an output."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from coursekit.features import extract_features
from coursekit.measure.lr_finder import lr_find
from coursekit.training import (
    DryRun,
    active_dry_run,
    dry_run,
    evaluate,
    fit,
    install_dry_run,
    predict,
)


@pytest.fixture(autouse=True)
def _no_dry_run():
    install_dry_run(None)
    yield
    install_dry_run(None)


def data(n: int = 80) -> tuple[torch.Tensor, torch.Tensor, TensorDataset]:
    torch.manual_seed(0)
    x, y = torch.randn(n, 4), torch.arange(n) % 2
    return x, y, TensorDataset(x, y)


def test_a_dry_run_is_installed_in_code_never_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("COURSEKIT_MAX_STEPS", "2")  # the old switch does nothing now
    assert active_dry_run() is None
    with dry_run(3) as cut:
        assert active_dry_run() is cut == DryRun(3)
        with dry_run(1):
            assert active_dry_run().steps == 1
        assert active_dry_run().steps == 3  # the outer one is back
    assert active_dry_run() is None
    assert install_dry_run(2) == DryRun(2) and install_dry_run(None) is None
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="at least 1"):
            DryRun(bad)


def test_a_dry_run_cuts_training_to_n_optimizer_steps():
    _, _, ds = data()
    with dry_run(3):
        history = fit(torch.nn.Linear(4, 2), ds, epochs=4, batch_size=8, progress=False)
    assert len(history.steps) == 3 and len(history.epochs) == 1
    history = fit(torch.nn.Linear(4, 2), ds, epochs=2, batch_size=8, progress=False)
    assert len(history.steps) == 20  # no dry run: every batch of every epoch


def test_a_dry_run_predicts_fewer_rows_each_a_real_output_next_to_its_label():
    x, y, ds = data()
    model = torch.nn.Linear(4, 2)
    full_logits, full_labels = predict(model, ds, device="cpu", batch_size=16)
    assert full_logits.shape == (80, 2) and torch.equal(full_labels, y)
    with dry_run(3):
        logits, labels = predict(model, ds, device="cpu", batch_size=16)
        scores = evaluate(model, ds, device="cpu")  # batches of 256: one batch holds all 80
    assert torch.equal(labels, y[:48]) and torch.allclose(logits, full_logits[:48])
    assert torch.allclose(logits, model(x[:48]))  # nothing filled in: 48 rows, all computed
    assert scores == evaluate(model, ds, device="cpu")


def test_feature_extraction_is_the_same_with_or_without_a_dry_run(tmp_path):
    x, _, _ = data()
    with dry_run(1):
        cut = extract_features(lambda b: b * 2, x, "dry-run-check", cache_dir=tmp_path)
    assert torch.equal(cut, 2 * x)  # every row, computed: cacheable
    calls = []
    again = extract_features(
        lambda b: calls.append(b) or b * 2, x, "dry-run-check", cache_dir=tmp_path
    )
    assert torch.equal(again, cut) and not calls  # the dry run's features were real: cached


def test_a_dry_run_shortens_the_learning_rate_sweep():
    _, _, ds = data()
    with dry_run(4):
        result = lr_find(torch.nn.Linear(4, 2), ds, num_iter=20, batch_size=8, device="cpu")
    assert len(result.lrs) == 4
