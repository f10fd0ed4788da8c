"""`fit`: one readable training loop for every lesson (00, 02-06), vision and text alike.

Read `fit` top to bottom: it is a short driver over named steps. Its keywords become a
`FitConfig` (fit_config.py: each setting typed and checked once). `_prepare` (device, precision,
data, optimizer, callbacks, resume from a checkpoint) -> for each epoch: `_train_epoch` (one
`step.train_step` per batch: forward under autocast, scaled backward, accumulate, clip, step)
-> `_validate` (`evaluation.evaluate`) -> `_record` (the epoch's numbers, then the callbacks that
watch them: early stopping, the best weights) -> `_checkpoint` -> `on_epoch_end` callbacks.
Batches are `(inputs, labels)` tuples (vision) or dicts with a "labels" key (Hugging Face
models); models return logits or an object with `.logits`.

Under `accelerate launch` / `torchrun` with several processes the same loop runs in each through
Accelerate (DDP model, sharded data, gathered metrics, output from the main process only). The
loop does not branch on it: `run.backend` (backends.py) answers the few questions whose answer
differs, and `distributed.py` explains what Accelerate does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..runtime.device import prefer_channels_last, resolve_precision
from ..runtime.progress import progress_bar
from .backends import Backend, for_this_process
from .batches import as_loader, check_labels, split_batch, to_device
from .callbacks import BestWeights, Callback, EarlyStopping, FitState
from .evaluation import evaluate
from .fit_config import FitConfig
from .history import History
from .limits import fit_callbacks
from .optim import make_optimizer, optimizer_settings
from .resume import resume_run, save_run
from .step import LossFn, StepSetup, check_finite, train_step

__all__ = ["fit"]

# --- training: the driver ----------------------------------------------------------------------


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

    optimizer: default `optim.make_optimizer(model, lr)`: AdamW over the parameters that require
        grad, fused where torch can (pass your own for param groups / discriminative learning
        rates). scheduler: stepped every optimizer step, or every epoch with
        `scheduler_interval="epoch"`.
    precision: "auto" follows the device (bf16 on A100/H100, fp16 + GradScaler on T4, fp32 on CPU).
    monitor: the metric that picks the best epoch (default "val_loss", or "train_loss" without
        validation data); `early_stopping=N` stops after N epochs without improvement.
    checkpoint_dir: writes `last.safetensors` every epoch and `best.safetensors` on improvement;
        if `last.safetensors` exists, training resumes from it (on Colab, use a Drive folder). A
        checkpoint saved with another optimizer, other hyperparameters or another monitor is
        refused with the differences listed.
    restore_best: load the best epoch's weights into `model` at the end.
    A NaN or infinite loss stops training with an error naming the step, before any checkpoint.
    Several processes (`accelerate launch`, `torchrun`): see `training.backends`; each process
    uses its launcher-given device, `batch_size` is per process, callbacks run in every process.
    The keywords are `FitConfig`'s fields, checked there before anything trains.
    """
    config = FitConfig(
        epochs=epochs, lr=lr, optimizer=optimizer, scheduler=scheduler,
        scheduler_interval=scheduler_interval, loss_fn=loss_fn, batch_size=batch_size,
        device=device, precision=precision, grad_accum_steps=grad_accum_steps,
        max_grad_norm=max_grad_norm, metrics=metrics, monitor=monitor,
        early_stopping=early_stopping, checkpoint_dir=checkpoint_dir, restore_best=restore_best,
        callbacks=callbacks, progress=progress, log_every=log_every,
    )  # fmt: skip
    run = _prepare(model, train_data, val_data, config, for_this_process())
    state = run.state
    for epoch in range(state.epoch, config.epochs):
        state.epoch = epoch
        record = _train_epoch(run)
        record.update(_validate(run))
        _record(run, record)
        _checkpoint(run)
        for cb in run.callbacks:
            cb.on_epoch_end(state)
        if state.stop or state.stop_now:
            break
    return _finish(run)


@dataclass
class _Run:
    """Everything one `fit` call works with, built once by `_prepare`."""

    model: nn.Module  # the plain model: what is saved and restored
    config: FitConfig
    backend: Backend  # one process, or one of several under Accelerate
    setup: StepSetup  # what trains (setup.model is the DDP-wrapped model when launched)
    state: FitState
    callbacks: list[Callback]  # fit's own (best weights, early stopping) around the user's
    train_loader: Any
    val_loader: Any
    monitor: str
    optimizer_settings: dict[str, Any]
    progress: bool  # config.progress, in the main process only
    n_out: int | None = None  # the model's number of outputs, known after the first batch
    epoch_start: float = 0.0


def _prepare(
    model: nn.Module, train_data: Any, val_data: Any, config: FitConfig, backend: Backend
) -> _Run:
    """Device, precision, data, optimizer, callbacks; resume from `last.safetensors` if any."""
    device = backend.device(config.device)
    model.to(device)
    prefer_channels_last(model, device)  # NHWC for CNNs on CUDA (faster under AMP)
    policy = resolve_precision(config.precision, device)
    size, on_device = config.batch_size, backend.on_device
    train_loader = as_loader(train_data, size, True, device, "train_data", on_device=on_device)
    val_loader = None
    if val_data is not None:
        val_loader = as_loader(val_data, size, False, device, "val_data", on_device=on_device)
    optimizer = config.optimizer or make_optimizer(model, config.lr, device=device)
    monitor = config.monitor_for(val_loader is not None)
    setup = StepSetup.create(
        model, optimizer, device, policy, loss_fn=config.loss_fn,
        grad_accum_steps=config.grad_accum_steps, max_grad_norm=config.max_grad_norm,
    )  # fmt: skip
    run = _Run(
        model=model, config=config, backend=backend, setup=setup,
        state=FitState(model, optimizer, History(), config.epochs, main=backend.main),
        callbacks=_with_builtin_callbacks(config, monitor), train_loader=train_loader,
        val_loader=val_loader, monitor=monitor, optimizer_settings=optimizer_settings(optimizer),
        progress=config.progress and backend.main,
    )  # fmt: skip
    _resume(run)
    # several processes: DDP around `model` (which stays the plain module: what gets saved)
    run.train_loader, run.val_loader = backend.prepare(setup, run.train_loader, run.val_loader)
    run.state.optimizer = setup.optimizer
    run.state.step = len(run.state.history.steps) // config.grad_accum_steps
    for cb in run.callbacks:
        cb.on_fit_start(run.state)
    return run


def _with_builtin_callbacks(config: FitConfig, monitor: str) -> list[Callback]:
    """fit's own callbacks around the user's: the best weights first (saved before anyone
    reads them), early stopping last (its message follows the epoch's other output), then what
    a dry run installed from the outside adds (`limits.py`: a step cap)."""
    first: list[Callback] = []
    folder = config.checkpoint_path
    if folder is not None or config.restore_best:
        best = folder / "best.safetensors" if folder is not None else None
        first.append(BestWeights(monitor, best, restore=config.restore_best))
    last = [EarlyStopping(monitor, config.early_stopping)] if config.early_stopping else []
    return [*first, *config.callbacks, *last, *fit_callbacks()]


def _train_epoch(run: _Run) -> dict[str, float]:
    """One pass over the training data: a `train_step` per batch, an optimizer step every
    `grad_accum_steps` batches. Returns the epoch's training numbers."""
    state, setup, device = run.state, run.setup, run.setup.device
    run.epoch_start = time.perf_counter()
    setup.model.train()
    losses: list[torch.Tensor] = []
    correct, seen, checked = torch.zeros((), device=device), 0, 0
    n_batches = len(run.train_loader) if hasattr(run.train_loader, "__len__") else None
    desc = f"epoch {state.epoch + 1}/{state.epochs}"
    bar = progress_bar(n_batches, desc, leave=False, disable=not run.progress)
    for i, batch in enumerate(run.train_loader):
        inputs, labels = split_batch(batch)
        if run.n_out is not None and labels.device.type == "cpu":  # cheap before the copy
            check_labels(labels, torch.empty(len(labels), run.n_out), setup.loss_fn is not None)
        inputs, labels = to_device(inputs, device), to_device(labels, device)
        update = (i + 1) % setup.grad_accum_steps == 0 or (
            n_batches is not None and i + 1 == n_batches
        )
        loss, logits = train_step(setup, inputs, labels, update=update, check=run.n_out is None)
        if run.n_out is None:
            run.n_out = logits.shape[-1] if logits is not None and logits.ndim == 2 else None
        if update:
            if run.config.scheduler is not None and run.config.scheduler_interval == "step":
                run.config.scheduler.step()
            state.step += 1
        losses.append(loss)
        if setup.loss_fn is None:
            correct += (logits.argmax(-1) == labels).sum()
            seen += len(labels)
        state.loss = loss
        sync = run.progress and i % run.config.log_every == 0  # the one per-step host sync
        if device.type == "cpu" or sync:  # on the CPU a check costs nothing
            checked = check_finite(losses, checked, state, inputs)
        for cb in run.callbacks:
            cb.on_step_end(state)
        bar.update(1)
        if sync:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if state.stop_now:
            break
    bar.close()
    if not losses:
        raise ValueError(
            f"train_data yielded no batches in epoch {state.epoch + 1}. An iterator or generator "
            "runs out after one pass: pass a DataLoader, a Dataset or a list of batches."
        )
    check_finite(losses, checked, state)
    if run.config.scheduler is not None and run.config.scheduler_interval == "epoch":
        run.config.scheduler.step()
    return _training_numbers(run, losses, correct, seen)


def _training_numbers(
    run: _Run, losses: list[torch.Tensor], correct: torch.Tensor, seen: int
) -> dict[str, float]:
    """The epoch's per-step losses into the history; its mean loss and accuracy (all processes)."""
    step_losses = torch.stack(losses).float()
    # several processes: every one records the same numbers, those of all processes
    step_losses, correct, seen = run.backend.combine(step_losses, correct, seen)
    step_losses = step_losses.cpu()
    run.state.history.steps.extend(step_losses.tolist())
    record: dict[str, float] = {
        "epoch": run.state.epoch + 1,
        "train_loss": step_losses.mean().item(),
    }
    if seen:
        record["train_accuracy"] = (correct / seen).item()
    return record


def _validate(run: _Run) -> dict[str, float]:
    """Loss and metrics on the validation data (none without it), as `val_<name>`."""
    if run.val_loader is None:
        return {}
    setup = run.setup
    val = evaluate(
        setup.model, run.val_loader, setup.device, run.config.metrics, setup.loss_fn,
        run.config.precision, gather=run.backend.gather,
    )  # fmt: skip
    return {f"val_{k}": v for k, v in val.items()}


def _record(run: _Run, record: dict[str, float]) -> None:
    """Append the epoch's record (plus lr and seconds), then let callbacks judge it."""
    record["lr"] = run.setup.optimizer.param_groups[0]["lr"]
    record["seconds"] = time.perf_counter() - run.epoch_start
    run.state.history.epochs.append(record)
    for cb in run.callbacks:
        cb.on_evaluate_end(run.state)
    if run.progress:
        print(
            "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
            )
        )


# --- checkpoints: save every epoch, resume from the last (resume.py) ------------------------------


def _checkpoint(run: _Run) -> None:
    """Write `last.safetensors` (main process only); every process waits until it is written."""
    folder = run.config.checkpoint_path
    if folder is not None and run.state.main:
        save_run(
            folder / "last.safetensors", run.model, run.setup.optimizer, run.config.scheduler,
            run.setup.scaler, epoch=run.state.epoch, history=run.state.history,
            monitor=run.monitor, optimizer_settings=run.optimizer_settings,
            callbacks=run.callbacks,
        )  # fmt: skip
    run.backend.wait()  # several processes: none reads a checkpoint still being written


def _resume(run: _Run) -> None:
    """Continue from `last.safetensors` in the checkpoint folder, if there is one."""
    folder = run.config.checkpoint_path
    path = folder / "last.safetensors" if folder is not None else None
    if path is None or not path.exists():
        return
    run.state.history, run.state.epoch = resume_run(
        path, run.model, run.setup.optimizer, run.config.scheduler, run.setup.scaler,
        monitor=run.monitor, optimizer_settings=run.optimizer_settings, callbacks=run.callbacks,
    )  # fmt: skip
    if run.state.main:
        print(f"Resumed from {path} after epoch {run.state.epoch}/{run.state.epochs}.")


def _finish(run: _Run) -> History:
    """The end of training: callbacks (e.g. restoring the best weights), free Accelerate's hold."""
    for cb in run.callbacks:
        cb.on_fit_end(run.state)
    run.backend.release()
    return run.state.history
