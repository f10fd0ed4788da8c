"""The one optimizer every training run in the course uses: AdamW over what may learn.

`make_optimizer(model, lr)` is AdamW (weight decay 0.01, torch's default) over the parameters
that require gradients, with the fused kernel where torch has one for the device: one pass over
all weights per step instead of a dozen, about 3x faster for MiniLM on a 2-core CPU
(docs/performance.md), with the same state and the same update up to rounding. Pass param groups
instead of a model for discriminative learning rates, e.g.
`make_optimizer(freezing.param_groups(model, 1e-3), 1e-3)`. `fit` builds its default optimizer
here, and so do the LR range test, the cost measurements, the strategy sweep and the
data-efficiency methods, so a cost measured is the cost of the optimizer that trains.
Used by every lesson that trains (00, 02-06).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..runtime.device import adamw_kwargs

__all__ = [
    "WEIGHT_DECAY",
    "make_optimizer",
    "optimizer_settings",
    "settings_differences",
    "trainable_parameters",
]

WEIGHT_DECAY = 0.01  # torch's AdamW default


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of `model` that require gradients; an error if every one is frozen."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "nothing to train: every parameter of the model is frozen. Unfreeze some "
            "(freezing.unfreeze / freeze_all_but_head) or add LoRA before training."
        )
    return params


def make_optimizer(
    model_or_groups: nn.Module | Iterable[dict],
    lr: float = 1e-3,
    *,
    weight_decay: float = WEIGHT_DECAY,
    device: torch.device | str | None = None,
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of a model (or over given param groups).

    `device`: where the parameters will train (default: where they are now); decides whether
    the fused kernel is used. Groups keep their own "lr" (discriminative learning rates); `lr`
    is the default for groups without one.
    """
    if isinstance(model_or_groups, nn.Module):
        params: list = trainable_parameters(model_or_groups)
        first = params[0]
    else:
        params = list(model_or_groups)
        if not params:
            raise ValueError("no param groups given: nothing to train.")
        first = next(iter(params[0]["params"]))
    kwargs = adamw_kwargs(device if device is not None else first.device)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kwargs)


# --- what a checkpoint records about the optimizer -------------------------------------------

# Flags that choose an implementation, not the maths: a resumed run may differ in them.
_IMPLEMENTATION = {"params", "foreach", "fused", "capturable", "differentiable"}


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def optimizer_settings(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's class and every group's hyperparameters (lr, betas, weight decay ...),
    as plain JSON values: what a checkpoint records so a resume can check it continues the
    same optimization. A group's starting lr (`initial_lr`, set by schedulers) stands for its
    lr, which a scheduler changes while training."""
    groups = []
    for group in optimizer.param_groups:
        settings = {k: _plain(v) for k, v in group.items() if k not in _IMPLEMENTATION}
        if "initial_lr" in settings:
            settings["lr"] = settings.pop("initial_lr")
        settings["parameters"] = sum(p.numel() for p in group["params"])
        groups.append(dict(sorted(settings.items())))
    return {"class": type(optimizer).__name__, "groups": groups}


def settings_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two `optimizer_settings`, one line each (empty: the same)."""
    if saved["class"] != now["class"]:
        return [f"optimizer class: checkpoint {saved['class']}, now {now['class']}"]
    old, new = saved["groups"], now["groups"]
    if len(old) != len(new):
        return [f"parameter groups: checkpoint {len(old)}, now {len(new)}"]
    lines = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        where = f"group {i}: " if len(old) > 1 else ""
        for key in sorted(set(a) | set(b)):
            if _plain(a.get(key)) != _plain(b.get(key)):
                lines.append(f"{where}{key}: checkpoint {a.get(key)!r}, now {b.get(key)!r}")
    return lines
