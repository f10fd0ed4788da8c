"""Tests for coursekit.strategies (the sweep) and viz.strategy_plots (its plot), on a tiny BERT."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

from coursekit.datasets import TensorDictDataset
from coursekit.freezing import freeze_all_but_head
from coursekit.lora import add_lora
from coursekit.params import count_parameters
from coursekit.strategies import Strategy, run_strategies
from coursekit.training.history import History
from coursekit.viz import plot_forgetting, plot_runs, plot_strategies

from helpers import tiny_classifier


def token_data(n: int, seed: int) -> TensorDictDataset:
    """Texts whose label is whether token 7 occurs: learnable, so training changes weights."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (n, 8), generator=g)
    labels = (ids == 7).any(1).long()
    return TensorDictDataset({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, labels)


TRAIN, TEST = token_data(24, 0), token_data(12, 1)


def head_only() -> nn.Module:
    model = tiny_classifier()
    freeze_all_but_head(model)
    return model


def with_lora() -> nn.Module:
    model = tiny_classifier()
    add_lora(model, ["query", "value"], r=2, alpha=4, modules_to_save=["head"])
    return model


def test_one_row_per_strategy_with_exact_counts():
    strategies = [
        Strategy("head only", head_only, lr=1e-2),
        Strategy("full", tiny_classifier, lr=1e-3),
        Strategy("lora", with_lora, lr=1e-2),
    ]
    rows, models = run_strategies(strategies, TRAIN, TEST, epochs=2, batch_size=8, progress=False)
    assert [r["strategy"] for r in rows] == ["head only", "full", "lora"]
    assert list(models) == ["head only", "full", "lora"]
    for row in rows:
        counts = count_parameters(models[row["strategy"]])
        assert row["trainable"] == counts.trainable
        assert row["total"] == counts.total
        assert row["trainable_pct"] == pytest.approx(100 * counts.trainable / counts.total)
        assert row["optimizer_state_bytes"] == 8 * counts.trainable  # AdamW: two fp32 moments
        assert row["steps"] == 2 * 3 and row["epochs"] == 2  # 24 examples / batch 8, 2 epochs
        assert row["s_per_step"] == pytest.approx(row["train_seconds"] / 6)
        assert row["seconds"] >= row["train_seconds"] > 0
        assert 0 <= row["accuracy"] <= 1 and row["peak_mb"] >= 0
    assert rows[0]["trainable"] == 16 * 2 + 2  # the head alone
    assert rows[1]["trainable_pct"] == 100


def test_head_only_and_lora_leave_pretrained_weights_bit_identical():
    original = tiny_classifier().encoder.state_dict()
    strategies = [Strategy("head only", head_only, lr=1e-1), Strategy("lora", with_lora, lr=1e-1)]
    _, models = run_strategies(strategies, TRAIN, TEST, epochs=2, batch_size=8, progress=False)
    head_state = models["head only"].encoder.state_dict()
    assert all(torch.equal(original[k], head_state[k]) for k in original)
    lora_state = models["lora"].encoder.state_dict()
    bases = {k.replace(".base.", "."): v for k, v in lora_state.items() if "lora_" not in k}
    assert set(bases) == set(original)
    assert all(torch.equal(original[k], bases[k]) for k in original)
    # ...while the adapter itself did train
    assert any(v.abs().sum() > 0 for k, v in lora_state.items() if k.endswith("lora_B"))


def test_own_data_setup_time_and_frozen_elsewhere():
    g = torch.Generator().manual_seed(0)
    feats = TensorDataset(torch.randn(24, 16, generator=g), TRAIN.labels)
    test_feats = TensorDataset(torch.randn(12, 16, generator=g), TEST.labels)
    probe = Strategy(
        "probe",
        lambda: nn.Linear(16, 2),
        data=(feats, test_feats),
        epochs=3,
        setup_seconds=5.0,
        frozen_elsewhere=1000,
    )
    rows, _ = run_strategies([probe], TRAIN, TEST, epochs=1, batch_size=8, progress=False)
    row = rows[0]
    assert row["epochs"] == 3 and row["steps"] == 9
    assert row["trainable"] == 34 and row["total"] == 1034
    assert row["seconds"] >= 5.0


def test_clear_errors():
    with pytest.raises(ValueError, match="no strategies"):
        run_strategies([], TRAIN, TEST, epochs=1)
    with pytest.raises(ValueError, match="unique"):
        run_strategies([Strategy("a", head_only), Strategy("a", head_only)], TRAIN, TEST, epochs=1)
    other = TensorDataset(torch.zeros(12, 16), 1 - TEST.labels)
    bad = Strategy("probe", lambda: nn.Linear(16, 2), data=(other, other))
    with pytest.raises(ValueError, match="same examples"):
        run_strategies([bad], TRAIN, TEST, epochs=1, progress=False)
    with pytest.raises(TypeError, match="nn.Module"):
        run_strategies([Strategy("x", lambda: "model")], TRAIN, TEST, epochs=1, progress=False)


def test_plots():
    rows = [
        {"strategy": s, "accuracy": a, "trainable": t, "seconds": sec, "peak_mb": m}
        for s, a, t, sec, m in [("probe", 0.8, 770, 2.0, 3.0), ("full", 0.85, 2e7, 20.0, 500.0)]
    ]
    fig = plot_strategies(rows)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert all(len(ax.collections) == 2 for ax in fig.axes)  # one point per strategy
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="peak_mb"):
        plot_strategies([{k: v for k, v in rows[0].items() if k != "peak_mb"}])
    forget = [
        {"model": "pre-trained", "ability": 0.9, "drift": 0.0},
        {"model": "tuned", "ability": 0.7, "drift": 0.3},
    ]
    fig = plot_forgetting(forget)
    assert len(fig.axes) == 2 and not math.isnan(fig.axes[1].get_ylim()[1])


def test_a_sweep_resumed_after_a_disconnect_gives_the_uninterrupted_results(tmp_path, capsys):
    """With `checkpoints`, each strategy checkpoints into its own subfolder: a sweep cut after
    1 of 2 epochs, then run again for 2, reproduces the uninterrupted sweep's accuracies and
    weights, and a finished sweep run again is restored, not retrained."""
    strategies = [Strategy("LoRA r=2", with_lora, lr=1e-2), Strategy("full", tiny_classifier)]
    whole, whole_models = run_strategies(
        strategies, TRAIN, TEST, epochs=2, batch_size=8, progress=False
    )
    run_strategies(strategies, TRAIN, TEST, epochs=1, batch_size=8, progress=False,
                   checkpoints=tmp_path)  # fmt: skip  # the "disconnect" after epoch 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LoRA-r=2", "full"]
    resumed, models = run_strategies(strategies, TRAIN, TEST, epochs=2, batch_size=8,
                                     progress=False, checkpoints=tmp_path)  # fmt: skip
    assert capsys.readouterr().out.count("Resumed from") == 2
    for a, b in zip(whole, resumed, strict=True):
        assert (a["accuracy"], a["steps"]) == (b["accuracy"], b["steps"])
    for name, model in models.items():
        ref = whole_models[name].state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items()), name
    again, _ = run_strategies(strategies, TRAIN, TEST, epochs=2, batch_size=8, progress=False,
                              checkpoints=tmp_path)  # fmt: skip
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in whole]


def test_several_seeds_give_one_row_each_and_a_summary_with_paired_differences():
    """Seeds change the run (init, shuffle); `summarize` averages them per strategy with an SE
    from the seeds and the test examples, `difference` pairs them example by example."""
    from coursekit.claims import Measure
    from coursekit.strategies import difference, summarize

    strategies = [Strategy("head only", head_only, lr=1e-2), Strategy("full", tiny_classifier)]
    seen = []
    rows, models = run_strategies(
        strategies, TRAIN, TEST, epochs=2, batch_size=8, seeds=(0, 1, 2), val=TEST,
        progress=False, on_trained=lambda row, model: seen.append(row["seed"]),
    )  # fmt: skip
    assert [(r["strategy"], r["seed"]) for r in rows] == [
        (s, seed) for seed in (0, 1, 2) for s in ("head only", "full")
    ]
    assert seen == [0, 0, 1, 1, 2, 2] and list(models) == ["head only", "full"]
    for r in rows:
        assert r["correct"].shape == (12,) and r["correct"].mean() == pytest.approx(r["accuracy"])
        assert len(r["history"].metric("val_loss")) == 2  # validated after each epoch
    full_runs = [r for r in rows if r["strategy"] == "full"]
    assert (
        len({tuple(r["correct"]) for r in full_runs} | {r["history"].steps[0] for r in full_runs})
        > 1
    )
    summary = summarize(rows)
    assert [s["strategy"] for s in summary] == ["head only", "full"]
    head = summary[0]
    assert isinstance(head["measure"], Measure) and head["seeds"] == 3
    assert head["accuracy"] == pytest.approx(sum(head["per_seed"]) / 3)
    assert head["accuracy_se"] > 0 and head["steps"] == 6 and head["trainable"] == 34
    diff = difference(rows, "full", "head only")
    assert diff.mean == pytest.approx(summary[1]["accuracy"] - head["accuracy"])
    assert len(diff.values) == 3
    with pytest.raises(ValueError, match="no runs of 'lora'"):
        difference(rows, "lora", "full")
    with pytest.raises(ValueError, match="distinct"):
        run_strategies(strategies, TRAIN, TEST, epochs=1, seeds=(0, 0), progress=False)
    fig = plot_runs(rows, title="two strategies, three seeds")
    assert len(fig.axes) == 2
    assert len(fig.axes[1].lines) == 2 * (3 + 1)  # per strategy: 3 seeds + their mean
    with pytest.raises(ValueError, match="at least one recorded epoch"):
        plot_runs({"empty": [History()]})


def test_a_seeded_sweep_checkpoints_each_seed_in_its_own_folder(tmp_path):
    strategies = [Strategy("full", tiny_classifier)]
    rows, _ = run_strategies(strategies, TRAIN, TEST, epochs=1, batch_size=8, seeds=(3, 4),
                             progress=False, checkpoints=tmp_path)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed3", "seed4"]
    again, _ = run_strategies(strategies, TRAIN, TEST, epochs=1, batch_size=8, seeds=(3, 4),
                              progress=False, checkpoints=tmp_path)  # fmt: skip
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]


def fake_runs(accuracy: dict[str, list[float]], n: int = 200, hits: bool = False) -> list[dict]:
    """Rows of a 3-seed sweep: each strategy's runs get `accuracy[name][seed] * n` examples right
    (the first ones), so paired differences are exact."""
    import numpy as np

    rows = []
    for seed in range(3):
        for name, accs in accuracy.items():
            correct = (np.arange(n) < round(accs[seed] * n)).astype(float)
            row = {"strategy": name, "seed": seed, "correct": correct, "accuracy": correct.mean(),
                   "trainable": 10, "seconds": 1.0 + seed}  # fmt: skip
            if hits:
                row.update(hits=correct[-50:], ability=correct[-50:].mean(), forgetting=0.1)
            rows.append(row)
    return rows


def test_closer_to_measures_where_a_strategy_lands_between_two_others():
    from coursekit.strategies import closer_to, difference, summarize

    rows = fake_runs({"head": [0.70] * 3, "lora": [0.78, 0.79, 0.80], "full": [0.80] * 3})
    near = closer_to(rows, "lora", near="full", far="head")
    assert near.mean == pytest.approx((0.16 + 0.18 + 0.20) / 3 - 0.10)  # 2 lora - full - head
    assert near.mean > 2 * near.se
    assert difference(rows, "full", "head").mean == pytest.approx(0.10)
    assert summarize(rows)[1]["seconds"] == pytest.approx(2.0)  # mean over the seeds
    with pytest.raises(ValueError, match="no 'hits'"):
        difference(rows, "full", "head", key="hits")
    scored = fake_runs({"a": [0.8] * 3, "b": [0.7] * 3}, hits=True)
    summary = summarize(scored)
    assert summary[0]["ability_measure"].mean == pytest.approx(summary[0]["ability"])
    assert "hits" not in summary[0] and summary[0]["forgetting"] == pytest.approx(0.1)
    assert difference(scored, "a", "b", key="hits").mean == pytest.approx(0.2)


def test_the_checklist_prints_six_answers_from_the_numbers():
    from types import SimpleNamespace

    from coursekit.claims import compare, over_seeds
    from coursekit.strategies import checklist, difference, summarize

    names = ["linear probe", "head + last 2 blocks", "full FT, one LR",
             "full FT, discriminative LRs", "LoRA r=8", "LP-FT, one LR"]  # fmt: skip
    accuracies = ([0.70] * 3, [0.72] * 3, [0.80] * 3, [0.78] * 3, [0.79] * 3, [0.81] * 3)
    rows = fake_runs(dict(zip(names, accuracies, strict=True)), hits=True)  # fmt: skip
    for r in rows:
        r.update(n_test=200, trainable_pct=1.0, optimizer_state_bytes=8 * r["trainable"])
    summary = summarize(rows)
    best = "LP-FT, one LR"
    verdicts = {n: compare(best, difference(rows, best, n), "it", 0.0, se_b=0.0)
                for n in names if n != best}  # fmt: skip
    cost = {
        n: SimpleNamespace(seconds_per_step=s)
        for n, s in (("LoRA r=8", 0.2), ("full FT, one LR", 0.3))
    }
    lines = checklist(summary, verdicts, cost, over_seeds([0.02] * 3), over_seeds([1.0] * 3), 128)
    assert len(lines) == 6 and all(line.startswith(f"{i}. ") for i, line in enumerate(lines, 1))
    assert "Most accurate here: LP-FT, one LR" in lines[1]
    assert "0.20 s vs 0.30 s" in lines[2]
    assert "2.7x as far as LP-FT" in lines[4]  # exp(1.0)
    assert "probe is behind the best strategy beyond the noise" in lines[5]
    assert "128 examples" in lines[5]


def test_a_strategy_may_bring_its_own_batch_size_and_epochs():
    strategies = [Strategy("big batches", head_only, lr=1e-2, batch_size=24, epochs=3),
                  Strategy("sweep's", head_only, lr=1e-2)]  # fmt: skip
    rows, _ = run_strategies(strategies, TRAIN, TEST, epochs=2, batch_size=8, progress=False)
    assert [(r["steps"], r["epochs"]) for r in rows] == [(3, 3), (6, 2)]  # 24 examples
