"""The data-efficiency runner, the linear probe and the from-scratch pieces, on tiny data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coursekit import experiments as ex
from coursekit.datasets import ImageDataset, Split
from coursekit.experiments.methods import optimizer_steps
from coursekit.freezing import recalibrate_batchnorm

from conftest import require_asset


def blobs_split(per_class: int, classes: int = 3, dim: int = 6, seed: int = 0) -> Split:
    """Gaussian blobs, `per_class` examples of each class, shuffled."""
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * 4
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(per_class)
    y = y[torch.randperm(len(y), generator=g)]
    return Split(centers[y] + torch.randn(len(y), dim, generator=g), y)


@pytest.fixture
def data() -> tuple[Split, Split]:
    return blobs_split(12, seed=0), blobs_split(7, seed=1)


class Recorder:
    """A method that remembers what it was given and predicts the true class of every 2nd item."""

    def __init__(self) -> None:
        self.calls: list[tuple[Split, Split]] = []

    def __call__(self, train: Split, test: Split) -> dict:
        self.calls.append((train, test))
        logits = torch.zeros(len(test), 3)
        truth = test.y.clone()
        truth[1::2] = (truth[1::2] + 1) % 3
        logits[torch.arange(len(test)), truth] = 1.0
        return {"logits": logits, "train_seconds": 0.5, "trainable_params": 7}


def test_one_row_per_method_shot_and_seed(data):
    a, b = Recorder(), Recorder()
    rows = ex.data_efficiency({"a": a, "b": b}, data, shots=(1, 2, 5), seeds=(0, 1), progress=False)
    assert len(rows) == 2 * 3 * 2
    keys = {(r["method"], r["shots"], r["seed"]) for r in rows}
    assert keys == {(m, n, s) for m in "ab" for n in (1, 2, 5) for s in (0, 1)}
    assert {r["n_train"] for r in rows if r["shots"] == 5} == {15}
    assert all(r["train_seconds"] == 0.5 and r["trainable_params"] == 7 for r in rows)
    assert all("logits" not in r for r in rows)


def test_subsets_have_exactly_n_per_class_and_are_shared(data):
    a, b = Recorder(), Recorder()
    ex.data_efficiency({"a": a, "b": b}, data, shots=(1, 4, 12), seeds=(0, 3), progress=False)
    for (train_a, _), (train_b, _), n in zip(a.calls, b.calls, [1, 4, 12] * 2, strict=True):
        assert train_a.class_counts() == [n, n, n]
        assert torch.equal(train_a.x, train_b.x), "both methods must see the same examples"
    # another seed draws other examples
    assert not torch.equal(a.calls[1][0].x, a.calls[4][0].x)


def test_accuracy_is_computed_by_the_runner_on_the_untouched_test_split(data):
    train, test = data
    rec = Recorder()
    rows = ex.data_efficiency({"rec": rec}, (train, test), shots=(2, 6), progress=False)
    for _, seen_test in rec.calls:
        assert seen_test is test and len(seen_test) == 21
    expected = (torch.arange(21) % 2 == 0).float().mean().item()  # every 2nd one wrong
    assert all(r["accuracy"] == pytest.approx(expected) for r in rows)
    assert all(r["n_test"] == 21 and r["distinct_predictions"] == 3 for r in rows)


def test_a_method_cannot_change_the_test_labels(data):
    def cheat(train: Split, test: Split) -> dict:
        test.y.zero_()
        return {"logits": torch.nn.functional.one_hot(test.y, 3).float()}

    with pytest.raises(ex.ExperimentError, match="changed the test labels"):
        ex.data_efficiency({"cheat": cheat}, data, shots=(1,), progress=False)


def test_per_method_inputs_must_share_labels(data):
    train, test = data
    features = (Split(train.x * 2, train.y), Split(test.x * 2, test.y))
    a, b = Recorder(), Recorder()
    ex.data_efficiency({"a": a, "b": b}, {"a": data, "b": features}, (3,), progress=False)
    assert torch.equal(b.calls[0][0].x, a.calls[0][0].x * 2), "same positions, other inputs"
    shuffled = Split(train.x, train.y.flip(0))
    with pytest.raises(ValueError, match="same examples"):
        ex.data_efficiency({"a": a, "b": b}, {"a": data, "b": (shuffled, test)}, (3,))
    with pytest.raises(ValueError, match="'b'"):
        ex.data_efficiency({"a": a, "b": b}, {"a": data}, (3,))


def test_a_failing_method_is_named_with_its_shot(data):
    def broken(train: Split, test: Split) -> dict:
        if len(train) > 6:
            raise RuntimeError("out of memory")
        return Recorder()(train, test)

    with pytest.raises(ex.ExperimentError, match=r"'broken'.*4 examples per class.*out of memory"):
        ex.data_efficiency({"broken": broken}, data, shots=(2, 4), progress=False)


@pytest.mark.parametrize(
    "output, match",
    [({"accuracy": 1.0}, "logits"), ({"logits": torch.zeros(21, 2)}, r"\(21, 3\)")],
)
def test_bad_method_output_is_explained(data, output, match):
    with pytest.raises(ex.ExperimentError, match=match):
        ex.data_efficiency({"m": lambda tr, te: output}, data, shots=(1,), progress=False)


def test_impossible_shot_is_rejected_up_front(data):
    with pytest.raises(ValueError, match="smallest class has 12"):
        ex.data_efficiency({"a": Recorder()}, data, shots=(5, 13))
    with pytest.raises(ValueError, match="no methods"):
        ex.data_efficiency({}, data, shots=(1,))


def test_linear_probe_learns_separable_features(data):
    train, test = data
    head, history = ex.linear_probe(train.x, train.y, 3, min_steps=60, lr=0.05, device="cpu")
    assert history.steps[-1] < history.steps[0]
    with torch.no_grad():
        assert (head(test.x).argmax(1) == test.y).float().mean() > 0.9
    n_linear = sum(p.numel() for p in head.parameters())
    assert n_linear == 6 * 3 + 3, "only the linear layer trains; standardisation is buffers"


def test_choose_probe_lr_picks_the_rate_that_scores_best_on_validation(data):
    """A rate so small the head barely moves loses to one that learns; every rate is scored."""
    from coursekit.experiments.probes import choose_probe_lr

    train, val = data
    best, scores = choose_probe_lr((train.x, train.y), (val.x, val.y), 3, lrs=(1e-6, 0.05),
                                   min_steps=40, epochs=1)  # fmt: skip
    assert set(scores) == {1e-6, 0.05} and best == 0.05
    assert scores[0.05] > 0.9 > scores[1e-6]
    tied, _ = choose_probe_lr((train.x, train.y), (train.x, train.y), 3, lrs=(0.5, 0.05),
                              min_steps=40, epochs=1)  # fmt: skip
    assert tied == 0.05  # both fit the training features perfectly: the smaller rate


def test_probe_survives_constant_features():
    """With few examples some features are constant; they must not explode on test data."""
    x = torch.randn(6, 4)
    x[:, 0] = 0.0  # a dead feature in training...
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    head, _ = ex.linear_probe(x, y, 3, min_steps=5, device="cpu")
    test = torch.randn(3, 4)
    test[:, 0] = 5.0  # ... that fires at test time
    assert head(test).abs().max() < 1e3


def test_probe_and_train_method_report_their_cost(data):
    train, test = data
    probe = ex.probe_method(min_steps=20, lr=0.05, device="cpu")
    torch.manual_seed(0)
    mlp = ex.train_method(
        lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)),
        lambda split, train: torch.utils.data.TensorDataset(split.x, split.y),
        epochs=2,
        lr=1e-2,
        batch_size=8,
        device="cpu",
    )
    rows = ex.data_efficiency({"probe": probe, "mlp": mlp}, data, shots=(4,), progress=False)
    p, m = rows
    assert p["backbone_passes"] == 0 and p["trainable_params"] == 6 * 3 + 3
    assert p["epochs"] == 30  # 12 examples, batch 64: 1 step per epoch; 30 epochs >= 20 steps
    assert m["epochs"] == 2 and m["examples_processed"] == m["backbone_passes"] == 2 * 12
    assert m["trainable_params"] == 6 * 16 + 16 + 32 + 16 * 3 + 3
    assert p["accuracy"] > 0.8


def test_optimizer_steps_under_gradient_accumulation():
    assert optimizer_steps(9, 3, 1) == 9
    assert optimizer_steps(9, 3, 2) == 6  # 3 epochs of 3 batches: steps after batches 2 and 3
    assert optimizer_steps(4, 3, 2) == 3  # one epoch (2 steps), then 1 batch of the next
    assert optimizer_steps(8, 4, 4) == 2


def test_gradient_accumulation_keeps_the_optimizer_steps(data):
    """Micro-batches of 4 accumulated twice: the steps of batch 8, half the batch in memory."""

    def method(batch_size, accum):
        return ex.train_method(
            lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)),
            lambda split, train: torch.utils.data.TensorDataset(split.x, split.y),
            epochs=2, lr=1e-2, min_steps=6, batch_size=batch_size, grad_accum_steps=accum,
            device="cpu",
        )  # fmt: skip

    methods = {"batch 8": method(8, 1), "4 x 2": method(4, 2)}
    big, small = ex.data_efficiency(methods, data, shots=(4,), progress=False)
    # 12 examples: 2 steps per epoch either way (3 micro-batches of 4 make 2 steps); 3 epochs
    assert big["epochs"] == small["epochs"] == 3
    assert big["optimizer_steps"] == small["optimizer_steps"] == 6


def test_recalibrate_batchnorm_matches_the_data():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    x = torch.randn(40, 3) * 3 + 2
    names = recalibrate_batchnorm(model, [(x[:20], None), (x[20:], None)], device="cpu")
    assert names == ["1"] and model.training, "train mode restored"
    with torch.no_grad():
        h = model[0](x)
    bn = model[1]
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert bn.momentum == 0.1, "momentum restored"
    assert recalibrate_batchnorm(nn.Linear(2, 2), [], device="cpu") == []


def test_image_batches_gives_image_datasets_batched_by_the_method():
    split = Split(torch.arange(10, dtype=torch.uint8)[:, None, None].expand(10, 4, 4), range(10))
    to_data = ex.image_batches(8, 0.5, 0.5)
    data = to_data(split, True)
    assert isinstance(data, ImageDataset) and data[0][0].shape == (3, 8, 8)
    with pytest.warns(DeprecationWarning, match="batch_size"):
        ex.image_batches(8, 0.5, 0.5, batch_size=4)


def test_aggregate_and_markdown():
    rows = [
        {"method": "a", "shots": 5, "seed": s, "accuracy": acc, "note": "x"}
        for s, acc in ((0, 0.5), (1, 0.7))
    ]
    (agg,) = ex.aggregate(rows)
    assert agg["accuracy"] == pytest.approx(0.6) and agg["accuracy_std"] == pytest.approx(0.1)
    assert agg["runs"] == 2 and "seed" not in agg and "note" not in agg
    table = ex.to_markdown(rows, ["method", "accuracy"])
    assert table.splitlines() == [
        "| method | accuracy |",
        "|---|---|",
        "| a | 0.500 |",
        "| a | 0.700 |",
    ]
    assert ex.to_markdown([]) == "(no rows)"


def test_plots_draw_one_panel_per_task(data):
    from coursekit.viz import plot_data_efficiency, plot_time_to_accuracy

    rows = ex.data_efficiency({"a": Recorder()}, data, shots=(1, 3), progress=False)
    for r, task in zip(rows, ["x", "y"], strict=True):
        r["task"] = task
    fig = plot_data_efficiency(rows, chance=1 / 3)
    assert [ax.get_title() for ax in fig.axes] == ["x", "y"]
    assert len(plot_time_to_accuracy(rows).axes) == 2
    with pytest.raises(ValueError, match="no rows"):
        plot_data_efficiency([])


def test_from_scratch_is_the_same_architecture_with_random_weights():
    require_asset("efficientnet_lite0")
    from coursekit.models import load_pretrained

    pre = load_pretrained("efficientnet_lite0", num_classes=4)
    torch.manual_seed(0)
    scratch = ex.from_scratch("efficientnet_lite0", 4)
    assert scratch.coursekit_init == "random"
    a, b = pre.state_dict(), scratch.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    assert not torch.allclose(a["_conv_stem.weight"], b["_conv_stem.weight"])
    with pytest.raises(ValueError, match="from_scratch knows"):
        ex.from_scratch("resnet9000", 2)


@pytest.mark.slow
def test_minilm_from_scratch_matches_the_pretrained_config():
    require_asset("minilm")
    from coursekit.models import load_pretrained

    pre = load_pretrained("minilm", num_classes=5)
    scratch = ex.from_scratch("minilm", 5)
    assert scratch.config.num_hidden_layers == pre.config.num_hidden_layers == 6
    assert sum(p.numel() for p in scratch.parameters()) == sum(p.numel() for p in pre.parameters())
    w = "bert.embeddings.word_embeddings.weight"
    assert not torch.allclose(scratch.state_dict()[w], pre.state_dict()[w])
