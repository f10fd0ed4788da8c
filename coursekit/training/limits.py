"""The full-mode dry run: a step cap installed from the outside, never read from the environment.

`coursekit course --mode full --max-steps N` checks on a CPU, in minutes, that every lesson's
full-mode sizes fit in memory, which would otherwise take hours of compute to find out. The
course runner starts each notebook's kernel with `install_dry_run(N)` (an IPython start-up line),
or a script enters `with dry_run(N): ...`; the library reads no switch of its own. While one is
active:

    training runs       stop after N optimizer steps: `fit` adds `StepLimit(N)` (`fit_callbacks`)
                        and the LR range test sweeps N rates (`sweep_length`)
    prediction passes   `evaluation.predict` (so `evaluate` and fit's validation too) runs the
                        first N batches and returns *their* logits and labels: fewer rows, each
                        a real output next to its own label (`limit_batches`); nothing is filled in
    everything else     as always: feature extraction runs over every example (a frozen
                        backbone's features are the same in a dry run; they are real and cached),
                        data keep their full-mode sizes and shapes

A dry run's numbers come from models trained N steps, so `claims` report "not checked" instead of
judging them, and `drive.resumable` never hands a cut run a real checkpoint folder. Lessons never
call this module; the runner (`course.py`) and tests do.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from .callbacks import Callback, StepLimit

__all__ = [
    "DryRun",
    "active_dry_run",
    "dry_run",
    "fit_callbacks",
    "install_dry_run",
    "limit_batches",
    "sweep_length",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DryRun:
    """A dry run: every training run cut to `steps` optimizer steps, every prediction pass to
    `steps` batches."""

    steps: int

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.steps!r}")

    def __str__(self) -> str:
        return f"a dry run of {self.steps} optimizer steps per training run"


_active: DryRun | None = None


def active_dry_run() -> DryRun | None:
    """The dry run in force in this process, or None (the usual case)."""
    return _active


def install_dry_run(steps: int | None) -> DryRun | None:
    """Put a dry run of `steps` in force for the rest of this process (None: end it). The course
    runner calls this as a kernel starts; returns the dry run now in force."""
    global _active
    _active = DryRun(steps) if steps is not None else None
    return _active


@contextmanager
def dry_run(steps: int) -> Iterator[DryRun]:
    """A dry run of `steps` for the block, then whatever was in force before."""
    before = _active
    try:
        yield install_dry_run(steps)
    finally:
        install_dry_run(before.steps if before is not None else None)


def fit_callbacks() -> list[Callback]:
    """What `fit` adds to every run: `StepLimit` under a dry run, nothing otherwise."""
    return [StepLimit(_active.steps)] if _active is not None else []


def sweep_length(steps: int) -> int:
    """How many steps a sweep (the LR range test) of `steps` takes: all, or the dry run's cap."""
    return min(steps, _active.steps) if _active is not None else steps


def limit_batches(batches: Iterable[T]) -> Iterable[T]:
    """The batches of a prediction pass: all of them, or the first N under a dry run."""
    if _active is None:
        return batches
    return itertools.islice(batches, _active.steps)
