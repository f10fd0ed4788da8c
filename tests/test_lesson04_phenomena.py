"""Lesson 04 shows what it teaches, in quick mode over 3 seeds (issue 22).

The lesson's experiment as the notebook runs it in quick mode (Fashion-MNIST at 32 px, 200
training images per class, EfficientNet-Lite0, 8 epochs on cached activations), asserting each of
its phenomena with `claims.shows` (which raises on a tie or a contradiction), so a change that makes
the lesson stop showing them fails here:

1. the last block at a tenth of the head's rate beats the head alone (each at its own rate, the
   head's chosen on validation), paired over the seeds on the same test images, once there are
   enough steps: after one epoch the head alone is still ahead;
2. frozen BatchNorm kept in eval mode beats frozen BatchNorm left in train mode (the trap);
3. the LR range test's pick, run on the configuration that is then trained, trains better than
   the rate where its loss blew up;
4. gradual unfreezing opens a block, not only the top.

About 3 CPU minutes.
"""

from __future__ import annotations

import pytest

from coursekit.claims import shows
from coursekit.datasets import load_fashion_mnist, per_class
from coursekit.freezing import (
    CachedSplits,
    Recipe,
    best_by_validation,
    difference,
    lowest_trainable,
    run_recipes,
    setup,
    unfreeze_last,
    val_accuracy,
)
from coursekit.measure.lr_finder import lr_find
from coursekit.models import load_pretrained, normalization_for
from coursekit.training.optim import make_optimizer

from conftest import require_asset

SIZE, EPOCHS, SEEDS = 32, 8, (0, 1, 2)  # the lesson's quick mode


@pytest.fixture(scope="module")
def data() -> CachedSplits:
    require_asset("efficientnet_lite0")
    require_asset("fashion_mnist")
    fmnist = load_fashion_mnist(seed=0)
    sizes = {"train": 200, "val": 50, "test": 200}
    splits = {n: per_class(getattr(fmnist, n), k, seed=0) for n, k in sizes.items()}
    model = load_pretrained("efficientnet_lite0", num_classes=10)
    probe = load_pretrained("efficientnet_lite0", num_classes=10)
    unfreeze_last(probe, 1)
    mean, std = normalization_for("efficientnet_lite0")
    return CachedSplits.build(model, splits, lowest_trainable(probe), size=SIZE, mean=mean, std=std)


@pytest.mark.slow
def test_lesson04_shows_its_phenomena_over_three_seeds(data):
    heads = {r: Recipe(blocks=0, lr=r) for r in (1e-3, 3e-3, 1e-2, 3e-2)}
    grid = run_recipes(heads, data, SEEDS, epochs=EPOCHS)
    head_lr = best_by_validation(grid)

    probe = setup(Recipe(blocks=1), data, seed=0)
    finder = lr_find(probe.net, probe.data["train"], optimizer=make_optimizer(probe.groups),
                     start_lr=1e-5, end_lr=1, num_iter=100)  # fmt: skip
    lr = finder.min_lr_div10
    block = run_recipes({"b": Recipe(blocks=1, lr=lr)}, data, SEEDS, epochs=EPOCHS)["b"]
    shows("last block beats the head alone", difference(block, grid[head_lr]))
    shows("after one epoch the head alone is ahead", val_accuracy(grid[head_lr], 1),
          val_accuracy(block, 1))  # fmt: skip

    blown = run_recipes({"x": Recipe(blocks=1, lr=finder.lrs[-1])}, data, SEEDS, epochs=2)["x"]
    shows("the range test's pick trains", val_accuracy(block, 2), val_accuracy(blown, 2))

    bn = {m: Recipe(blocks=0, lr=head_lr, bn=m) for m in ("eval", "train")}
    trap = run_recipes(bn, data.subset(val=0, test=500), SEEDS, epochs=1, steps=20)
    shows("frozen BatchNorm in eval mode beats train mode", difference(trap["eval"], trap["train"]))

    gradual = run_recipes({"g": Recipe(blocks=1, lr=lr, gradual=3)}, data, SEEDS, epochs=EPOCHS)
    for run in gradual["g"]:  # the top, then block 15, in every seed
        opened = [e["unfrozen"] for e in run.unfrozen]
        assert any("_blocks.15" in o for o in opened), opened
