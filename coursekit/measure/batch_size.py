"""Find the largest batch size that fits in memory: try one, halve it on out-of-memory.

A batch size that works on an 80 GB H100 runs out of memory on a 16 GB T4; one that fits a T4
leaves an H100 mostly idle. `find_batch_size` tries `start`, and on a CUDA (or MPS)
out-of-memory error frees what the failed try left behind and tries half as many, down to
`minimum`. `training_step_probe` builds the usual try: one forward and backward pass on a batch
of that size, with room kept for AdamW's state, so the size found is one `fit` can train with.

    probe = training_step_probe(model, lambda n: next(iter(DataLoader(train_ds, n))))
    batch_size = find_batch_size(probe, start=256)
Used by benchmarks/gpu.py and docs/performance.md to size GPU batches; no lesson calls it directly.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..runtime.device import resolve_device
from ..training.batches import forward_logits, split_batch, to_device

__all__ = ["find_batch_size", "free_memory", "is_out_of_memory", "training_step_probe"]


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA's OutOfMemoryError and the RuntimeErrors MPS and older torch raise."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(err, (oom_type, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def free_memory() -> None:
    """Release what a failed try left behind (Python garbage, cached GPU blocks)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()


def find_batch_size(
    try_batch: Callable[[int], Any],
    start: int = 256,
    *,
    minimum: int = 1,
    verbose: bool = True,
) -> int:
    """The largest of start, start/2, start/4, ... (>= `minimum`) for which `try_batch(n)` runs
    without running out of memory. Other errors are raised at once (they are bugs, not sizes).
    """
    if start < 1 or minimum < 1 or minimum > start:
        raise ValueError(f"need 1 <= minimum <= start, got start={start}, minimum={minimum}")
    n = start
    while True:
        try:
            try_batch(n)
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            del err  # drop the traceback, which holds the failed try's tensors
            free_memory()
            if n // 2 < minimum:
                raise RuntimeError(
                    f"out of memory even at batch size {n} (minimum {minimum}). Use a smaller "
                    "model, shorter inputs or smaller images, precision='bf16'/'fp16', or "
                    "freeze more of the model."
                ) from None
            if verbose:
                print(f"batch size {n}: out of memory, trying {n // 2}")
            n //= 2
            continue
        free_memory()
        if verbose:
            print(f"batch size {n} fits")
        return n


def training_step_probe(
    model: nn.Module,
    make_batch: Callable[[int], Any],
    *,
    device: torch.device | str | None = None,
    precision: str = "auto",
    optimizer_bytes_per_param: int = 8,
) -> Callable[[int], None]:
    """A `try_batch` for `find_batch_size`: forward + backward on `make_batch(n)` under the
    training precision, while holding a placeholder as large as AdamW's state (8 bytes per
    trainable parameter) so the size found leaves room for it. Gradients are cleared after each
    try; the weights are not changed (no optimizer step).
    """
    from ..runtime.device import autocast, resolve_precision

    device = resolve_device(device)
    policy = resolve_precision(precision, device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def try_batch(n: int) -> None:
        model.to(device).train()
        reserve = torch.empty(
            trainable * optimizer_bytes_per_param, dtype=torch.uint8, device=device
        )
        try:
            inputs, labels = split_batch(make_batch(n))
            inputs, labels = to_device(inputs, device), to_device(labels, device)
            with autocast(device, policy):
                logits = forward_logits(model, inputs)
            nn.functional.cross_entropy(logits.float(), labels).backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        finally:
            model.zero_grad(set_to_none=True)
            del reserve

    return try_batch
