"""Freezing recipes compared fairly: the same images, steps and seeds for each (lesson 04).

A `Recipe` says what learns and how fast: the head alone, or the head with the last k blocks
(the blocks at a lower rate than the head: they are pre-trained, the head is new), all at once or
opened one group at a time (gradual unfreezing), with frozen BatchNorm layers in eval mode or left
in train mode (the trap). `run_recipe` trains one recipe with one seed, `run_recipes` several
recipes over the same seeds: with a seed, every recipe starts from the same new head and sees
the batches in the same order, so two recipes can be compared seed by seed on the same test set
(`compare.difference`, a `claims.paired` measure), which is sharper than comparing two means.

Training runs on `CachedSplits`: the activations below the lowest layer any recipe trains,
computed once (`freezing.cached`), so the frozen stem and early blocks cost one forward pass in
total instead of one per step. Only the trap (`bn="train"`) runs its frozen layers at every step:
that is the point of it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from ..heads import find_head, init_head
from ..params import count_parameters
from ..runtime.device import seed_everything
from ..training.callbacks import Callback, FitState, StepLimit
from ..training.evaluation import predict
from ..training.history import History
from ..training.loop import fit
from ..training.optim import make_optimizer
from .by_name import BN_MODES, freeze_all_but_head
from .cached import CachedSplits
from .layerwise import GradualUnfreezing, unfreeze_last
from .split import Above, Below, stage_names

__all__ = ["Recipe", "RecipeRun", "Setup", "run_recipe", "run_recipes", "setup"]


@dataclass(frozen=True)
class Recipe:
    """What learns, and how fast.

    blocks: 0 trains the head alone (`_fc`, as `freeze_all_but_head`); k >= 1 trains the head,
        the head convolution and the last k blocks (`unfreeze_last(model, k)`).
    lr: the head's learning rate. body_lr: the pre-trained layers' rate (default lr / 10).
    gradual: start with the head alone and open one more group (the head convolution, then one
        block at a time, from the top) every `gradual` epochs, down to `blocks` blocks.
    bn: "eval" (frozen BatchNorm keeps its pre-trained statistics) or "train" (the trap: the
        frozen layers run at every step with BatchNorm in train mode; only with blocks=0).
    """

    blocks: int = 0
    lr: float = 1e-3
    body_lr: float | None = None
    gradual: int | None = None
    bn: str = "eval"

    def __post_init__(self) -> None:
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 0:
            raise ValueError(f"blocks must be a whole number >= 0, got {self.blocks!r}")
        if self.lr <= 0 or (self.body_lr is not None and self.body_lr <= 0):
            raise ValueError("learning rates must be positive")
        if self.bn not in BN_MODES:
            raise ValueError(f"bn must be one of {BN_MODES}, got {self.bn!r}")
        if self.bn == "train" and self.blocks:
            raise ValueError("bn='train' (the trap) is for the head alone: use blocks=0")
        if self.gradual is not None and (self.gradual < 1 or not self.blocks):
            raise ValueError("gradual needs every >= 1 epochs and blocks >= 1 to open")

    @property
    def rate_of_body(self) -> float:
        return self.body_lr if self.body_lr is not None else self.lr / 10

    @property
    def label(self) -> str:
        what = (
            "head alone"
            if not self.blocks
            else f"last {self.blocks} block" + "s" * (self.blocks > 1)
        )
        if self.gradual:
            what += f", gradual (one more group every {self.gradual} epochs)"
        return what + (", frozen BatchNorm in train mode" if self.bn == "train" else "")


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Setup:
    """A recipe ready to train: `net` (what `fit` trains), `model` (the network whose weights
    change), the optimizer's param groups, the data `net` takes and the recipe's callbacks."""

    net: nn.Module
    model: nn.Module
    groups: list[dict]
    data: dict[str, Dataset]
    callbacks: list[Callback]


def _groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """The head at `lr` first (lr_find moves the first group), the trainable body at body_lr."""
    head = set(find_head(model)[1].parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if p in head], "lr": recipe.lr, "name": "head"}]
    body = [p for p in trainable if p not in head]
    if body:
        groups.append({"params": body, "lr": recipe.rate_of_body, "name": "body"})
    return groups


def setup(recipe: Recipe, data: CachedSplits, seed: int = 0, batch_size: int = 32) -> Setup:
    """A fresh copy of the pre-trained model with a new head drawn with `seed`, frozen as the
    recipe says, split at the lowest layer it will ever train."""
    model = copy.deepcopy(data.model)
    seed_everything(seed)
    init_head(find_head(model)[1])
    if recipe.blocks and not recipe.gradual:
        unfreeze_last(model, recipe.blocks)
    else:
        freeze_all_but_head(model)
    names = stage_names(model)
    at = names[names.index("_fc") if not recipe.blocks else len(names) - 2 - recipe.blocks]
    callbacks: list[Callback] = []
    if recipe.gradual:
        callbacks.append(
            GradualUnfreezing(every=recipe.gradual, lr=recipe.rate_of_body, blocks=recipe.blocks)
        )
    if recipe.bn == "train":
        freeze_all_but_head(model, bn="train")
        net: nn.Module = nn.Sequential(Below(model, at, bn="train"), Above(model, at))
        return Setup(net, model, _groups(model, recipe), data.images(), callbacks)
    groups = _groups(model, recipe)
    return Setup(Above(model, at), model, groups, data.batches(at, batch_size), callbacks)


class _Keep(Callback):
    """Keeps a reference to the run's History, so a run that diverges still has its curves."""

    def on_fit_start(self, state: FitState) -> None:
        self.history = state.history


@dataclass
class RecipeRun:
    """One recipe trained with one seed: its curves, its test results, what it cost."""

    recipe: Recipe
    seed: int
    history: History
    correct: torch.Tensor  # 1.0 / 0.0 per test example
    steps: int
    seconds: float  # training time, wall clock
    trainable: int  # parameters trainable at the end
    frozen_unchanged: bool  # every weight frozen at the end is bit-identical to the start
    stem_stats_drift: float  # relative change of the stem BatchNorm's running mean
    unfrozen: list[dict]  # GradualUnfreezing's log: what opened when
    diverged: bool  # the loss became NaN / inf: training stopped, every test answer counts wrong
    val_examples: int  # the size of the validation set behind history's val_accuracy

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def run_recipe(
    recipe: Recipe,
    data: CachedSplits,
    seed: int = 0,
    *,
    epochs: int,
    steps: int | None = None,
    batch_size: int = 32,
) -> RecipeRun:
    """Train `recipe` on `data` with `seed` for `epochs` (validation after each; at most `steps`
    optimizer steps if given) and test it."""
    s = setup(recipe, data, seed, batch_size)
    start = {n: p.detach().clone() for n, p in s.model.named_parameters()}
    stem_mean = s.model._bn0.running_mean.clone()
    keep, optimizer = _Keep(), make_optimizer(s.groups, device=data.device)
    limit = [StepLimit(steps)] if steps is not None else []
    seed_everything(seed)
    t0, diverged = time.perf_counter(), False
    try:
        val = s.data.get("val") if len(data.splits["val"]) else None
        fit(s.net, s.data["train"], val, epochs=epochs, optimizer=optimizer,
            batch_size=batch_size, device=data.device, callbacks=[keep, *s.callbacks, *limit],
            progress=False)  # fmt: skip
    except FloatingPointError:
        diverged = True
    seconds = time.perf_counter() - t0
    logits, labels = predict(s.net, s.data["test"], data.device)
    correct = (logits.argmax(1) == labels).float() * (not diverged)
    unchanged = all(
        torch.equal(p.detach().cpu(), start[n])
        for n, p in s.model.named_parameters()
        if not p.requires_grad
    )
    drift = float((s.model._bn0.running_mean.cpu() - stem_mean.cpu()).norm() / stem_mean.norm())
    gradual = next((c for c in s.callbacks if isinstance(c, GradualUnfreezing)), None)
    return RecipeRun(
        recipe, seed, keep.history, correct, len(keep.history.steps), seconds,
        count_parameters(s.model).trainable, unchanged, drift,
        list(gradual.log) if gradual else [], diverged, len(data.splits["val"]),
    )  # fmt: skip


def run_recipes(
    recipes: Mapping[str, Recipe],
    data: CachedSplits,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    epochs: int,
    steps: int | None = None,
    batch_size: int = 32,
) -> dict[str, list[RecipeRun]]:
    """Every recipe with every seed: {name: [RecipeRun per seed]}."""
    kw = {"epochs": epochs, "steps": steps, "batch_size": batch_size}
    return {name: [run_recipe(r, data, s, **kw) for s in seeds] for name, r in recipes.items()}
