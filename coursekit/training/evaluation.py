"""Evaluation: every logit of a dataset, and the loss and metrics they give (lessons 00-07).

`predict` runs a model over data batch by batch in eval mode (under autocast on a GPU), without
gradients, and returns all logits and labels on the CPU; `evaluate` turns them into a loss and
the metrics of `metrics.METRICS`. `fit` validates with `evaluate` after every epoch; under several
processes it passes Accelerate's `gather`, so every example is counted once. Token sequences are
scored in batches of similar length, cut after their last real token (`by_length`), and come
back in the dataset's order. Every logit returned is the model's output for the example whose
label sits next to it: a dry run (`limits.py`, the full-mode check on a CPU) only passes fewer
batches, and the results are those batches'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..runtime.device import autocast, resolve_device, resolve_precision
from .batches import as_loader, check_labels, forward_logits, split_batch, to_device
from .by_length import by_length
from .limits import active_dry_run, limit_batches
from .metrics import METRICS
from .step import LossFn

__all__ = ["evaluate", "predict"]


@torch.no_grad()
def predict(
    model: nn.Module,
    data: Iterable,
    device: torch.device | str | None = None,
    precision: str = "auto",
    batch_size: int = 256,
    gather: Callable[[Any], Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and labels for `data` (a DataLoader, or a Dataset batched here), on the CPU.
    `gather` collects each batch from all processes (`fit` passes Accelerate's, if launched).
    Under a dry run (`limits.py`) only its first batches are run, and returned."""
    device = resolve_device(device)
    # a dry run keeps plain batches: every model it scores then sees the same first examples
    plain = gather is not None or active_dry_run() is not None
    grouped = None if plain else by_length(data, batch_size, device)
    if grouped is None:
        data = as_loader(data, batch_size, False, device, "the evaluation data")
    else:
        data = grouped[0]
    policy = resolve_precision(precision, device)
    was_training = model.training
    model.eval().to(device)
    logits, labels = [], []
    for batch in limit_batches(data):
        inputs, y = split_batch(batch)
        with autocast(device, policy):
            out = forward_logits(model, to_device(inputs, device))
        if gather is not None:
            out, y = gather((out.float(), y))
        logits.append(out.float())
        labels.append(y)
    model.train(was_training)
    if not logits:
        raise ValueError(
            "the evaluation data yielded no batches: pass a non-empty DataLoader, Dataset or list "
            "(an iterator or generator runs out after one pass)."
        )
    logits, labels = torch.cat(logits).cpu(), torch.cat(labels).cpu()
    if grouped:  # back to the dataset's order
        back = grouped[1].argsort()
        logits, labels = logits[back], labels[back]
    return logits, labels


def evaluate(
    model: nn.Module,
    data: Iterable,
    device: torch.device | str | None = None,
    metrics: Sequence[str] = ("accuracy",),
    loss_fn: LossFn | None = None,
    precision: str = "auto",
    gather: Callable[[Any], Any] | None = None,
) -> dict[str, float]:
    """Loss and metrics of `model` on `data`, e.g. {"loss": 0.31, "accuracy": 0.9}."""
    logits, labels = predict(model, data, device, precision, gather=gather)
    check_labels(labels, logits, loss_fn is not None)
    loss = (loss_fn or nn.functional.cross_entropy)(logits, labels).item()
    return {"loss": loss, **{m: METRICS[m](logits, labels) for m in metrics}}
