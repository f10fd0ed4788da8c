"""What a training run leaves behind (`History`) and how to hook into one (`Callback`).

`fit` reports through callbacks so that training never imports plotting: the live learning-curve
plot in `viz` is just a callback, and so are early stopping and best-checkpoint saving
(`callbacks.py`). Every lesson that trains reads a `History`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Callback", "FitState", "History"]


@dataclass
class History:
    """Per-step training loss and one record per epoch (losses, metrics, lr, seconds)."""

    steps: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)

    def metric(self, name: str) -> list[float]:
        """One value per epoch, e.g. `history.metric("val_accuracy")`."""
        return [e[name] for e in self.epochs if name in e]

    def best(self, name: str) -> float:
        """The best value of a metric: lowest for losses, highest for everything else."""
        values = self.metric(name)
        if not values:
            raise KeyError(
                f"no metric {name!r}; recorded: {sorted(self.epochs[-1]) if self.epochs else []}"
            )
        return min(values) if "loss" in name else max(values)

    def best_epoch(self, name: str = "val_loss") -> int:
        """The epoch (1-based, as recorded) with the best value of a metric: where early
        stopping's `BestWeights` keeps the weights."""
        best = self.best(name)
        return int(next(e["epoch"] for e in self.epochs if e.get(name) == best))

    @property
    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}

    @property
    def total_seconds(self) -> float:
        return sum(e.get("seconds", 0.0) for e in self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "epochs": [dict(e) for e in self.epochs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(steps=list(d.get("steps", [])), epochs=[dict(e) for e in d.get("epochs", [])])

    def table(self) -> str:
        """A plain-text table of the epoch records."""
        if not self.epochs:
            return "(no epochs yet)"
        cols = list(self.epochs[0])
        rows = [
            [
                f"{e.get(c, ''):.4g}" if isinstance(e.get(c), float) else str(e.get(c, ""))
                for c in cols
            ]
            for e in self.epochs
        ]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        return "\n".join([fmt.format(*cols)] + [fmt.format(*r) for r in rows])


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
