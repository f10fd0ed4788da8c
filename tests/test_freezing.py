"""Freezing, the BatchNorm trap, depth-wise unfreezing, discriminative rates and the LR finder.

The core promise is checked bit for bit: what is frozen does not change, not even its BatchNorm
statistics (unless asked to show the trap), and the LR range test leaves the model as it found it.
"""

from __future__ import annotations

import copy

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset
from transformers import BertForSequenceClassification

from coursekit.freezing import (
    GradualUnfreezing,
    blocks_of,
    depth_groups,
    freeze,
    freeze_all_but_head,
    freeze_batchnorm,
    param_groups,
    set_bn_eval,
    trainable_table,
    unfreeze,
    unfreeze_last,
)
from coursekit.measure.lr_finder import lr_find, plot_lr_find, suggest_lr
from coursekit.params import count_parameters
from coursekit.training import fit

from conftest import require_asset
from helpers import blobs, mlp, tiny_bert_config

FIT = dict(batch_size=16, progress=False, device="cpu")


class TinyNet(nn.Module):
    """stem -> 3 blocks (conv-BN-ReLU) in an nn.ModuleList -> pool -> fc: a CNN in miniature."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
            for _ in range(3)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.fc(self.pool(x).flatten(1))


def colour_images(n: int = 48, seed: int = 0) -> TensorDataset:
    """Learnable: the label is the channel that was brightened. Mean 0.5 shifts BN statistics."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.rand(n, 3, 8, 8, generator=g) + 0.5
    x[torch.arange(n), y] += 1.0
    return TensorDataset(x, y)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict, model: nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}


def numel(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def tiny_bert(layers: int = 4) -> nn.Module:
    torch.manual_seed(0)
    config = tiny_bert_config(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=layers,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    return BertForSequenceClassification(config)


@pytest.fixture(scope="module")
def pretrained_effnet():
    require_asset("efficientnet_lite0")
    from coursekit.models import load_pretrained

    torch.manual_seed(0)
    return load_pretrained("efficientnet_lite0", num_classes=3)


@pytest.fixture
def effnet(pretrained_effnet) -> nn.Module:
    """A fresh copy of the real pre-trained EfficientNet-Lite0 (with a new 3-class head)."""
    return copy.deepcopy(pretrained_effnet)


# --- freeze / unfreeze and the BatchNorm trap ------------------------------------------------


def test_frozen_weights_and_batchnorm_stats_are_bit_identical_after_fit():
    model = TinyNet()
    names = freeze(model, ["stem*", "blocks*"])
    assert names and all(not n.startswith("fc") for n in names)
    before = snapshot(model)
    fit(model, colour_images(), epochs=2, lr=1e-2, **FIT)
    assert changed(before, model) == {"fc.weight", "fc.bias"}


def test_the_batchnorm_trap_frozen_parameters_but_moving_statistics():
    model = TinyNet()
    freeze(model, ["stem*", "blocks*"], bn="train")
    before = snapshot(model)
    fit(model, colour_images(), epochs=1, lr=1e-2, **FIT)
    moved = changed(before, model)
    assert "stem.1.running_mean" in moved and "blocks.2.1.running_var" in moved
    assert not any(k.endswith(("weight", "bias")) and not k.startswith("fc") for k in moved)


def test_freeze_batchnorm_keeps_bn_fixed_while_convolutions_train():
    model = TinyNet()
    bns = freeze_batchnorm(model)
    assert bns == ["stem.1", "blocks.0.1", "blocks.1.1", "blocks.2.1"]
    before = snapshot(model)
    fit(model, colour_images(), epochs=1, lr=1e-2, **FIT)
    moved = changed(before, model)
    assert "blocks.0.0.weight" in moved and "fc.weight" in moved
    assert not [k for k in moved if k.rpartition(".")[0] in bns], moved


def test_unfrozen_batchnorm_learns_and_tracks_statistics_again():
    model = TinyNet()
    freeze(model)
    unfreeze(model)
    before = snapshot(model)
    fit(model, colour_images(), epochs=1, lr=1e-2, **FIT)
    assert {"stem.1.running_mean", "stem.1.weight", "blocks.1.0.weight"} <= changed(before, model)


def test_bn_train_undoes_an_earlier_bn_eval():
    model = TinyNet()
    freeze(model, "blocks*")
    freeze(model, "blocks.1", bn="train")
    before = snapshot(model)
    fit(model, colour_images(), epochs=1, lr=1e-2, **FIT)
    moved = changed(before, model)
    assert "blocks.1.1.running_mean" in moved
    assert not [k for k in moved if k.startswith(("blocks.0", "blocks.2"))]


def test_set_bn_eval_is_a_one_off_for_frozen_bn_only():
    model = TinyNet()
    freeze(model, "blocks.0", bn="train")
    model.train()
    assert set_bn_eval(model) == ["blocks.0.1"]
    assert not model.blocks[0][1].training and model.blocks[1][1].training


def test_patterns_glob_regex_and_parameter_names():
    model = TinyNet()
    assert freeze(model, "re:blocks\\.[12]") == [
        "blocks.1.0.weight",
        "blocks.1.1.weight",
        "blocks.1.1.bias",
        "blocks.2.0.weight",
        "blocks.2.1.weight",
        "blocks.2.1.bias",
    ]
    assert freeze(model, "*.bias") == [
        "stem.1.bias",
        *(f"blocks.{i}.1.bias" for i in range(3)),
        "fc.bias",
    ]
    assert count_parameters(model).trainable == 8 * 27 + 8 + 8 * 72 + 8 + 24
    assert len(freeze(model)) == len(list(model.parameters()))
    assert count_parameters(model).trainable == 0
    assert len(unfreeze(model)) == len(list(model.parameters()))
    assert count_parameters(model).frozen == 0


def test_a_pattern_that_matches_nothing_is_a_clear_error():
    model = TinyNet()
    with pytest.raises(ValueError, match=r"'block\.\*' matches no module.*Did you mean.*blocks"):
        freeze(model, "block.*")
    with pytest.raises(ValueError, match="stem, stem.0, stem.1, blocks"):
        unfreeze(model, ["fc", "re:head"])  # every pattern must match
    assert count_parameters(model).frozen == 0  # nothing was changed by the failed calls
    with pytest.raises(ValueError, match="bn must be one of"):
        freeze(model, bn="frozen")


# --- depth: blocks, unfreeze_last, depth_groups ----------------------------------------------


def test_efficientnet_freeze_all_but_head_trains_only_the_head(effnet):
    model = effnet
    assert freeze_all_but_head(model) == ["_fc.weight", "_fc.bias"]
    assert count_parameters(model).trainable == 1280 * 3 + 3
    before = snapshot(model)
    data = TensorDataset(torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    fit(model, data, epochs=1, lr=1e-2, batch_size=4, progress=False, device="cpu")
    assert changed(before, model) == {"_fc.weight", "_fc.bias"}  # BN stats included


def test_efficientnet_unfreeze_last_k_counts_are_exact(effnet):
    model = effnet
    blocks = blocks_of(model)
    assert [n for n, _ in blocks] == [f"_blocks.{i}" for i in range(16)]
    top = numel(model._conv_head, model._bn1, model._fc)
    for k in (0, 1, 5, 16):
        unfreeze_last(model, k)
        expected = top + numel(*(m for _, m in blocks[16 - k :]))
        assert count_parameters(model).trainable == expected, k
    assert count_parameters(model).frozen == numel(model._conv_stem, model._bn0)
    with pytest.raises(ValueError, match="from 0 to 16"):
        unfreeze_last(model, 17)


def test_bert_unfreeze_last_k_counts_are_exact():
    model = tiny_bert(layers=4)
    layers = model.bert.encoder.layer
    assert [n for n, _ in blocks_of(model)] == [f"bert.encoder.layer.{i}" for i in range(4)]
    top = numel(model.bert.pooler, model.classifier)
    for k in range(5):
        trainable = unfreeze_last(model, k)
        assert count_parameters(model).trainable == top + numel(*layers[4 - k :]), k
        assert ("bert.encoder.layer.3.output.dense.weight" in trainable) == (k >= 1)
    assert count_parameters(model).frozen == numel(model.bert.embeddings)


def test_real_minilm_has_six_blocks_and_unfreezes_the_last_two():
    require_asset("minilm")
    from coursekit.models import load_pretrained

    model = load_pretrained("minilm", num_classes=4)
    assert len(blocks_of(model)) == 6
    unfreeze_last(model, 2)
    expected = numel(*model.bert.encoder.layer[4:], model.bert.pooler, model.classifier)
    assert count_parameters(model).trainable == expected


def test_depth_groups_partition_every_parameter_once():
    model = tiny_bert(layers=3)
    groups = depth_groups(model)
    labels = [label for label, _ in groups]
    assert labels == [
        "top (bert.pooler, classifier)",
        "bert.encoder.layer.2",
        "bert.encoder.layer.1",
        "bert.encoder.layer.0",
        "bottom (bert.embeddings)",
    ]
    names = [n for _, g in groups for n in g]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())


def test_a_bare_encoder_has_depth_groups_but_no_head_to_keep():
    encoder = tiny_bert(layers=2).bert  # BertModel: no classifier
    assert [label for label, _ in depth_groups(encoder)][0] == "top (pooler)"
    with pytest.raises(ValueError, match="no classification head found"):
        freeze_all_but_head(encoder)
    assert count_parameters(encoder).frozen == 0  # the failed call froze nothing
    assert freeze_all_but_head(encoder, name="pooler.dense") == [
        "pooler.dense.weight",
        "pooler.dense.bias",
    ]


def test_models_without_a_block_list_get_a_clear_error():
    with pytest.raises(ValueError, match="freeze by name instead"):
        blocks_of(mlp())


# --- discriminative learning rates -----------------------------------------------------------


def test_param_groups_decrease_towards_the_input_and_cover_trainables_once(effnet):
    model = effnet
    unfreeze(model)
    groups = param_groups(model, lr=1e-3, decay=0.7, head_lr=1e-2)
    lrs = [g["lr"] for g in groups]
    assert len(groups) == 18  # top, 16 blocks, stem
    assert lrs[0] == 1e-2 and lrs[1] == pytest.approx(7e-4)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))

    unfreeze_last(model, 3)
    groups = param_groups(model, lr=1e-3)
    assert [g["name"] for g in groups][1:] == ["_blocks.15", "_blocks.14", "_blocks.13"]
    ids = {id(p) for g in groups for p in g["params"]}
    assert ids == {id(p) for p in model.parameters() if p.requires_grad}
    torch.optim.AdamW(groups)  # accepted as is
    with pytest.raises(ValueError, match="decay"):
        param_groups(model, 1e-3, decay=1.5)


# --- gradual unfreezing ----------------------------------------------------------------------


def test_gradual_unfreezing_adds_a_block_each_epoch_and_trains_it():
    model = TinyNet()
    freeze_all_but_head(model)
    before = snapshot(model)
    schedule = GradualUnfreezing()
    fit(model, colour_images(), epochs=4, lr=1e-2, callbacks=[schedule], **FIT)
    assert [e["unfrozen"] for e in schedule.log] == ["blocks.2", "blocks.1", "blocks.0"]
    counts = [27, *(e["trainable"] for e in schedule.log)]
    assert counts == [27, 27 + 592, 27 + 2 * 592, 27 + 3 * 592]
    moved = changed(before, model)
    assert {"blocks.0.0.weight", "blocks.1.1.weight", "blocks.2.0.weight"} <= moved
    assert not any(k.startswith("stem") for k in moved)  # never unfrozen: 4 epochs, 3 steps
    assert "blocks.0.1.running_mean" in moved  # an unfrozen BN tracks statistics again


def test_gradual_unfreezing_with_an_optimizer_over_all_parameters():
    model = TinyNet()
    freeze_all_but_head(model)
    optimizer = torch.optim.AdamW(param_groups(model, 1e-2, include_frozen=True))
    n_groups = len(optimizer.param_groups)
    before = snapshot(model)
    fit(
        model,
        colour_images(),
        epochs=2,
        optimizer=optimizer,
        callbacks=[GradualUnfreezing()],
        **FIT,
    )
    assert len(optimizer.param_groups) == n_groups  # nothing needed adding
    assert "blocks.2.0.weight" in changed(before, model)
    assert "blocks.1.0.weight" not in changed(before, model)


def test_gradual_unfreezing_is_replayed_when_fit_resumes(tmp_path):
    def run(epochs):
        model = TinyNet()
        freeze_all_but_head(model)
        optimizer = torch.optim.AdamW(param_groups(model, 1e-2, include_frozen=True))
        schedule = GradualUnfreezing()
        kwargs = dict(optimizer=optimizer, callbacks=[schedule], checkpoint_dir=tmp_path)
        fit(model, colour_images(), epochs=epochs, **kwargs, **FIT)
        return model, schedule

    run(epochs=2)  # "interrupted" after 2 of 3 epochs: blocks.2 was unfrozen after epoch 1
    model, schedule = run(epochs=3)
    assert [e["unfrozen"] for e in schedule.log] == ["blocks.2", "blocks.1"]
    assert count_parameters(model).trainable == 27 + 2 * 592


def test_trainable_table_lists_modules_and_a_total():
    model = TinyNet()
    freeze(model, "stem")
    table = trainable_table(model)
    assert "stem" in table.splitlines()[1] and "0.0%" in table.splitlines()[1]
    total = table.splitlines()[-1].split()
    assert total[0] == "total" and total[1] == f"{numel(model):,}"


# --- the learning-rate range test ------------------------------------------------------------


def test_lr_find_restores_everything_and_suggests_a_useful_rate():
    model = mlp()
    before = snapshot(model)
    torch.manual_seed(5)
    expected_next_random = torch.rand(3)
    torch.manual_seed(5)
    result = lr_find(model, blobs(), start_lr=1e-5, end_lr=10, num_iter=50, device="cpu")
    assert torch.equal(torch.rand(3), expected_next_random)  # the random state too
    assert not changed(before, model)
    assert 1e-5 < result.suggestion < 10 and len(result.lrs) == len(result.losses) > 10
    assert min(result.losses) < 0.7 * result.losses[0]
    assert result.diverged  # at lr=10 AdamW blows up this problem
    history = fit(model, blobs(), epochs=2, lr=result.suggestion, progress=False, device="cpu")
    assert history.metric("train_loss")[-1] < 0.5 * result.losses[0]


def test_lr_find_restores_batchnorm_stats_and_a_used_optimizer():
    model = TinyNet()
    optimizer = torch.optim.AdamW(param_groups(model, 1e-3, decay=0.5))
    fit(model, colour_images(), epochs=1, optimizer=optimizer, **FIT)
    before, state = snapshot(model), optimizer.state_dict()
    opt_before = {k: v.clone() for k, v in state["state"][0].items()}
    lrs_before = [g["lr"] for g in optimizer.param_groups]
    result = lr_find(model, colour_images(), optimizer=optimizer, num_iter=20, batch_size=16)
    assert not changed(before, model)
    assert [g["lr"] for g in optimizer.param_groups] == lrs_before
    for k, v in optimizer.state_dict()["state"][0].items():
        assert torch.equal(v, opt_before[k]), k
    assert len(result.lrs) <= 20


def test_suggest_lr_picks_the_steepest_descent():
    lrs = [10.0**e for e in range(-6, 1)]
    losses = [2.0, 2.0, 1.9, 1.0, 0.8, 0.7, 5.0]
    assert suggest_lr(lrs, losses, skip_start=0) == pytest.approx(1e-3)
    assert suggest_lr(lrs[:2], [1.0, 0.5]) == pytest.approx(1e-6)  # too short: min / 10


def test_plot_lr_find_marks_the_suggestion():
    result = lr_find(mlp(), blobs(), start_lr=1e-4, end_lr=1, num_iter=20, device="cpu")
    fig = plot_lr_find(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "suggestion" in ax.get_legend_handles_labels()[1][2]
