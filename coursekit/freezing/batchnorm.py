"""BatchNorm while fine-tuning: keep frozen statistics frozen, or recompute them (lessons 02, 04).

BatchNorm keeps *running statistics* (buffers, not parameters). In train mode it normalises with
the statistics of the current batch and updates the running ones, frozen or not; in eval mode it
uses the running ones. So a "frozen" backbone in train mode drifts to the statistics of the new
data, and the head learns on batch-normalised features that differ from what it sees at
evaluation (the BatchNorm trap). `freeze(..., bn="eval")` keeps frozen BatchNorm layers in eval
mode with a forward pre-hook: a callback could not, because `fit` calls `model.train()` at the
start of every epoch, before any callback runs, and the hook works in any training loop.
`recalibrate_batchnorm` is the other remedy, for a network that trained only a few steps.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.hooks import RemovableHandle

from ..runtime.device import resolve_device
from ..training.batches import split_batch
from .select import Patterns, is_under, select_parameters

__all__ = [
    "batchnorm_layers",
    "freeze_batchnorm",
    "is_frozen_batchnorm",
    "keep_running_stats",
    "recalibrate_batchnorm",
    "set_bn_eval",
]

_BN_HOOKS: weakref.WeakKeyDictionary[nn.Module, RemovableHandle] = weakref.WeakKeyDictionary()


def is_frozen_batchnorm(module: nn.Module) -> bool:
    """A BatchNorm layer none of whose parameters learns (no affine parameters counts too)."""
    is_bn = isinstance(module, _BatchNorm)
    return is_bn and not any(p.requires_grad for p in module.parameters())


_KEEP = "_coursekit_keep_stats"  # a plain attribute, so a deep copy keeps the setting too


def _keep_eval_if_frozen(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook: a frozen BatchNorm layer normalises with its stored statistics and does
    not update them, whatever `model.train()` said. Inert once the layer is unfrozen, or after
    `keep_running_stats(..., keep=False)`."""
    if getattr(module, _KEEP, False) and is_frozen_batchnorm(module):
        module.training = False


def batchnorm_layers(model: nn.Module, names: list[str] | None) -> list[tuple[str, nn.Module]]:
    """The BatchNorm layers (all, or those owning one of the parameter `names`)."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm) and (names is None or any(is_under(n, [name]) for n in names))
    ]


def keep_running_stats(layers: list[tuple[str, nn.Module]], keep: bool) -> None:
    """Add (keep=True) or remove the keep-eval hook on these BatchNorm layers. A copy of a model
    (`copy.deepcopy`) carries its hooks along untracked; the attribute set here governs them."""
    for _, module in layers:
        setattr(module, _KEEP, keep)
        if keep and module not in _BN_HOOKS:
            _BN_HOOKS[module] = module.register_forward_pre_hook(_keep_eval_if_frozen)
        elif not keep and module in _BN_HOOKS:
            _BN_HOOKS.pop(module).remove()


def set_bn_eval(model: nn.Module) -> list[str]:
    """Put every frozen BatchNorm layer in eval mode now and return their names.

    A one-off: the next `model.train()` undoes it, so in your own loop call it right after
    `model.train()`. `freeze(..., bn="eval")` and `freeze_batchnorm` make it permanent instead.
    """
    frozen = [(name, m) for name, m in batchnorm_layers(model, None) if is_frozen_batchnorm(m)]
    for _, module in frozen:
        module.eval()
    return [name for name, _ in frozen]


def freeze_batchnorm(model: nn.Module, patterns: Patterns = None) -> list[str]:
    """Freeze BatchNorm layers completely: their scale/shift *and* their running statistics.

    Useful when fine-tuning with small batches, whose noisy batch statistics would otherwise
    overwrite the pre-trained ones. `patterns` (see `freeze`) limits it to the BatchNorm layers
    they select. Returns the names of the frozen BatchNorm layers.
    """
    names = None if patterns is None else select_parameters(model, patterns)
    layers = batchnorm_layers(model, names)
    for _, module in layers:
        module.requires_grad_(False)
    keep_running_stats(layers, keep=True)
    return [name for name, _ in layers]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    data: Iterable,
    *,
    max_examples: int = 512,
    device: torch.device | str | None = None,
) -> list[str]:
    """Recompute BatchNorm running statistics from (up to about `max_examples` of) `data`.

    A network trained for only a few steps has running statistics still near their initial
    values (EfficientNet's BatchNorm momentum is 0.01), so in eval mode it would look worse than
    it is. This resets them and averages exactly over the given batches (an iterable of
    `(inputs, labels)`, e.g. a DataLoader over a `datasets.ImageDataset`). Only the BatchNorm
    layers run in train mode, so dropout and stochastic depth stay off. Returns the names of the
    layers it updated (in place, like every model edit).
    """
    named = [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    if not named:
        return []
    norms = [m for _, m in named]
    device = resolve_device(device)
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.eval().to(device)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    seen = 0
    try:
        for batch in data:
            x = split_batch(batch)[0]
            model(x.to(device))
            seen += len(x)
            if seen >= max_examples:
                break
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return [n for n, _ in named]
