"""One training step, the same everywhere: forward, loss, backward, optimizer step.

`fit`, the learning-rate range test (`measure.lr_find`) and the cost measurements
(`measure.measure_step`) all train through `train_step`, so a step timed or swept is exactly the
step that trains:

    forward    the model on the batch, under autocast for the run's precision (bf16 / fp16 / fp32)
    loss       cross-entropy of the float32 logits (or your `loss_fn`)
    backward   of the loss, scaled by the GradScaler under fp16, divided by `grad_accum_steps`
    update     (when `update=True`) unscale + clip the gradients, optimizer step, scaler update,
               zero the gradients

With gradient accumulation, `fit` calls it with `update=False` for all but the last micro-batch of
a step. The first batch is checked (`check=True`): a model that fails on it, or labels that do not
fit its outputs, get an error that names the batch's shapes. `check_finite` stops a run at a NaN
or infinite loss. Used by every lesson that trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..runtime.device import PrecisionPolicy, autocast
from .batches import check_labels, describe_inputs, forward_logits

__all__ = ["LossFn", "StepSetup", "check_finite", "first_nonfinite", "train_step"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class StepSetup:
    """What stays the same from step to step. `model` is what runs the batches (under
    Accelerate, the DDP-wrapped model); `backward` is Accelerate's when launched."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    policy: PrecisionPolicy
    scaler: torch.amp.GradScaler
    loss_fn: LossFn | None = None  # None: cross-entropy on class indices
    grad_accum_steps: int = 1
    max_grad_norm: float | None = None
    backward: Callable[[torch.Tensor], Any] = torch.Tensor.backward

    @classmethod
    def create(
        cls,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        policy: PrecisionPolicy,
        **options: Any,
    ) -> StepSetup:
        """A setup with a GradScaler that is on exactly when the precision needs one (fp16)."""
        scaler = torch.amp.GradScaler(device.type, enabled=policy.grad_scaler)
        return cls(model, optimizer, device, policy, scaler, **options)


def _forward(setup: StepSetup, inputs: Any, check: bool) -> torch.Tensor:
    try:
        with autocast(setup.device, setup.policy):
            return forward_logits(setup.model, inputs)
    except RuntimeError as err:
        if not check:
            raise
        raise ValueError(
            f"the model failed on the first batch (inputs {describe_inputs(inputs)}): {err}\n"
            "Check that the input shape/channels match what the model expects."
        ) from err


def train_step(
    setup: StepSetup,
    inputs: Any,
    labels: torch.Tensor,
    *,
    update: bool = True,
    check: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One (micro-)batch of training on device tensors; returns (loss, logits), detached.

    The logits come back for the default loss only (`fit` counts correct predictions from
    them); under a `loss_fn` of your own they are None and freed before the backward pass,
    since they can be large (a decoder's: tokens x its whole vocabulary, lesson 08).
    `update=False` only accumulates gradients (gradient accumulation); `check=True` checks the
    labels against the model's outputs with clear errors (`fit` does it on the first batch).
    """
    logits = _forward(setup, inputs, check)
    if check:
        check_labels(labels, logits, setup.loss_fn is not None)
    loss = (setup.loss_fn or nn.functional.cross_entropy)(logits.float(), labels)
    kept = logits.detach() if setup.loss_fn is None else None
    del logits
    setup.backward(setup.scaler.scale(loss / setup.grad_accum_steps))
    if update:
        _update(setup)
    return loss.detach(), kept


def _update(setup: StepSetup) -> None:
    """Unscale and clip the gradients, step the optimizer and the scaler, zero the gradients."""
    optimizer, scaler = setup.optimizer, setup.scaler
    if setup.max_grad_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(setup.model.parameters(), setup.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def first_nonfinite(losses: list[torch.Tensor]) -> int | None:
    """Position of the first NaN or infinite loss in `losses` (one host sync), or None."""
    if not losses:
        return None
    bad = (~torch.isfinite(torch.stack(losses).float())).nonzero()
    return int(bad[0, 0]) if len(bad) else None


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    return [v for v in x.values() if isinstance(v, torch.Tensor)] if isinstance(x, dict) else []


def check_finite(losses: list[torch.Tensor], start: int, state: Any, inputs: Any = None) -> int:
    """Raise FloatingPointError at the first NaN/inf loss in `losses[start:]` (this epoch's
    losses; `state` is `fit`'s FitState), naming the epoch, the batch and the likely causes, so
    the weights it produced never reach a checkpoint. `inputs`: the last batch's, to say
    whether they hold NaN. Returns how many losses are now checked."""
    bad = first_nonfinite(losses[start:])
    if bad is None:
        return len(losses)
    i = start + bad
    hint = ""
    if inputs is not None and i == len(losses) - 1:
        floats = [t for t in _tensors(inputs) if t.is_floating_point()]
        clean = all(bool(torch.isfinite(t).all()) for t in floats)
        hint = f" This batch's inputs {'are all finite' if clean else 'hold NaN/inf'}."
    lrs = ", ".join(f"{g['lr']:.3g}" for g in state.optimizer.param_groups)
    raise FloatingPointError(
        f"the training loss became {losses[i].item()} at epoch {state.epoch + 1}, batch {i + 1} "
        f"(after {state.step} optimizer steps); training stopped there and no checkpoint was "
        f"written from it.{hint} Likely causes: NaN or inf in the data; a learning rate too high "
        f"for this model (lr {lrs}: try 10x smaller, or lr_finder.lr_find); fp16 overflow (try "
        "precision='bf16' or 'fp32'); a loss_fn that divides by zero or takes log(0)."
    )
