"""Frozen layers run once (freezing.split) and freezing recipes compared (freezing.recipes).

The promise of caching is exactness: the network split into `Below` (run once, cached) and
`Above` (trained) computes what the whole network computes, outputs and gradients alike, and
training `Above` changes exactly the weights the recipe unfroze.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_freezing import (  # the real EfficientNet fixture and the miniature CNN
    FIT,
    TinyNet,
    changed,
    colour_images,
    pretrained_effnet,  # noqa: F401 (a fixture)
    snapshot,
)
from torch import nn

from coursekit.datasets import Split, prepare_images
from coursekit.features import last_extraction
from coursekit.freezing import (
    Above,
    Below,
    CachedSplits,
    GradualUnfreezing,
    Recipe,
    activations,
    difference,
    freeze,
    freeze_all_but_head,
    lowest_trainable,
    run_recipe,
    stage_names,
    unfreeze_last,
)
from coursekit.freezing.cached import Batches
from coursekit.training.loop import fit

SIZE, MEAN, STD = 32, 127.0 / 255, 128.0 / 255


@pytest.fixture
def model(pretrained_effnet) -> nn.Module:  # noqa: F811 (the imported fixture)
    return copy.deepcopy(pretrained_effnet)


def images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)


def split(n: int, seed: int = 0) -> Split:
    return Split(images(n, seed), torch.arange(n) % 3)


def prepared(x: torch.Tensor) -> torch.Tensor:
    return prepare_images(x, SIZE, mean=MEAN, std=STD)


# --- the split itself ------------------------------------------------------------------------


def test_stage_names_run_from_the_stem_to_the_classifier(model):
    names = stage_names(model)
    assert names[0] == "stem" and names[-2:] == ["_conv_head", "_fc"]
    assert names[1:-2] == [f"_blocks.{i}" for i in range(16)]


@pytest.mark.parametrize("at", ["stem", "_blocks.0", "_blocks.13", "_conv_head", "_fc"])
def test_above_of_below_is_the_whole_network_in_eval_mode(model, at):
    freeze(model)
    x = prepared(images(6))
    model.eval()
    with torch.no_grad():
        whole = model(x)
        split_ = Above(model, at)(Below(model, at)(x))
    torch.testing.assert_close(split_, whole, rtol=0, atol=1e-5)


def test_cached_training_gives_the_gradients_of_the_whole_network(model):
    """Above on cached activations = the whole network with its frozen part in eval mode."""
    unfreeze_last(model, 1)
    at = lowest_trainable(model)
    assert at == "_blocks.15"
    x, y = images(8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    cached = activations(model, x, at, size=SIZE, mean=MEAN, std=STD)
    twin = copy.deepcopy(model)

    Above(model, at).train()
    torch.manual_seed(0)  # the same dropout and stochastic-depth masks in both
    nn.functional.cross_entropy(Above(model, at)(cached), y).backward()

    twin.train()
    Below(twin, at).eval()  # the frozen part in eval mode, as when it was cached
    torch.manual_seed(0)
    nn.functional.cross_entropy(twin(prepared(x)), y).backward()

    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    for name, p in twin.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6)
        else:
            assert p.grad is None


def test_lowest_trainable_follows_what_was_unfrozen(model):
    freeze_all_but_head(model)
    assert lowest_trainable(model) == "_fc"
    unfreeze_last(model, 0)
    assert lowest_trainable(model) == "_conv_head"
    unfreeze_last(model, 3)
    assert lowest_trainable(model) == "_blocks.13"
    freeze(model)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        lowest_trainable(model)


def test_below_refuses_to_cache_a_layer_that_learns(model):
    unfreeze_last(model, 2)
    with pytest.raises(ValueError, match="_blocks.14.*lowest_trainable.*_blocks.14"):
        Below(model, "_blocks.15")
    with pytest.raises(ValueError, match="no stage"):
        Below(model, "_blocks.16")
    with pytest.raises(TypeError, match="EfficientNet-Lite0"):
        Below(TinyNet(), "fc")


def test_activations_are_cached_by_weights_pixels_size_and_split(model):
    freeze(model)
    x = images(5)
    first = activations(model, x, "_blocks.14", size=SIZE, mean=MEAN, std=STD)
    again = activations(model, x, "_blocks.14", size=SIZE, mean=MEAN, std=STD)
    assert last_extraction()["source"] == "memory" and torch.equal(first, again)
    assert first.shape == (5, 192, 1, 1)
    assert activations(model, x, "_fc", size=SIZE, mean=MEAN, std=STD).shape == (5, 1280)
    assert last_extraction()["source"] == "computed"
    activations(model, x, "_blocks.14", size=48, mean=MEAN, std=STD)
    assert last_extraction()["source"] == "computed"
    with torch.no_grad():
        model._blocks[3]._bn1.running_mean += 1  # below the split: a new key
    activations(model, x, "_blocks.14", size=SIZE, mean=MEAN, std=STD)
    assert last_extraction()["source"] == "computed"


def test_activations_leave_the_models_modes_as_they_were(model):
    freeze(model)
    model.train()
    activations(model, images(3), "_blocks.10", size=SIZE, mean=MEAN, std=STD)
    assert all(m.training for m in model.modules())


def test_below_in_train_mode_is_the_trap_and_nothing_else(model):
    freeze(model)
    trap, fix = Below(model, "_fc", bn="train"), Below(model, "_fc")
    x = prepared(images(8))
    before = model._bn0.running_mean.clone()
    fix.train()
    with torch.no_grad():
        out = fix(x)
    assert torch.equal(model._bn0.running_mean, before)  # eval: statistics stay
    trap.train()
    assert not model._blocks[15].training  # stochastic depth stays off
    with torch.no_grad():
        a, b = trap(x), trap(x)
    assert not torch.equal(model._bn0.running_mean, before)  # the trap: they move
    assert not torch.allclose(a, out)  # batch statistics instead of the stored ones
    torch.testing.assert_close(a, b)  # but no randomness: only BatchNorm changed mode
    trap.eval()
    assert not any(m.training for m in trap.modules())


# --- batches ---------------------------------------------------------------------------------


def test_batches_cover_every_example_once_per_pass():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10)
    plain = Batches(x, y, batch_size=4)
    assert len(plain) == 3 and [len(b[1]) for b in plain] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in plain]), y)
    torch.manual_seed(0)
    shuffled = Batches(x, y, batch_size=4, shuffle=True)
    first = torch.cat([b[1] for b in shuffled])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, y)
    assert all(torch.equal(bx.view(-1).long(), by) for bx, by in shuffled)


# --- gradual unfreezing with a limit ---------------------------------------------------------


def test_gradual_unfreezing_stops_after_the_blocks_it_may_open():
    model = TinyNet()
    freeze_all_but_head(model)
    before = snapshot(model)
    schedule = GradualUnfreezing(blocks=1)
    fit(model, colour_images(), epochs=4, lr=1e-2, callbacks=[schedule], **FIT)
    assert [e["unfrozen"] for e in schedule.log] == ["blocks.2"]
    assert not any(k.startswith(("blocks.1", "blocks.0", "stem")) for k in changed(before, model))
    with pytest.raises(ValueError, match="blocks"):
        GradualUnfreezing(blocks=-1)


def test_a_copy_of_a_frozen_model_can_still_show_the_trap():
    """freeze(bn="eval")'s hook travels with copy.deepcopy; bn="train" must still undo it."""
    model = TinyNet()
    freeze(model, ["stem*", "blocks*"])
    twin = copy.deepcopy(model)
    freeze(twin, ["stem*", "blocks*"], bn="train")
    before = snapshot(twin)
    fit(twin, colour_images(), epochs=1, lr=1e-2, **FIT)
    assert "stem.1.running_mean" in changed(before, twin)


# --- recipes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(pretrained_effnet) -> CachedSplits:  # noqa: F811
    splits = {"train": split(48, 1), "val": split(12, 2), "test": split(30, 3)}
    return CachedSplits.build(
        pretrained_effnet, splits, "_blocks.14", size=SIZE, mean=MEAN, std=STD, device="cpu"
    )


def test_cached_splits_reach_any_split_above_the_cache(data):
    x = data.activations("_fc")
    assert {k: tuple(v.shape) for k, v in x.items()} == {
        "train": (48, 1280), "val": (12, 1280), "test": (30, 1280),
    }  # fmt: skip
    whole = data.model.eval()
    with torch.no_grad():
        expected = whole.features(prepared(data.splits["test"].x))
    torch.testing.assert_close(x["test"], expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="below the cached split"):
        data.activations("_blocks.3")
    small = data.subset(val=0, test=10)
    assert len(small.splits["val"]) == 0 and small.activations("_fc")["test"].shape[0] == 10


def test_recipes_change_exactly_what_they_unfreeze(data):
    head = run_recipe(Recipe(0, lr=1e-2), data, 0, epochs=1)
    block = run_recipe(Recipe(1, lr=1e-2), data, 0, epochs=1)
    assert head.frozen_unchanged and block.frozen_unchanged
    assert head.trainable == 1280 * 3 + 3
    assert block.trainable > head.trainable
    assert head.steps == block.steps == 2 and head.stem_stats_drift == 0.0
    assert len(head.correct) == 30 and set(head.correct.tolist()) <= {0.0, 1.0}
    assert [len(h.epochs) for h in (head.history, block.history)] == [1, 1]


def test_a_recipe_with_a_seed_is_reproducible_and_seeds_differ(data):
    a, b = (run_recipe(Recipe(1, lr=1e-2), data, 0, epochs=1) for _ in range(2))
    assert torch.equal(a.correct, b.correct) and a.history.steps == b.history.steps
    c = run_recipe(Recipe(1, lr=1e-2), data, 1, epochs=1)
    assert c.history.steps != a.history.steps
    with pytest.raises(ValueError, match="same seeds"):
        difference([a], [c])
    assert difference([a], [b]).mean == 0.0


def test_gradual_recipe_opens_blocks_in_order(data):
    run = run_recipe(Recipe(2, lr=1e-2, gradual=1), data, 0, epochs=4)
    opened = [e["unfrozen"] for e in run.unfrozen]
    assert opened[0].startswith("top") and opened[1:] == ["model._blocks.15", "model._blocks.14"]
    trainable = [e["trainable"] for e in run.unfrozen]
    assert trainable == sorted(trainable) and run.frozen_unchanged


def test_the_trap_recipe_moves_statistics_and_the_fix_does_not(data):
    small = data.subset(val=0, test=10)
    trap = run_recipe(Recipe(0, lr=1e-2, bn="train"), small, 0, epochs=1, steps=1)
    fix = run_recipe(Recipe(0, lr=1e-2), small, 0, epochs=1, steps=1)
    assert trap.steps == fix.steps == 1
    assert trap.stem_stats_drift > 0 and fix.stem_stats_drift == 0.0
    assert trap.frozen_unchanged and not trap.history.metric("val_accuracy")


def test_a_diverged_run_is_recorded_not_raised(data):
    run = run_recipe(Recipe(1, lr=1e12, body_lr=1e12), data, 0, epochs=2)
    assert run.diverged and run.accuracy == 0.0


def test_recipe_arguments_are_checked():
    with pytest.raises(ValueError, match="blocks"):
        Recipe(-1)
    with pytest.raises(ValueError, match="head alone"):
        Recipe(2, bn="train")
    with pytest.raises(ValueError, match="gradual"):
        Recipe(0, gradual=1)
    assert Recipe(3, lr=1e-3).rate_of_body == pytest.approx(1e-4)
    assert Recipe(1, gradual=2).label.startswith("last 1 block, gradual")
