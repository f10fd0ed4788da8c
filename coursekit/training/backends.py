"""One process or several: what `fit` does differently under Accelerate, behind one interface.

`fit` trains the same way everywhere; only six things depend on how many processes run it, and
a `Backend` answers each of them, so the loop (`loop.py`) has no branch on "launched or not":

    device(requested)   where this process trains: the requested/fastest device, or the one the
                        launcher gave this process
    on_device           whether image data may be prepared on that device (`batches.as_loader`);
                        Accelerate shards only real DataLoaders, so several processes keep them
    prepare(setup, ...) nothing, or wrap the model in DDP, shard the loaders and route `backward`
                        through Accelerate (gradients averaged across processes)
    gather              None, or Accelerate's `gather_for_metrics` for `evaluation.predict`
    combine(...)        the epoch's losses and accuracy counts, as they are or over all processes
    wait(), release()   after a checkpoint: nothing, or wait until the main process wrote it;
                        at the end: nothing, or free Accelerate's references to the run

`SingleProcess` is what a notebook gets; `AccelerateBackend` what `accelerate launch` or `torchrun`
with several processes gets (`for_this_process()` picks). `distributed.py` holds the Accelerate
helpers both rely on and explains what DDP does. docs/scaling.md; no lesson needs several.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..runtime.device import resolve_device
from . import distributed
from .step import StepSetup

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["AccelerateBackend", "Backend", "SingleProcess", "for_this_process"]


class Backend(Protocol):
    """What `fit` asks of the process(es) it runs in (see the module docstring)."""

    main: bool  # the one process that prints and saves
    on_device: bool  # may image data be prepared on the training device?
    gather: Callable[[Any], Any] | None  # collects evaluation batches from every process

    def device(self, requested: torch.device | str | None) -> torch.device: ...

    def prepare(self, setup: StepSetup, train_loader: Any, val_loader: Any) -> tuple[Any, Any]: ...

    def combine(
        self, step_losses: torch.Tensor, correct: torch.Tensor, seen: int
    ) -> tuple[torch.Tensor, torch.Tensor, Any]: ...

    def wait(self) -> None: ...

    def release(self) -> None: ...


class SingleProcess:
    """Training in this process alone: everything as given."""

    main = True
    on_device = True
    gather = None

    def device(self, requested: torch.device | str | None) -> torch.device:
        return resolve_device(requested)

    def prepare(self, setup: StepSetup, train_loader: Any, val_loader: Any) -> tuple[Any, Any]:
        return train_loader, val_loader

    def combine(
        self, step_losses: torch.Tensor, correct: torch.Tensor, seen: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        return step_losses, correct, seen

    def wait(self) -> None:
        pass

    def release(self) -> None:
        pass


class AccelerateBackend:
    """Training in one of several processes started by a launcher, through `acc`."""

    on_device = False

    def __init__(self, acc: Accelerator) -> None:
        self.acc = acc
        self.main = acc.is_main_process
        self.gather = acc.gather_for_metrics

    def device(self, requested: torch.device | str | None) -> torch.device:
        return resolve_device(self.acc.device)  # the launcher decides; `requested` is ignored

    def prepare(self, setup: StepSetup, train_loader: Any, val_loader: Any) -> tuple[Any, Any]:
        """DDP model, Accelerate's optimizer and backward, sharded loaders. `setup.model` becomes
        the wrapped model; the plain model (what `fit` saves) is left as it was."""
        setup.model, setup.optimizer, train_loader, val_loader = distributed.prepare(
            self.acc, setup.model, setup.optimizer, train_loader, val_loader
        )
        setup.backward = self.acc.backward
        return train_loader, val_loader

    def combine(
        self, step_losses: torch.Tensor, correct: torch.Tensor, seen: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return distributed.combine(self.acc, step_losses, correct, seen)

    def wait(self) -> None:
        self.acc.wait_for_everyone()  # no process reads a checkpoint still being written

    def release(self) -> None:
        self.acc.free_memory()  # let go of this run's model, optimizer and loaders


def for_this_process() -> Backend:
    """`AccelerateBackend` under a multi-process launcher, `SingleProcess` otherwise."""
    if distributed.launched():
        return AccelerateBackend(distributed.accelerator())
    return SingleProcess()
