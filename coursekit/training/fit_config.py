"""`FitConfig`: every setting of one training run, in one typed, checked place.

`fit(model, train_data, val_data, epochs=3, lr=1e-3, ...)` is what a learner writes; `fit` turns
those keywords into a `FitConfig` first, so the loop reads `config.lr`, `config.grad_accum_steps`
and so on, each with its type, its default and its meaning written once, here. A setting that
cannot work (a batch size of 0, a scheduler interval that is neither "step" nor "epoch") is
refused before any weight moves, with what to pass instead. Lessons 00 and 02-06 train through it;
`FitConfig.fields()` lists the settings (`fit`'s keyword arguments are exactly these).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .callbacks import Callback
from .metrics import METRICS

__all__ = ["SCHEDULER_INTERVALS", "FitConfig"]

SCHEDULER_INTERVALS = ("step", "epoch")


@dataclass(frozen=True)
class FitConfig:
    """The settings of one `fit` run (see `fit` for what each does)."""

    epochs: int = 1
    lr: float = 1e-3
    optimizer: torch.optim.Optimizer | None = None  # None: optim.make_optimizer(model, lr)
    scheduler: Any = None  # anything with .step() (and state_dict() to be checkpointed)
    scheduler_interval: str = "step"  # "step": every optimizer step; "epoch": every epoch
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None  # cross-entropy
    batch_size: int = 32  # per process, for data given as a Dataset
    device: torch.device | str | None = None  # None: the fastest here
    precision: str = "auto"  # "auto", "bf16", "fp16" or "fp32"
    grad_accum_steps: int = 1  # batches per optimizer step
    max_grad_norm: float | None = None  # clip the gradient norm to this
    metrics: Sequence[str] = ("accuracy",)  # computed on val_data after every epoch
    monitor: str | None = None  # None: "val_loss", or "train_loss" without val_data
    early_stopping: int | None = None  # patience in epochs (None or 0: off)
    checkpoint_dir: str | Path | None = None  # last.safetensors every epoch; resume from it
    restore_best: bool = False  # load the best epoch's weights at the end
    callbacks: Sequence[Callback] = ()
    progress: bool = True  # a progress bar and one line per epoch
    log_every: int = 20  # batches between loss updates on the bar (each a host sync)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum_steps", "log_every"):
            value = getattr(self, name)
            try:
                whole = not isinstance(value, bool) and operator.index(value) >= 1
            except TypeError:
                whole = False
            if not whole:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.scheduler_interval not in SCHEDULER_INTERVALS:
            raise ValueError(
                f"scheduler_interval must be one of {SCHEDULER_INTERVALS}, got "
                f"{self.scheduler_interval!r}"
            )
        if isinstance(self.metrics, str):
            raise TypeError(f"metrics is a list of names, e.g. ({self.metrics!r},)")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")

    @classmethod
    def fields(cls) -> dict[str, Any]:
        """Each setting's name and default, in order (what `fit` takes as keywords)."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    def monitor_for(self, has_val_data: bool) -> str:
        """The metric that picks the best epoch: `monitor`, else val_loss or train_loss."""
        if self.monitor is not None:
            return self.monitor
        return "val_loss" if has_val_data else "train_loss"

    @property
    def checkpoint_path(self) -> Path | None:
        """The checkpoint folder as a Path (None: no checkpoints)."""
        return Path(self.checkpoint_dir) if self.checkpoint_dir is not None else None
