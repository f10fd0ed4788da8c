"""Freezing recipes compared fairly: the same images, steps and seeds for each (lesson 04).

A `Recipe` says what learns and how fast: the head alone, or the head with the last k blocks
(the blocks at a lower rate than the head: they are pre-trained, the head is new), all at once or
opened one group at a time (gradual unfreezing), with frozen BatchNorm layers in eval mode or left
in train mode (the trap). `run_recipe` trains one recipe with one seed, `run_recipes` several
recipes over the same seeds: with a seed, every recipe starts from the same new head and sees
the batches in the same order, so two recipes can be compared seed by seed on the same test set
(`difference`, a `claims.paired` measure), which is sharper than comparing two means.

Training runs on `CachedSplits`: the activations below the lowest layer any recipe trains,
computed once (`freezing.split`), so the frozen stem and early blocks cost one forward pass in
total instead of one per step. Only the trap (`bn="train"`) runs its frozen layers at every step:
that is the point of it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..claims import Measure, fmt, over_seeds, paired
from ..datasets import Split, image_dataset
from ..device import resolve_device, seed_everything
from ..heads import find_head, init_head
from ..params import count_parameters
from ..training.callbacks import Callback, FitState, StepLimit
from ..training.evaluation import predict
from ..training.history import History
from ..training.loop import fit
from ..training.optim import make_optimizer
from .by_name import BN_MODES, freeze_all_but_head
from .layerwise import GradualUnfreezing, unfreeze_last
from .split import Above, Below, activations, stage_names

__all__ = [
    "CachedSplits",
    "Recipe",
    "RecipeRun",
    "Setup",
    "accuracy",
    "ahead",
    "best_by_validation",
    "difference",
    "histories",
    "run_recipe",
    "run_recipes",
    "setup",
    "summary",
    "table",
    "val_accuracy",
]

SPLITS = ("train", "val", "test")


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


# --- the data: activations below the split, computed once ------------------------------------


@dataclass
class CachedSplits:
    """Train / val / test images of one pre-trained `model`, and their activations below `at`.

    Built by `CachedSplits.build`; `batches(at)` gives mini-batches of the activations below any
    stage at or above `at` (running the frozen stages in between once), `images()` the images.
    """

    model: nn.Module
    splits: dict[str, Split]
    at: str
    size: int
    mean: Sequence[float] | float | None
    std: Sequence[float] | float | None
    device: torch.device
    _cached: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        model: nn.Module,
        splits: Mapping[str, Split],
        at: str,
        *,
        size: int,
        mean: Sequence[float] | float | None,
        std: Sequence[float] | float | None,
        device: torch.device | str | None = None,
        cache_dir: str | Path | None = None,
    ) -> CachedSplits:
        """Run the frozen layers of `model` below `at` once over each of `splits` ("train",
        "val", "test"): the only full forward passes any recipe on it will need."""
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"splits needs {', '.join(SPLITS)}; missing {', '.join(missing)}")
        model = copy.deepcopy(model).requires_grad_(False)  # everything below stays as loaded
        device = resolve_device(device)
        data = cls(model, {n: splits[n] for n in SPLITS}, at, size, mean, std, device)
        kw = {"size": size, "mean": mean, "std": std, "device": device, "cache_dir": cache_dir}
        data._cached[at] = {n: activations(model, s.x, at, **kw) for n, s in data.splits.items()}
        return data

    def subset(self, **sizes: int) -> CachedSplits:
        """The same data cut to the first `sizes[name]` examples of a split, e.g.
        `subset(val=0, test=500)` for runs too costly to validate (0: no validation)."""
        unknown = set(sizes) - set(SPLITS)
        if unknown or sizes.get("train", 1) < 1 or sizes.get("test", 1) < 1:
            raise ValueError(f"sizes are for {', '.join(SPLITS)} (train, test >= 1), got {sizes}")
        cut = {n: slice(0, sizes.get(n, len(s))) for n, s in self.splits.items()}
        splits = {n: s.subset(range(len(s))[cut[n]]) for n, s in self.splits.items()}
        cached = {at: {n: x[cut[n]] for n, x in xs.items()} for at, xs in self._cached.items()}
        fields = (self.model, splits, self.at, self.size, self.mean, self.std, self.device)
        return CachedSplits(*fields, cached)

    def activations(self, at: str) -> dict[str, torch.Tensor]:
        """{"train", "val", "test"}: the activations below `at` (CPU tensors)."""
        names = stage_names(self.model)
        if names.index(at) < names.index(self.at):
            raise ValueError(f"{at!r} lies below the cached split {self.at!r}: build it lower")
        if at not in self._cached:
            below = Below(self.model, at, start=self.at).eval().to(self.device)
            with torch.no_grad():
                self._cached[at] = {
                    n: _batched(below, x, self.device) for n, x in self._cached[self.at].items()
                }
        return self._cached[at]

    def batches(self, at: str, batch_size: int = 32) -> dict[str, Batches]:
        """Mini-batches of the activations below `at` with their labels (train shuffled)."""
        x = self.activations(at)
        return {
            n: Batches(x[n], s.y, batch_size if n == "train" else 256, shuffle=n == "train")
            for n, s in self.splits.items()
        }

    def images(self) -> dict[str, Dataset]:
        """The images themselves, prepared per batch (for runs whose frozen layers must run)."""
        return {
            name: image_dataset(s, self.size, mean=self.mean, std=self.std)
            for name, s in self.splits.items()
            if len(s)
        }


class Batches:
    """Re-iterable `(inputs, labels)` mini-batches of in-memory tensors, sliced whole (no
    per-example indexing and collating as a DataLoader does: on small cached activations that
    bookkeeping would cost more than the training step). With `shuffle`, a new order per pass
    from torch's global generator (`seed_everything` makes it reproducible)."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 32, shuffle: bool = False
    ):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.y)) if self.shuffle else None
        for start in range(0, len(self.y), self.batch_size):
            if order is None:
                yield (
                    self.x[start : start + self.batch_size],
                    self.y[start : start + self.batch_size],
                )
            else:
                idx = order[start : start + self.batch_size]
                yield self.x[idx], self.y[idx]


def _batched(fn: nn.Module, x: torch.Tensor, device: torch.device, size: int = 512) -> torch.Tensor:
    if not len(x):
        return fn(x[:1].to(device)).cpu()[:0]  # no examples, but the shape of the output
    return torch.cat([fn(x[i : i + size].to(device)).cpu() for i in range(0, len(x), size)])


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


# --- reading the results ---------------------------------------------------------------------


def accuracy(runs: Sequence[RecipeRun]) -> Measure:
    """Mean test accuracy over the seeds, its SE combining seed spread and test-set size."""
    return over_seeds([r.correct.numpy() for r in runs])


def difference(a: Sequence[RecipeRun], b: Sequence[RecipeRun]) -> Measure:
    """Test accuracy of a minus b, seed by seed on the same test examples (`claims.paired`)."""
    if [r.seed for r in a] != [r.seed for r in b]:
        raise ValueError("compare runs with the same seeds, in the same order")
    return paired([r.correct.numpy() for r in a], [r.correct.numpy() for r in b])


def val_accuracy(runs: Sequence[RecipeRun], epoch: int) -> Measure:
    """Validation accuracy after `epoch` (1, 2, ...) over the seeds, its SE combining the seed
    spread and the validation-set size; a run that diverged before that epoch counts 0."""
    values = [_val_at(r, epoch) for r in runs]
    return over_seeds(values, n_test=runs[0].val_examples)


def _val_at(run: RecipeRun, epoch: int) -> float:
    curve = run.history.metric("val_accuracy")
    if epoch < 1 or (epoch > len(curve) and not run.diverged):
        raise ValueError(f"no validation accuracy after epoch {epoch}: the run has {len(curve)}")
    return curve[epoch - 1] if epoch <= len(curve) else 0.0


def ahead(
    a: Sequence[RecipeRun], b: Sequence[RecipeRun], names: tuple[str, str], epoch: int | None = None
) -> str:
    """Which of two recipes is ahead beyond 2 SE (`names[0]` or `names[1]`), or "tie": on the
    test set after training (paired, example by example), or on validation after `epoch`."""
    if epoch is None:
        diff = difference(a, b)
    else:
        diff = paired([_val_at(r, epoch) for r in a], [_val_at(r, epoch) for r in b],
                      n_test=a[0].val_examples)  # fmt: skip
    return names[0] if diff.mean > 2 * diff.se else names[1] if diff.mean < -2 * diff.se else "tie"


def histories(results: Mapping[str, Sequence[RecipeRun]]) -> dict[str, list[History]]:
    """{name: [History per seed]}, what `viz.plot_runs` draws."""
    return {name: [r.history for r in runs] for name, runs in results.items()}


def best_by_validation(results: Mapping[str, Sequence[RecipeRun]]) -> str:
    """The name whose last-epoch validation accuracy, averaged over seeds, is highest (ties:
    lower validation loss). The test set plays no part in the choice."""

    def score(name: str) -> tuple[float, float]:
        last = [r.history.last for r in results[name]]
        acc = sum(e.get("val_accuracy", 0.0) for e in last) / len(last)
        return acc, -sum(e.get("val_loss", float("inf")) for e in last) / len(last)

    return max(results, key=score)


def summary(results: Mapping[str, Sequence[RecipeRun]]) -> list[dict]:
    """One row per recipe: test accuracy per seed and over seeds, steps, trainable parameters,
    training seconds per step."""
    rows = []
    for name, runs in results.items():
        acc = accuracy(runs)
        steps = sum(r.steps for r in runs)
        rows.append({
            "recipe": name,
            "test_accuracy": acc.mean,
            "accuracy_se": acc.se,
            "per_seed": [round(r.accuracy, 3) for r in runs],
            "steps": runs[0].steps,
            "trainable": runs[0].trainable,
            "ms_per_step": 1000 * sum(r.seconds for r in runs) / max(steps, 1),
            "diverged": sum(r.diverged for r in runs),
        })  # fmt: skip
    return rows


def table(results: Mapping[str, Sequence[RecipeRun]]) -> str:
    """`summary` as a plain-text table, one line per recipe."""
    lines = [
        f"{'recipe':<18} {'test accuracy':>22}  {'per seed':<21} {'steps':>5} "
        f"{'trainable':>10} {'ms/step':>8}"
    ]
    for r in summary(results):
        acc = f"{fmt(r['test_accuracy'], r['accuracy_se'])} ({len(r['per_seed'])} seeds)"
        seeds = ", ".join(f"{a:.3f}" for a in r["per_seed"])
        lines.append(
            f"{r['recipe']:<18} {acc:>22}  {seeds:<21} {r['steps']:>5} {r['trainable']:>10,} "
            f"{r['ms_per_step']:>8.1f}" + (f"  ({r['diverged']} diverged)" if r["diverged"] else "")
        )
    return "\n".join(lines)
