"""Freezing by name: choose which pre-trained weights may change while fine-tuning (lesson 04).

A parameter is frozen when `requires_grad` is False: backward computes no gradient for it, so no
optimizer can move it. Freezing the body and training only the head keeps the pre-trained features
intact (and is cheap); unfreezing the top blocks lets the features adapt to the new task.
Patterns select parameters (`freezing.select`); frozen BatchNorm layers also keep their running
statistics unless told otherwise (`freezing.batchnorm`); freezing by depth is `freezing.layerwise`.
"""

from __future__ import annotations

from torch import nn

from ..heads import find_head
from ..params import count_parameters, parameter_table
from .batchnorm import batchnorm_layers, keep_running_stats
from .select import Patterns, select_parameters, set_requires_grad

__all__ = ["BN_MODES", "freeze", "freeze_all_but_head", "trainable_table", "unfreeze"]

BN_MODES = ("eval", "train")


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
    names = set_requires_grad(model, select_parameters(model, patterns), False)
    keep_running_stats(batchnorm_layers(model, names), keep=bn == "eval")
    return names


def unfreeze(model: nn.Module, patterns: Patterns = None) -> list[str]:
    """Let the selected parameters learn again; return their names (patterns: see `freeze`).

    Unfrozen BatchNorm layers follow `model.train()` / `model.eval()` again.
    """
    return set_requires_grad(model, select_parameters(model, patterns), True)


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
