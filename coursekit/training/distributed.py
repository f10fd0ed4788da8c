"""Scaling out: the same `fit` on several processes (GPUs), through Hugging Face Accelerate.

Launch any script that calls `fit` with `accelerate launch --num_processes N script.py` or
`torchrun --nproc_per_node N script.py` and `fit` notices (`launched()`), then hands the usual
jobs to Accelerate and PyTorch DDP instead of doing them itself:

    model                 wrapped in DistributedDataParallel: gradients are averaged across
                          processes during `backward`, so every process takes the same step
    train loader          sharded: each process gets its own batches of every epoch, all cut from
                          one shuffled order (Accelerate syncs the shuffling seed)
    validation            sharded too, then `gather_for_metrics` collects every prediction and
                          drops the few repeated to give each process equal batches
    printing, checkpoints only the main process (`is_main_process()`); the saved model is the
                          plain one inside the DDP wrapper, so it loads in a single process

One optimizer step then uses `batch_size x processes` examples (x `grad_accum_steps`): the
effective batch size. Without a launcher nothing here runs and `fit` trains in one process.
`accelerate` is imported only under a launcher.
No notebook needs it (Colab has one GPU); docs/scaling.md and `finetune_script` do.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = [
    "WORLD_SIZE_VARS",
    "accelerator",
    "combine",
    "is_main_process",
    "launched",
    "num_processes",
    "prepare",
    "unwrap",
]

# Set by torchrun / `accelerate launch` (WORLD_SIZE) or by MPI launchers (mpirun on CPUs).
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

_accelerator: Accelerator | None = None


def num_processes() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    for var in WORLD_SIZE_VARS:
        value = os.environ.get(var)
        if value:
            try:
                return int(value)
            except ValueError as err:
                raise ValueError(f"{var}={value!r} is not a number of processes") from err
    return 1


def launched() -> bool:
    """True inside a multi-process launch (`accelerate launch`, `torchrun`, `mpirun` with N>1)."""
    return num_processes() > 1


def accelerator(cpu: bool | None = None) -> Accelerator:
    """This process's `accelerate.Accelerator`, built on first use and shared by every `fit`.

    cpu: run on the CPU (gloo backend) even if GPUs exist; default: only when no GPU is visible
        (torchrun does not say so itself, unlike `accelerate launch --cpu`).
    Mixed precision stays `fit`'s job (its `precision=` policy: autocast + GradScaler), so the
    accelerator is built with `mixed_precision="no"`. `find_unused_parameters=True` lets DDP train
    models with parts that get no gradient (a text encoder's unused pooler, for instance).
    """
    global _accelerator
    if _accelerator is None:
        from accelerate import Accelerator, DistributedDataParallelKwargs

        if cpu is None:
            cpu = not torch.cuda.is_available()
        _accelerator = Accelerator(
            cpu=cpu,
            mixed_precision="no",
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        if _accelerator.num_processes != num_processes():
            raise RuntimeError(
                f"the launcher started {num_processes()} processes but Accelerate sees "
                f"{_accelerator.num_processes} (distributed type "
                f"{_accelerator.distributed_type}). Launch with `accelerate launch "
                "--num_processes N` (add --cpu on a machine without GPUs) or `torchrun "
                "--nproc_per_node N`."
            )
    return _accelerator


def is_main_process() -> bool:
    """True in the one process that prints and writes files (always True in a single process)."""
    if not launched():
        return True
    return accelerator().is_main_process


def prepare(acc: Accelerator, model: torch.nn.Module, optimizer: Any, *loaders: Any) -> tuple:
    """`acc.prepare` for fit: (DDP-wrapped model, optimizer, sharded loaders...); None stays None.

    `model` itself is left as it was, only moved to the process's device: DDP wraps it without
    copying, so its weights are the trained ones and its state_dict has no "module." prefix.
    """
    present = [x for x in loaders if x is not None]
    net, optimizer, *prepared = acc.prepare(model, optimizer, *present)
    it = iter(prepared)
    return (net, optimizer, *(next(it) if x is not None else None for x in loaders))


def unwrap(acc: Accelerator | None, net: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DDP wrapper (what to save, or load a checkpoint into)."""
    return acc.unwrap_model(net) if acc is not None else net


def combine(
    acc: Accelerator, step_losses: torch.Tensor, correct: torch.Tensor, seen: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch's training numbers over all processes: each step's loss averaged, correct
    predictions and examples seen summed. Every process gets the same result, so decisions
    taken from them (best epoch, early stopping) agree everywhere and no process hangs."""
    totals = torch.stack([correct.float(), torch.tensor(float(seen), device=correct.device)])
    correct, seen_all = acc.reduce(totals, reduction="sum")
    return acc.reduce(step_losses, reduction="mean"), correct, seen_all
