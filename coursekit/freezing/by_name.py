"""Freezing: choose which pre-trained weights may change while fine-tuning.

A parameter is frozen when `requires_grad` is False: backward computes no gradient for it, so no
optimizer can move it. Freezing the body and training only the head keeps the pre-trained features
intact (and is cheap); unfreezing the top blocks lets the features adapt to the new task.
Freezing by depth (the last k blocks, discriminative learning rates, gradual unfreezing) lives in
`layerwise`; its names are re-exported here, so `freezing.unfreeze_last` etc. work too.

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

from ..heads import find_head
from ..params import count_parameters, parameter_table

__all__ = [
    "freeze",
    "freeze_all_but_head",
    "freeze_batchnorm",
    "set_bn_eval",
    "trainable_table",
    "unfreeze",
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

