"""What a training run leaves behind: its `History`, the per-step losses and one record per epoch.

`fit` returns it and writes it into every checkpoint (`resume.py`); plots (`viz.plot_history`) and
tables read it, and callbacks (`callbacks.py`) see it grow during training. Every lesson that
trains (00, 02-06) reads a `History`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


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
