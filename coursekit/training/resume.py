"""What `fit` saves every epoch, and how it picks up a run where it stopped (lessons 00, 03-06).

`fit(..., checkpoint_dir=...)` writes `last.safetensors` after every epoch (`save_run`): the
weights, the optimizer, scheduler and GradScaler states, the random state, the history, every
callback's state (early stopping's count, the best value so far) and the settings a resume must
share: the optimizer's class and hyperparameters (`optim.optimizer_settings`) and the monitored
metric. The next `fit` with the same folder resumes from it (`resume_run`), but first checks
those settings: a checkpoint saved with SGD cannot continue an AdamW run, nor one monitoring
"train_loss" a run that now has validation data; such a checkpoint is refused, with what differs
and how to start afresh, before anything in the model changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .callbacks import Callback
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .history import History
from .optim import settings_differences

__all__ = ["callback_states", "resume_problems", "resume_run", "save_run"]

# Callbacks whose state a checkpoint from before callbacks kept state held as "best"/"bad_epochs".
_EARLIER_FORMAT = ("BestWeights", "EarlyStopping")


def callback_states(callbacks: Sequence[Callback]) -> dict[str, Callback]:
    """Each callback under its `state_key` (a repeated key gets "#1", "#2" ... after the first)."""
    keys = [cb.state_key for cb in callbacks]
    unique = [k if keys.count(k) == 1 else f"{k}#{keys[:i].count(k)}" for i, k in enumerate(keys)]
    return dict(zip(unique, callbacks, strict=True))


def save_run(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    *,
    epoch: int,
    history: History,
    monitor: str,
    optimizer_settings: dict[str, Any],
    callbacks: Sequence[Callback],
) -> Path:
    """Write the checkpoint of a run after `epoch` (0-based), atomically."""
    state = {
        "epoch": epoch,
        "history": history.to_dict(),
        "monitor": monitor,
        "optimizer": optimizer_settings,
        "callbacks": {k: cb.state_dict() for k, cb in callback_states(callbacks).items()},
    }
    return save_checkpoint(path, model, optimizer, scheduler, scaler, state=state)


def resume_problems(
    saved: dict[str, Any], monitor: str, optimizer_settings: dict[str, Any]
) -> list[str]:
    """What differs between the run that saved `saved` (a checkpoint's state) and this one."""
    problems = []
    if "optimizer" in saved:
        problems += settings_differences(saved["optimizer"], optimizer_settings)
    was = saved.get("monitor", monitor)
    if was != monitor:
        why = {("train_loss", "val_loss"): " (validation data was added)"}
        problems.append(
            f"monitor: checkpoint {was!r}, now {monitor!r}{why.get((was, monitor), '')}; "
            "its best value and early-stopping count were measured on the other"
        )
    return problems


def resume_run(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    *,
    monitor: str,
    optimizer_settings: dict[str, Any],
    callbacks: Sequence[Callback],
) -> tuple[History, int]:
    """Restore a run from `path` into the given objects; return (its history, the next epoch).

    Refuses (CheckpointError) a checkpoint saved with other settings, before changing anything.
    """

    def check(saved: dict[str, Any]) -> None:
        problems = resume_problems(saved, monitor, optimizer_settings)
        if problems:
            raise CheckpointError(
                f"{path} was saved by a run with other settings, so resuming would not continue "
                "it:\n  " + "\n  ".join(problems) + "\nResume with the checkpoint's settings "
                "(same optimizer, lr, monitor, validation data), or start afresh: delete "
                f"{path} or pass another checkpoint_dir."
            )

    saved = load_checkpoint(path, model, optimizer, scheduler, scaler, check=check)
    states = saved.get("callbacks")
    if states is None and "best" in saved:
        states = {k: {"best": saved["best"], "wait": saved["bad_epochs"]} for k in _EARLIER_FORMAT}
    for key, cb in callback_states(callbacks).items():
        if key in (states or {}):
            cb.load_state_dict(states[key])
    return History.from_dict(saved["history"]), saved["epoch"] + 1
