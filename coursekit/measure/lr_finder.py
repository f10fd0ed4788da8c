"""The learning-rate range test: find a good learning rate in one short run instead of many.

Train for `num_iter` mini-batches while the learning rate grows exponentially from `start_lr` to
`end_lr`, and record the loss. At tiny rates the loss barely moves; at good rates it falls fast;
at too-large rates it explodes. A good rate is where the loss falls fastest (the steepest
descent of the smoothed curve), a bit before the minimum. The test trains the model, so
`lr_find` snapshots the weights, buffers, optimizer and random state first and restores them
afterwards: the model is bit-identical to before, and the next `fit` runs as if no test happened.
Each step is `training.step.train_step`, the step `fit` takes. Lesson 04.
(Smith 2017, "Cyclical Learning Rates for Training Neural Networks"; fast.ai's `lr_find`.)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..runtime.device import resolve_device, resolve_precision
from ..training.batches import as_loader, split_batch, to_device
from ..training.limits import sweep_length
from ..training.optim import make_optimizer
from ..training.step import LossFn, StepSetup, train_step

__all__ = ["LRFindResult", "lr_find", "plot_lr_find", "suggest_lr"]


@dataclass
class LRFindResult:
    """What the range test measured. `losses` are smoothed (exponential moving average with
    bias correction); `raw_losses` are the per-batch losses. `suggestion` is the steepest
    descent of the smoothed loss; `min_lr_div10` the rate at the smallest loss divided by 10."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    min_lr_div10: float
    diverged: bool

    def __str__(self) -> str:
        end = "stopped when the loss diverged" if self.diverged else "ran the full sweep"
        return (
            f"LR range test: {len(self.lrs)} steps from {self.lrs[0]:.1e} to {self.lrs[-1]:.1e} "
            f"({end}); suggestion {self.suggestion:.1e} (steepest descent), "
            f"min/10 {self.min_lr_div10:.1e}"
        )


def suggest_lr(lrs: list[float], losses: list[float], skip_start: int = 5) -> float:
    """The learning rate where the smoothed loss falls fastest per decade of learning rate.

    Only the stretch before the smallest loss is searched (after it the loss diverges), minus the
    first `skip_start` points (the moving average is still settling there). If that stretch is
    too short for a slope (< 3 points), the rate at the minimum divided by 10 is returned.
    """
    x, y = np.log10(np.asarray(lrs, dtype=float)), np.asarray(losses, dtype=float)
    i_min = int(np.nanargmin(y))
    lo = min(skip_start, max(i_min - 3, 0))
    if i_min - lo < 2:
        return float(lrs[i_min]) / 10
    slope = np.gradient(y[lo : i_min + 1], x[lo : i_min + 1])
    return float(lrs[lo + int(np.argmin(slope))])


def _set_lr(optimizer: torch.optim.Optimizer, lr: float, ratios: list[float]) -> None:
    for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
        group["lr"] = lr * ratio


def _batches(loader: Any):
    """Batches forever: the sweep may be longer than one epoch."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("train_data yields no batches")


def lr_find(
    model: nn.Module,
    train_data: Any,
    loss_fn: LossFn | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    precision: str = "auto",
    smooth: float = 0.9,
    diverge: float = 4.0,
) -> LRFindResult:
    """Run the learning-rate range test on `model` and restore it afterwards.

    `train_data`: a DataLoader or Dataset, batched as for `fit` ((inputs, labels) or dicts).
    `optimizer`: default `make_optimizer` (the one `fit` trains with); with several param
    groups (discriminative rates) the sweep moves the first group's rate and keeps the others'
    ratios to it. The sweep stops early once the smoothed loss exceeds `diverge` x its minimum.
    `smooth`: the moving average remembers about 1 / (1 - smooth) batches; fast.ai's 0.98 (50
    batches) lags half a 100-step sweep behind the raw loss and shifts the curve to larger rates.
    Weights, buffers (BatchNorm statistics), optimizer state and the random state are restored.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if num_iter < 5:
        raise ValueError(f"num_iter must be at least 5 for a curve, got {num_iter}")
    device = resolve_device(device)
    home = next(model.parameters()).device
    was_training = model.training
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if optimizer is None:
        optimizer = make_optimizer(model, start_lr, device=device)
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    base = optimizer.param_groups[0]["lr"] or 1.0
    ratios = [g["lr"] / base for g in optimizer.param_groups]
    policy = resolve_precision(precision, device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    lrs, raw, smoothed = [], [], []
    try:
        with torch.random.fork_rng(devices=cuda):
            model.to(device).train()
            optimizer.load_state_dict(copy.deepcopy(saved_optimizer))  # onto the model's device
            optimizer.zero_grad(set_to_none=True)  # no gradient left over from earlier training
            setup = StepSetup.create(model, optimizer, device, policy, loss_fn=loss_fn)
            loader = as_loader(train_data, batch_size, True, device, "train_data")
            batches, avg, best = _batches(loader), 0.0, math.inf
            for i in range(sweep_length(num_iter)):  # all, unless a dry run cuts it
                lr = start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))
                _set_lr(optimizer, lr, ratios)
                inputs, labels = split_batch(next(batches))
                inputs, labels = to_device(inputs, device), to_device(labels, device)
                loss, _ = train_step(setup, inputs, labels, check=i == 0)
                value = loss.item()
                avg = smooth * avg + (1 - smooth) * value
                lrs.append(lr)
                raw.append(value)
                smoothed.append(avg / (1 - smooth ** (i + 1)))
                best = min(best, smoothed[-1])
                if not math.isfinite(value) or smoothed[-1] > diverge * best:
                    break
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.to(home).train(was_training)
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    diverged = len(lrs) < num_iter
    finite = [s if math.isfinite(s) else math.inf for s in smoothed]
    i_min = int(np.argmin(finite))
    suggestion = suggest_lr(lrs[: i_min + 1], finite[: i_min + 1])
    return LRFindResult(lrs, smoothed, raw, suggestion, lrs[i_min] / 10, diverged)


def plot_lr_find(result: LRFindResult, fig: Figure | None = None) -> Figure:
    """Loss against learning rate (log scale), with the suggested rate marked."""
    fig = fig or Figure(figsize=(6, 3.6))
    fig.clear()
    ax = fig.subplots()
    ax.plot(result.lrs, result.raw_losses, color="C0", alpha=0.25, lw=0.8, label="loss per batch")
    ax.plot(result.lrs, result.losses, color="C0", label="smoothed loss")
    ax.axvline(result.suggestion, color="C3", ls="--", label=f"suggestion {result.suggestion:.1e}")
    ax.axvline(result.min_lr_div10, color="C2", ls=":", label=f"min/10 {result.min_lr_div10:.1e}")
    finite = [v for v in result.losses if math.isfinite(v)]
    if finite:
        i_min = int(np.argmin(finite))
        raw = [v for v in result.raw_losses[: i_min + 1] if math.isfinite(v)]
        low, high = min(finite + raw), max(finite[: i_min + 1])
        pad = 0.1 * (high - low or 1.0)
        ax.set_ylim(low - pad, min(max(finite), high + 3 * pad) + pad)
    ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="loss", title="LR range test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
