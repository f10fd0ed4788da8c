"""Layer-wise fine-tuning: freeze and train a network by depth, from the output to the input.

Layers near the input learn generic features (edges, word pieces) and need the least change, which
is why we unfreeze from the top down and give lower blocks smaller learning rates. This module
finds the repeated blocks of a model (`blocks_of`), groups its parameters from the head down to
the stem (`depth_groups`), trains the top plus the last k blocks (`unfreeze_last`), builds
optimizer groups with discriminative learning rates (`param_groups`) and unfreezes one group per
epoch (`GradualUnfreezing`). It builds on `freezing` (freeze by name, the BatchNorm handling),
which re-exports every name here, so `freezing.unfreeze_last` and friends keep working.
Lessons 04 and 06.
"""

from __future__ import annotations

from torch import nn

from ..heads import find_head
from ..params import count_parameters
from ..training.callbacks import Callback, FitState
from .by_name import freeze
from .select import is_under, set_requires_grad

__all__ = [
    "GradualUnfreezing",
    "blocks_of",
    "depth_groups",
    "param_groups",
    "unfreeze_last",
]


def _head_name(model: nn.Module, required: bool = True) -> str | None:
    """The classifier's module name (`heads.find_head`); None for a bare encoder if allowed."""
    try:
        return find_head(model)[0]
    except ValueError:
        if required:
            raise
        return None


# --- depth: blocks from the input to the output ----------------------------------------------


def _block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and n]
    if not lists:
        raise ValueError(
            f"can't find the stack of blocks of a {type(model).__name__} (no nn.ModuleList); "
            "freeze by name instead, e.g. unfreeze(model, ['layer4*', 'fc'])."
        )
    return max(lists, key=lambda nm: len(nm[1]))  # the longest list: the repeated blocks


def blocks_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The repeated blocks in input-to-output order, e.g. `_blocks.0` ... `_blocks.15` of
    EfficientNet-Lite0 or `bert.encoder.layer.0` ... `.5` of MiniLM (the longest nn.ModuleList)."""
    name, blocks = _block_list(model)
    return [(f"{name}.{i}", block) for i, block in enumerate(blocks)]


def _around_blocks(model: nn.Module) -> tuple[list[str], list[str]]:
    """Modules registered before / after the block stack, walking up its parents: for
    EfficientNet-Lite0 `_conv_stem`, `_bn0` / `_conv_head`, `_bn1`, `_fc`; for BERT
    `bert.embeddings` / `bert.pooler`, `classifier`. Registration order is forward order here."""
    path = _block_list(model)[0].split(".")
    before, after = [], []
    for depth, child in enumerate(path):
        parent = ".".join(path[:depth])
        siblings = [
            f"{parent}.{n}" if parent else n
            for n, _ in model.get_submodule(parent).named_children()
        ]
        i = siblings.index(f"{parent}.{child}" if parent else child)
        before, after = before + siblings[:i], siblings[i + 1 :] + after
    head = _head_name(model, required=False)
    if head is not None and not is_under(head, after):
        after.append(head)  # a head registered before the blocks still belongs to the top
    return before, after


def depth_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Parameter names in groups from the output to the input, as (label, names): the top (the
    head and what follows the blocks), each block from the last to the first, then the bottom
    (stem / embeddings, and anything else before the blocks).

    Every parameter is in exactly one group; groups without parameters are left out.
    """
    before, after = _around_blocks(model)
    names = [n for n, _ in model.named_parameters()]

    def label(kind: str, modules: list[str]) -> str:
        return f"{kind} ({', '.join(m for m in modules if any(is_under(n, [m]) for n in names))})"

    top = [n for n in names if is_under(n, after)]
    groups = [(label("top", after), top)]
    for block, _ in reversed(blocks_of(model)):
        groups.append((block, [n for n in names if is_under(n, [block]) and n not in top]))
    placed = {n for _, g in groups for n in g}
    groups.append((label("bottom", before), [n for n in names if n not in placed]))
    return [(lbl, g) for lbl, g in groups if g]


def unfreeze_last(model: nn.Module, k: int, *, bn: str = "eval") -> list[str]:
    """Train the top (head, and the head convolution / pooler) plus the last `k` blocks only.

    k=0 is `freeze_all_but_head` plus the top layers; k=len(blocks_of(model)) trains all blocks
    (the stem / embeddings stay frozen: `unfreeze(model)` trains everything). Returns the names
    of the trainable parameters.
    """
    n_blocks = len(blocks_of(model))
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_blocks:
        raise ValueError(f"k must be an int from 0 to {n_blocks} (the number of blocks), got {k!r}")
    freeze(model, bn=bn)
    groups = [g for label, g in depth_groups(model) if not label.startswith("bottom")]
    chosen = [n for g in groups[: k + 1] for n in g]
    return set_requires_grad(model, chosen, True)


# --- discriminative learning rates -----------------------------------------------------------


def param_groups(
    model: nn.Module,
    lr: float,
    decay: float = 0.5,
    head_lr: float | None = None,
    include_frozen: bool = False,
) -> list[dict]:
    """Optimizer param groups with smaller learning rates for blocks nearer the input.

    The top group gets `head_lr` (default `lr`); the block `d` steps below the top (d=1 for the
    last block) gets `lr * decay**d`; the stem / embeddings the smallest rate. Groups run from the
    output to the input, so `fit`'s recorded "lr" is the head's. Only trainable parameters, unless
    `include_frozen=True` (then an optimizer built now also covers parameters that
    `GradualUnfreezing` unfreezes later; frozen ones get no gradient, so it skips them).
    Use: `fit(model, ..., optimizer=make_optimizer(param_groups(model, 1e-3), 1e-3))`
    (`optim.make_optimizer`: the AdamW `fit` uses by default, fused where torch can).
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1] (1 = the same lr everywhere), got {decay}")
    params = dict(model.named_parameters())
    groups = []
    for depth, (label, names) in enumerate(depth_groups(model)):
        chosen = [params[n] for n in names if include_frozen or params[n].requires_grad]
        group_lr = (head_lr if head_lr is not None else lr) if depth == 0 else lr * decay**depth
        if chosen:
            groups.append({"params": chosen, "lr": group_lr, "name": label})
    if not groups:
        raise ValueError("no trainable parameters: unfreeze some (or pass include_frozen=True).")
    return groups


# --- gradual unfreezing ----------------------------------------------------------------------


def _next_frozen_group(model: nn.Module) -> tuple[int, str, list[str]] | None:
    """(depth, label, frozen names) of the top-most depth group that still has frozen params."""
    params = dict(model.named_parameters())
    for depth, (label, names) in enumerate(depth_groups(model)):
        frozen = [n for n in names if not params[n].requires_grad]
        if frozen:
            return depth, label, frozen
    return None


class GradualUnfreezing(Callback):
    """Unfreeze one more depth group (top first, then the blocks downwards) every `every` epochs.

    Start from `freeze_all_but_head(model)`. `fit`'s default optimizer only holds the parameters
    that were trainable when it started, so newly unfrozen parameters are added to the optimizer
    as a new param group with lr `lr * decay**depth` (`lr` defaults to the first group's lr).
    With a learning-rate scheduler, build the optimizer yourself over
    `param_groups(model, lr, include_frozen=True)` instead: schedulers don't see groups added later.
    That optimizer also makes `fit(..., checkpoint_dir=...)` resumable: on resume the schedule is
    replayed (requires_grad is not saved in checkpoints) and the saved optimizer state fits.
    `log` records (epoch, group unfrozen, trainable parameters) after each unfreezing.
    """

    def __init__(self, every: int = 1, lr: float | None = None, decay: float = 1.0) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.lr, self.decay = every, lr, decay
        self.log: list[dict] = []

    def on_fit_start(self, state: FitState) -> None:
        for done in range(1, state.epoch + 1):  # resumed from a checkpoint: replay the schedule
            self._step(state, done)

    def on_epoch_end(self, state: FitState) -> None:
        self._step(state, state.epoch + 1)

    def _step(self, state: FitState, done: int) -> None:
        if done % self.every or done >= state.epochs:
            return  # not this epoch, or no epoch left to train what we would unfreeze
        found = _next_frozen_group(state.model)
        if found is None:
            return  # everything already trains
        depth, label, frozen = found
        params = dict(state.model.named_parameters())
        set_requires_grad(state.model, frozen, True)
        known = {id(p) for g in state.optimizer.param_groups for p in g["params"]}
        new = [params[n] for n in frozen if id(params[n]) not in known]
        if new:
            base = self.lr if self.lr is not None else state.optimizer.param_groups[0]["lr"]
            group = {"params": new, "lr": base * self.decay**depth, "name": label}
            state.optimizer.add_param_group(group)
        trainable = count_parameters(state.model).trainable
        self.log.append({"epoch": done, "unfrozen": label, "trainable": trainable})
