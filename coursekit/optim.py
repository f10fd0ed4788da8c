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

import torch
from torch import nn

from .device import adamw_kwargs

__all__ = ["WEIGHT_DECAY", "make_optimizer", "trainable_parameters"]

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
