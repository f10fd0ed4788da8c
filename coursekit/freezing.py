"""Freezing: choose which pre-trained weights may change while fine-tuning.

A parameter is frozen when `requires_grad` is False: backward computes no gradient for it, so no
optimizer can move it. Freezing the body and training only the head keeps the pre-trained features
intact (and is cheap); unfreezing the top blocks lets the features adapt to the new task. Layers
near the input learn generic features (edges, word pieces) and need the least change, which is why
we unfreeze from the top down and give lower blocks smaller learning rates.

The BatchNorm trap: BatchNorm keeps *running statistics* (buffers, not parameters). In train
mode it normalises with the statistics of the current batch and updates the running ones, frozen
or not; in eval mode it uses the running ones. So a "frozen" backbone in train mode drifts to the
statistics of the new data, and the head learns on batch-normalised features that differ from
what it sees at evaluation. `freeze(..., bn="eval")` (the default) keeps frozen BatchNorm layers
in eval mode with a forward pre-hook: a callback could not, because `fit` calls `model.train()`
at the start of every epoch, before any callback runs, and the hook works in any training loop.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import weakref
from collections.abc import Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.hooks import RemovableHandle

from .heads import find_head
from .history import Callback, FitState
from .params import count_parameters, parameter_table

__all__ = [
    "GradualUnfreezing",
    "blocks_of",
    "depth_groups",
    "freeze",
    "freeze_all_but_head",
    "freeze_batchnorm",
    "param_groups",
    "set_bn_eval",
    "trainable_table",
    "unfreeze",
    "unfreeze_last",
]

Patterns = str | Sequence[str] | None
BN_MODES = ("eval", "train")
_BN_HOOKS: weakref.WeakKeyDictionary[nn.Module, RemovableHandle] = weakref.WeakKeyDictionary()


# --- selecting parameters by name ------------------------------------------------------------


def _under(name: str, prefixes: Sequence[str]) -> bool:
    """Whether `name` is one of `prefixes` or lies inside one of them (dot boundaries)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def _owners(param_name: str) -> list[str]:
    """'a.b.weight' -> ['a', 'a.b', 'a.b.weight']: the modules that own it, and itself."""
    parts = param_name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _no_match(model: nn.Module, pattern: str) -> ValueError:
    names = [n for n, _ in model.named_modules() if n and n.count(".") <= 1]
    close = difflib.get_close_matches(pattern.removeprefix("re:"), names, n=3, cutoff=0.5)
    hint = f" Did you mean {' / '.join(close)}?" if close else ""
    return ValueError(
        f"pattern {pattern!r} matches no module or parameter of the {type(model).__name__}.{hint} "
        f"Its module names look like: {', '.join(names[:12])}{', and more' * (len(names) > 12)}. "
        "Patterns are globs over full dotted names ('_blocks.1*', '*bn*', 'bert.encoder.*') or "
        "'re:' + a regular expression (re.fullmatch), e.g. 're:_blocks\\.(14|15)'."
    )


def _select(model: nn.Module, patterns: Patterns) -> list[str]:
    """Names of the parameters that `patterns` select: a pattern selects a module (all of its
    parameters) or a single parameter by its full dotted name. None selects every parameter."""
    names = [n for n, _ in model.named_parameters()]
    if patterns is None:
        return names
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    chosen: set[str] = set()
    for pattern in patterns:
        hits = {n for n in names if any(_matches(o, pattern) for o in _owners(n))}
        if not hits:
            raise _no_match(model, pattern)
        chosen |= hits
    return [n for n in names if n in chosen]


def _set_requires_grad(model: nn.Module, names: list[str], flag: bool) -> list[str]:
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(flag)
    return names


# --- BatchNorm: keep frozen statistics frozen ------------------------------------------------


def _is_frozen_bn(module: nn.Module) -> bool:
    """A BatchNorm layer none of whose parameters learns (no affine parameters counts too)."""
    is_bn = isinstance(module, _BatchNorm)
    return is_bn and not any(p.requires_grad for p in module.parameters())


def _keep_eval_if_frozen(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook: a frozen BatchNorm layer normalises with its stored statistics and does
    not update them, whatever `model.train()` said. Inert once the layer is unfrozen."""
    if _is_frozen_bn(module):
        module.training = False


def _batchnorms(model: nn.Module, names: list[str] | None) -> list[tuple[str, nn.Module]]:
    """The BatchNorm layers (all, or those owning one of the parameter `names`)."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm) and (names is None or any(_under(n, [name]) for n in names))
    ]


def _keep_stats(layers: list[tuple[str, nn.Module]], keep: bool) -> None:
    """Add (keep=True) or remove the keep-eval hook on these BatchNorm layers."""
    for _, module in layers:
        if keep and module not in _BN_HOOKS:
            _BN_HOOKS[module] = module.register_forward_pre_hook(_keep_eval_if_frozen)
        elif not keep and module in _BN_HOOKS:
            _BN_HOOKS.pop(module).remove()


def set_bn_eval(model: nn.Module) -> list[str]:
    """Put every frozen BatchNorm layer in eval mode now and return their names.

    A one-off: the next `model.train()` undoes it, so in your own loop call it right after
    `model.train()`. `freeze(..., bn="eval")` and `freeze_batchnorm` make it permanent instead.
    """
    frozen = [(name, m) for name, m in _batchnorms(model, None) if _is_frozen_bn(m)]
    for _, module in frozen:
        module.eval()
    return [name for name, _ in frozen]


def freeze_batchnorm(model: nn.Module, patterns: Patterns = None) -> list[str]:
    """Freeze BatchNorm layers completely: their scale/shift *and* their running statistics.

    Useful when fine-tuning with small batches, whose noisy batch statistics would otherwise
    overwrite the pre-trained ones. `patterns` (see `freeze`) limits it to the BatchNorm layers
    they select. Returns the names of the frozen BatchNorm layers.
    """
    layers = _batchnorms(model, None if patterns is None else _select(model, patterns))
    for _, module in layers:
        module.requires_grad_(False)
    _keep_stats(layers, keep=True)
    return [name for name, _ in layers]


# --- freeze / unfreeze -----------------------------------------------------------------------


def freeze(model: nn.Module, patterns: Patterns = None, *, bn: str = "eval") -> list[str]:
    """Stop the selected parameters from learning; return their names.

    `patterns`: None (the whole model), a glob such as "_blocks.1*" / "*bn*" / "bert.encoder.*",
    or "re:" + a regular expression, matched against module and parameter names. A pattern that
    matches nothing raises an error naming the model's modules (a typo must not silently leave
    everything trainable).
    bn="eval" (default): frozen BatchNorm layers also stop updating their running statistics.
    bn="train": they keep updating them in train mode (the BatchNorm trap, shown in the lesson);
    this also undoes an earlier bn="eval" for the selected layers.
    """
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
    names = _set_requires_grad(model, _select(model, patterns), False)
    _keep_stats(_batchnorms(model, names), keep=bn == "eval")
    return names


def unfreeze(model: nn.Module, patterns: Patterns = None) -> list[str]:
    """Let the selected parameters learn again; return their names (patterns: see `freeze`).

    Unfrozen BatchNorm layers follow `model.train()` / `model.eval()` again.
    """
    return _set_requires_grad(model, _select(model, patterns), True)


def _head_name(model: nn.Module, required: bool = True) -> str | None:
    """The classifier's module name (`heads.find_head`); None for a bare encoder if allowed."""
    try:
        return find_head(model)[0]
    except ValueError:
        if required:
            raise
        return None


def freeze_all_but_head(
    model: nn.Module, *, name: str | None = None, bn: str = "eval"
) -> list[str]:
    """Freeze everything except the classification head (`_fc`, `fc`, `classifier`, ...).

    The pre-trained body becomes a fixed feature extractor; returns the head's parameter names.
    `name` points at the head yourself (a module name) when it is not found automatically.
    """
    head = find_head(model, name)[0]  # first, so a model without a head is left untouched
    freeze(model, bn=bn)
    return unfreeze(model, head)


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
    if head is not None and not _under(head, after):
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
        return f"{kind} ({', '.join(m for m in modules if any(_under(n, [m]) for n in names))})"

    top = [n for n in names if _under(n, after)]
    groups = [(label("top", after), top)]
    for block, _ in reversed(blocks_of(model)):
        groups.append((block, [n for n in names if _under(n, [block]) and n not in top]))
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
    return _set_requires_grad(model, chosen, True)


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
    Use: `fit(model, ..., optimizer=torch.optim.AdamW(param_groups(model, 1e-3)))`.
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
        _set_requires_grad(state.model, frozen, True)
        known = {id(p) for g in state.optimizer.param_groups for p in g["params"]}
        new = [params[n] for n in frozen if id(params[n]) not in known]
        if new:
            base = self.lr if self.lr is not None else state.optimizer.param_groups[0]["lr"]
            group = {"params": new, "lr": base * self.decay**depth, "name": label}
            state.optimizer.add_param_group(group)
        trainable = count_parameters(state.model).trainable
        self.log.append({"epoch": done, "unfrozen": label, "trainable": trainable})


# --- seeing what trains ----------------------------------------------------------------------


def trainable_table(model: nn.Module, depth: int = 1) -> str:
    """A text table of trainable and frozen parameters per module (`parameter_table` rows),
    with a total line: check what will learn before you spend time training."""
    rows = [*parameter_table(model, depth), count_parameters(model)]
    names = [r.name for r in rows[:-1]] + ["total"]
    width = max(len(n) for n in [*names, "module"])
    lines = [f"{'module':<{width}}  {'total':>11}  {'trainable':>11}  {'frozen':>11}  trains"]
    for name, r in zip(names, rows, strict=True):
        lines.append(
            f"{name:<{width}}  {r.total:>11,}  {r.trainable:>11,}  {r.frozen:>11,}  "
            f"{100 * r.trainable_fraction:5.1f}%"
        )
    return "\n".join(lines)
