"""Hooking into `fit`: the `Callback` interface, the `FitState` it sees, the callbacks fit adds.

`fit` reports through callbacks so that training never imports plotting: the live learning-curve
plot in `viz` is just a callback, and so are early stopping and best-checkpoint saving. Lessons
04 (gradual unfreezing) and 00 (the live plot) write their own.

Early stopping and keeping the best epoch's weights are the two callbacks `fit` adds for you.

Both watch one number of the epoch record, the *monitor* (`fit`'s default: "val_loss", or
"train_loss" without validation data): lower is better for a loss, higher for anything else.
`EarlyStopping(patience=N)` ends training after N epochs without improvement
(`fit(..., early_stopping=N)`); `BestWeights` saves the best epoch's weights to
`best.safetensors` (`fit(..., checkpoint_dir=...)`) or keeps them in memory, and puts them back
into the model at the end (`restore_best=True`). Their state (the best value so far, the epochs
without improvement) goes into every checkpoint, so a resumed run stops exactly where the
uninterrupted run would have (like Lightning's `EarlyStopping.state_dict()`). Lessons 00, 03-06.

`StepLimit(n)` ends a run after n optimizer steps: `fit` adds it in a dry run (`limits.py`), the
full-mode check on a CPU (`coursekit course --mode full --max-steps N`), which runs every notebook
at full-mode data sizes but cuts each training run short.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_weights, save_weights
from .history import History

__all__ = [
    "BestWeights",
    "Callback",
    "EarlyStopping",
    "FitState",
    "StepLimit",
    "improved",
    "monitored_value",
]


@dataclass
class FitState:
    """What a callback sees during `fit`.

    Set `stop = True` to end training after this epoch (early stopping does), or
    `stop_now = True` in `on_step_end` to end it right after this step (the epoch is then
    recorded, evaluated and checkpointed as usual, from the batches it trained on).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epochs: int
    epoch: int = 0
    step: int = 0  # optimizer steps taken so far
    loss: torch.Tensor | None = None  # last micro-batch loss (a device tensor: no host sync)
    stop: bool = False
    stop_now: bool = False
    main: bool = True  # the one process that prints and saves (always True in one process)


class Callback:
    """Override any of these; each receives the live `FitState`. Per epoch, `fit` calls
    `on_evaluate_end` once the epoch's record (train and validation metrics) is in
    `state.history`, then saves the checkpoint, then calls `on_epoch_end`.

    A callback with state that must survive a resume (early stopping's patience count, the best
    value so far) returns it from `state_dict` (numbers, strings, lists, dicts, tensors); `fit`
    stores it in the checkpoint under `state_key` and hands it back to `load_state_dict`.
    """

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def on_fit_start(self, state: FitState) -> None: ...

    def on_step_end(self, state: FitState) -> None: ...

    def on_evaluate_end(self, state: FitState) -> None: ...

    def on_epoch_end(self, state: FitState) -> None: ...

    def on_fit_end(self, state: FitState) -> None: ...


def improved(value: float, best: float | None, monitor: str) -> bool:
    """Whether `value` beats `best` (None: nothing yet): lower for losses, higher otherwise."""
    if best is None:
        return True
    return value < best if "loss" in monitor else value > best


def monitored_value(state: FitState, monitor: str) -> float:
    """The monitored number of the epoch just recorded; a clear error if it is not recorded."""
    record = state.history.last
    if monitor not in record:
        raise ValueError(
            f"monitor={monitor!r} is not in the epoch record, which has {sorted(record)}. "
            "Validation metrics (val_*) need val_data; pass one of the recorded names."
        )
    return record[monitor]


class EarlyStopping(Callback):
    """Stop training once `monitor` has not improved for `patience` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3) -> None:
        if patience < 1:
            raise ValueError(f"early stopping patience must be >= 1 epoch, got {patience}")
        self.monitor, self.patience = monitor, patience
        self.best: float | None = None
        self.wait = 0  # epochs since the last improvement

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]

    def on_evaluate_end(self, state: FitState) -> None:
        value = monitored_value(state, self.monitor)
        if improved(value, self.best, self.monitor):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            state.stop = True

    def on_epoch_end(self, state: FitState) -> None:
        if self.wait >= self.patience and state.main:
            print(f"Early stopping: {self.monitor} has not improved for {self.wait} epochs.")


class BestWeights(Callback):
    """Keep the weights of the best epoch: in `path` (a safetensors file) or, without a path,
    in memory when `restore` is set; `restore=True` loads them into the model at the end."""

    def __init__(
        self, monitor: str = "val_loss", path: str | Path | None = None, restore: bool = False
    ) -> None:
        self.monitor, self.restore = monitor, restore
        self.path = Path(path) if path is not None else None
        self.best: float | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]

    def on_evaluate_end(self, state: FitState) -> None:
        value = monitored_value(state, self.monitor)
        if not improved(value, self.best, self.monitor):
            return
        self.best = value
        if self.path is not None:
            if state.main:
                save_weights(self.path, state.model)
        elif self.restore:
            self.weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    def on_fit_end(self, state: FitState) -> None:
        if not self.restore:
            return
        if self.path is not None and self.path.exists():
            load_weights(self.path, state.model)
        elif self.weights is not None:
            state.model.load_state_dict(self.weights)


class StepLimit(Callback):
    """Stop training right after `steps` more optimizer steps (counted from where `fit` starts)."""

    def __init__(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.steps, self.stop_at = steps, steps

    def on_fit_start(self, state: FitState) -> None:
        self.stop_at = state.step + self.steps

    def on_step_end(self, state: FitState) -> None:
        if state.step >= self.stop_at:
            state.stop_now = True
