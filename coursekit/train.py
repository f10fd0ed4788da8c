"""`fit`: one readable training loop for every lesson, vision and text alike.

Read it top to bottom: prepare (device, precision, data, optimizer, resume) -> for each epoch,
train (forward under autocast, scaled backward, accumulate, clip, step) -> evaluate -> record ->
checkpoint -> callbacks. Batches are `(inputs, labels)` tuples (vision) or dicts with a "labels"
key (Hugging Face models); models return logits or an object with `.logits`.

Under `accelerate launch` / `torchrun` with several processes the same loop runs in each through
Accelerate (DDP model, sharded data, gathered metrics, output from the main process only): the
few lines that differ mention `acc`, and `distributed.py` explains them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .batches import (
    as_loader,
    check_labels,
    describe_inputs,
    forward_logits,
    split_batch,
    to_device,
)
from .checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from .config import max_steps
from .device import adamw_kwargs, autocast, pick_device, prefer_channels_last, resolve_precision
from .history import Callback, FitState, History
from .metrics import METRICS
from .progress import progress_bar

__all__ = ["evaluate", "fit", "predict"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --- evaluation ------------------------------------------------------------------------------


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
    `gather` collects each batch from all processes (`fit` passes Accelerate's, if launched)."""
    device = torch.device(device) if device is not None else pick_device()
    data = as_loader(data, batch_size, False, device, "the evaluation data")
    policy = resolve_precision(precision, device)
    was_training = model.training
    model.eval().to(device)
    logits, labels = [], []
    cap = max_steps()  # $COURSEKIT_MAX_STEPS (a CPU memory check): zero logits past the cap
    for i, batch in enumerate(data):
        inputs, y = split_batch(batch)
        if cap is not None and i >= cap and logits:  # full-size output, model not run
            logits.append(logits[-1].new_zeros(len(y), *logits[-1].shape[1:]))
            labels.append(y)
            continue
        with autocast(device, policy):
            out = forward_logits(model, to_device(inputs, device))
        if gather is not None:
            out, y = gather((out.float(), y))
        logits.append(out.float())
        labels.append(y)
    model.train(was_training)
    return torch.cat(logits).cpu(), torch.cat(labels).cpu()


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


# --- training --------------------------------------------------------------------------------


def fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scheduler_interval: str = "step",
    loss_fn: LossFn | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    precision: str = "auto",
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = None,
    metrics: Sequence[str] = ("accuracy",),
    monitor: str | None = None,
    early_stopping: int | None = None,
    checkpoint_dir: str | Path | None = None,
    restore_best: bool = False,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log_every: int = 20,
) -> History:
    """Train `model` for `epochs`, evaluating on `val_data` after each, and return its `History`.

    optimizer: default AdamW(lr) over the parameters that require grad (pass your own for param
        groups / discriminative learning rates). scheduler: stepped every optimizer step, or every
        epoch with `scheduler_interval="epoch"`.
    precision: "auto" follows the device (bf16 on A100/H100, fp16 + GradScaler on T4, fp32 on CPU).
    monitor: the metric that picks the best epoch (default "val_loss", or "train_loss" without
        validation data); `early_stopping=N` stops after N epochs without improvement.
    checkpoint_dir: writes `last.safetensors` every epoch and `best.safetensors` on improvement;
        if `last.safetensors` exists, training resumes from it (on Colab, use a Drive folder).
    restore_best: load the best epoch's weights into `model` at the end.
    Several processes (`accelerate launch`, `torchrun`): see `coursekit.distributed`; each process
    uses its launcher-given device, `batch_size` is per process, callbacks run in every process.
    """
    acc = distributed.accelerator() if distributed.launched() else None  # None: one process
    main = acc is None or acc.is_main_process  # the one process that prints and saves
    progress = progress and main
    if acc is not None:
        device = acc.device
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    prefer_channels_last(model, device)  # NHWC for CNNs on CUDA (faster under AMP)
    policy = resolve_precision(precision, device)
    train_loader = as_loader(train_data, batch_size, True, device, "train_data")
    val_loader = (
        as_loader(val_data, batch_size, False, device, "val_data") if val_data is not None else None
    )
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("nothing to train: every parameter of the model is frozen.")
        optimizer = torch.optim.AdamW(params, lr=lr, **adamw_kwargs(device))  # fused if it can
    scaler = torch.amp.GradScaler(device.type, enabled=policy.grad_scaler)
    monitor = monitor or ("val_loss" if val_loader is not None else "train_loss")
    lower_is_better = "loss" in monitor

    history, start_epoch, best, bad_epochs = History(), 0, None, 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    best_path = ckpt_dir / "best.safetensors" if ckpt_dir else None
    if ckpt_dir and (ckpt_dir / "last.safetensors").exists():
        saved = load_checkpoint(ckpt_dir / "last.safetensors", model, optimizer, scheduler, scaler)
        history = History.from_dict(saved["history"])
        start_epoch, best, bad_epochs = saved["epoch"] + 1, saved["best"], saved["bad_epochs"]
        if main:
            print(f"Resumed from {ckpt_dir}/last.safetensors after epoch {start_epoch}/{epochs}.")
    net, backward, gather = model, torch.Tensor.backward, None  # net runs the batches
    if acc is not None:  # `model` stays the plain module inside DDP: that is what gets saved
        net, optimizer, train_loader, val_loader = distributed.prepare(
            acc, model, optimizer, train_loader, val_loader
        )
        backward, gather = acc.backward, acc.gather_for_metrics
    best_weights: dict[str, torch.Tensor] | None = None

    state = FitState(
        model,
        optimizer,
        history,
        epochs,
        epoch=start_epoch,
        step=len(history.steps) // grad_accum_steps,
    )
    for cb in callbacks:
        cb.on_fit_start(state)
    n_batches = len(train_loader) if hasattr(train_loader, "__len__") else None
    custom_loss = loss_fn is not None
    loss_fn = loss_fn or nn.functional.cross_entropy

    step_cap = max_steps()  # $COURSEKIT_MAX_STEPS: stop after that many steps (a CPU check)
    cap_at = None if step_cap is None else state.step + step_cap
    for epoch in range(start_epoch, epochs):
        state.epoch = epoch
        t0 = time.perf_counter()
        net.train()
        losses, correct, seen = [], torch.zeros((), device=device), 0
        n_out = None
        bar = progress_bar(
            n_batches, f"epoch {epoch + 1}/{epochs}", leave=False, disable=not progress
        )
        for i, batch in enumerate(train_loader):
            inputs, labels = split_batch(batch)
            if n_out is not None and labels.device.type == "cpu":
                check_labels(labels, torch.empty(len(labels), n_out), custom_loss)
            inputs, labels = to_device(inputs, device), to_device(labels, device)
            try:
                with autocast(device, policy):
                    logits = forward_logits(net, inputs)
            except RuntimeError as err:
                if n_out is not None:
                    raise
                raise ValueError(
                    f"the model failed on the first batch (inputs {describe_inputs(inputs)}): "
                    f"{err}\nCheck that the input shape/channels match what the "
                    "model expects."
                ) from err
            if n_out is None:
                check_labels(labels, logits, custom_loss)
                n_out = logits.shape[-1] if logits.ndim == 2 else None
            loss = loss_fn(logits.float(), labels)
            backward(scaler.scale(loss / grad_accum_steps))
            last_batch = n_batches is not None and i + 1 == n_batches
            if (i + 1) % grad_accum_steps == 0 or last_batch:
                if max_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None and scheduler_interval == "step":
                    scheduler.step()
                state.step += 1
            losses.append(loss.detach())
            if not custom_loss:
                correct += (logits.argmax(-1) == labels).sum()
                seen += len(labels)
            state.loss = loss.detach()
            for cb in callbacks:
                cb.on_step_end(state)
            bar.update(1)
            if progress and i % log_every == 0:  # the only per-step host sync, for display
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if cap_at is not None and state.step >= cap_at:
                break
        bar.close()
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()

        step_losses = torch.stack(losses).float()
        if acc is not None:  # every process records the same numbers, those of all processes
            step_losses, correct, seen = distributed.combine(acc, step_losses, correct, seen)
        step_losses = step_losses.cpu()
        history.steps.extend(step_losses.tolist())
        record: dict[str, float] = {"epoch": epoch + 1, "train_loss": step_losses.mean().item()}
        if seen:
            record["train_accuracy"] = (correct / seen).item()
        if val_loader is not None:
            custom = None if not custom_loss else loss_fn
            val = evaluate(net, val_loader, device, metrics, custom, precision, gather=gather)
            record.update({f"val_{k}": v for k, v in val.items()})
        record["lr"] = optimizer.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - t0
        history.epochs.append(record)

        value = record[monitor]
        improved = best is None or (value < best if lower_is_better else value > best)
        best, bad_epochs = (value, 0) if improved else (best, bad_epochs + 1)
        if improved and best_path is not None:
            if main:
                save_weights(best_path, model)
        elif improved and restore_best:
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if ckpt_dir is not None and main:
            save_checkpoint(
                ckpt_dir / "last.safetensors",
                model,
                optimizer,
                scheduler,
                scaler,
                state={
                    "epoch": epoch,
                    "history": history.to_dict(),
                    "best": best,
                    "bad_epochs": bad_epochs,
                    "monitor": monitor,
                },
            )
        if acc is not None:
            acc.wait_for_everyone()  # no process reads a checkpoint still being written
        if progress:
            print(
                "  ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in record.items()
                )
            )
        for cb in callbacks:
            cb.on_epoch_end(state)
        if early_stopping is not None and bad_epochs >= early_stopping:
            if main:
                print(f"Early stopping: {monitor} has not improved for {bad_epochs} epochs.")
            break
        if state.stop or (cap_at is not None and state.step >= cap_at):
            break

    if restore_best:
        if best_path is not None and best_path.exists():
            load_weights(best_path, model)
        elif best_weights is not None:
            model.load_state_dict(best_weights)
    if acc is not None:
        acc.free_memory()  # let go of this run's model, optimizer and loaders
    for cb in callbacks:
        cb.on_fit_end(state)
    return history
