"""What a training strategy costs: seconds per step, peak memory, optimizer state, file size,
inference latency, and arithmetic (multiply-adds per layer, FLOPs per step, MFU).

Steps are measured on a copy of the model, so the model you pass is untouched, and they are the
steps `fit` takes (same step function, optimizer and precision). A single step time is noisy
(other processes, caches, clock boosts), so `measure_step` times `steps` steps after `warmup`
untimed ones and keeps them all: `StepCost.seconds_per_step` is the median, `seconds_se` the
standard error of the mean and `spread` the inter-quartile range, so a lesson can say "3.1x
faster" only when the spreads do not overlap (see `coursekit.claims`). Lessons 03 (multiply-adds
of a one-channel stem), 05 (LoRA's cost) and 06 (the strategy sweep); benchmarks/ too.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..claims import mean_se
from ..params import count_parameters
from ..runtime.device import HardwareInfo, peak_memory, resolve_device, resolve_precision
from ..training.batches import forward_logits, split_batch, to_device
from ..training.optim import make_optimizer
from ..training.step import LossFn, StepSetup, train_step

__all__ = [
    "StepCost",
    "count_multiply_adds",
    "file_size_mb",
    "inference_latency",
    "measure_step",
    "model_flops_utilization",
    "optimizer_state_bytes",
    "peak_flops",
    "training_flops",
]


@dataclass(frozen=True)
class StepCost:
    """The cost of one optimizer step of a strategy."""

    seconds_per_step: float  # median over the timed steps
    peak_mb: float  # CUDA: max allocated; CPU: process peak RSS
    peak_increase_mb: float  # how far the steps pushed memory above where it started
    trainable: int
    optimizer_state_bytes: int
    step_times: tuple[float, ...] = ()  # every timed step, in seconds

    @property
    def seconds_se(self) -> float:
        """Standard error of the mean step time (0 when fewer than two steps were timed)."""
        return mean_se(self.step_times)[1] if self.step_times else 0.0

    @property
    def spread(self) -> tuple[float, float]:
        """(25th, 75th) percentile of the step times: half the steps took between these."""
        if len(self.step_times) < 2:
            return (self.seconds_per_step, self.seconds_per_step)
        q = statistics.quantiles(self.step_times, n=4)
        return (q[0], q[2])


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimizer's state tensors (AdamW: two fp32 moments per trainable param)."""
    return sum(
        v.numel() * v.element_size()
        for state in optimizer.state.values()
        for v in state.values()
        if isinstance(v, torch.Tensor) and v.ndim > 0  # skip the scalar step counters
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_step(
    model: nn.Module,
    batch: Any,
    *,
    lr: float = 1e-4,
    steps: int = 10,
    warmup: int = 2,
    device: torch.device | str | None = None,
    precision: str = "auto",
    loss_fn: LossFn | None = None,
    copy_model: bool = True,
) -> StepCost:
    """Time `steps` training steps on `batch` (after `warmup` untimed ones) on a copy of `model`:
    `fit`'s own step (`training.step.train_step`) with `fit`'s default optimizer
    (`optim.make_optimizer`) at `fit`'s precision, so the cost measured is the cost of training.

    The first steps allocate optimizer state and warm caches, so they are not timed; the result
    keeps every timed step (`step_times`) for the median, its standard error and the spread.
    `loss_fn`: as `fit`'s (e.g. lesson 08's `causal_lm_loss`); default cross-entropy.
    `copy_model=False` trains `model` itself (it changes; saves a copy's memory)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1 timed steps, got {steps}")
    device = resolve_device(device)
    work = (copy.deepcopy(model) if copy_model else model).to(device).train()
    opt = make_optimizer(work, lr, device=device)
    setup = StepSetup.create(
        work, opt, device, resolve_precision(precision, device), loss_fn=loss_fn
    )
    inputs, labels = split_batch(batch)
    inputs, labels = to_device(inputs, device), to_device(labels, device)
    for i in range(warmup):
        train_step(setup, inputs, labels, check=i == 0)
    times = []
    with peak_memory(device) as mem:
        for _ in range(steps):
            _sync(device)
            t0 = time.perf_counter()
            train_step(setup, inputs, labels)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return StepCost(
        statistics.median(times),
        mem.peak_mb,
        mem.increase_mb,
        count_parameters(work).trainable,
        optimizer_state_bytes(opt),
        tuple(times),
    )


@torch.no_grad()
def inference_latency(
    model: nn.Module,
    inputs: Any,
    *,
    repeats: int = 10,
    warmup: int = 2,
    device: torch.device | str | None = None,
) -> float:
    """Median seconds for one forward pass of `model` on `inputs` in eval mode."""
    device = resolve_device(device)
    was_training = model.training
    model.eval().to(device)
    inputs = to_device(inputs, device)
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        forward_logits(model, inputs)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    model.train(was_training)
    return statistics.median(times)


def file_size_mb(path: str | Path) -> float:
    """Size of a file in MB (10^6 bytes)."""
    return Path(path).stat().st_size / 1e6


# ---------------------------------------------------------------------------------------------
# FLOPs and model FLOP/s utilisation (MFU)

# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets: (bf16/fp16 tensor cores, fp32).
# Matched in order against the device name, so the more specific names come first.
_PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 756.0, 51.2),
    ("H100", 989.4, 66.9),  # SXM / HBM3
    ("H200", 989.4, 66.9),
    ("A100", 312.0, 19.5),
    ("L4", 121.0, 30.3),
    ("V100", 125.0, 15.7),  # fp16 tensor cores (no bf16)
    ("T4", 65.0, 8.1),  # fp16 tensor cores (no bf16)
)


def peak_flops(info: HardwareInfo, dtype: torch.dtype | None) -> float | None:
    """The device's peak FLOP/s for `dtype` (None = fp32), or None when unknown.

    `$COURSEKIT_PEAK_TFLOPS` overrides the table (e.g. for a GPU it does not list). CPUs and
    MPS return None: their peak depends on clocks and vector units we cannot read portably.
    """
    override = os.environ.get("COURSEKIT_PEAK_TFLOPS")
    if override:
        return float(override) * 1e12
    if info.device_type != "cuda":
        return None
    for name, half, single in _PEAK_TFLOPS:
        if name in info.name:
            return (single if dtype is None else half) * 1e12
    return None


def model_flops_utilization(
    flops_per_step: float, seconds_per_step: float, peak: float | None
) -> float | None:
    """MFU: the fraction of the peak FLOP/s a training step achieves (None if peak unknown)."""
    if peak is None or seconds_per_step <= 0:
        return None
    return flops_per_step / seconds_per_step / peak


def training_flops(model: nn.Module, batch: Any, device: torch.device | str | None = None) -> int:
    """FLOPs of one full training step on `batch`: 3 x the forward pass's FLOPs (the backward
    pass costs about twice the forward: gradients for activations and for weights), the usual
    convention for MFU. The forward pass is counted by torch's FlopCounterMode (matrix multiplies
    and convolutions; element-wise work is not counted). The backward is not counted directly
    because torch's counter ignores `groups` in convolution_backward and overcounts depthwise
    convolutions (EfficientNet's) many times over."""
    from torch.utils.flop_counter import FlopCounterMode

    device = resolve_device(device)
    inputs = to_device(split_batch(batch)[0], device)
    was_training = model.training
    model.to(device).eval()  # eval: BatchNorm must not update its statistics; FLOPs are equal
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        forward_logits(model, inputs)
    model.train(was_training)
    return 3 * int(counter.get_total_flops())


def count_multiply_adds(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Multiply-adds of every nn.Conv2d and nn.Linear in one forward pass of `x`, by module name:
    per output value, (in_channels / groups) x kernel area, or in_features. Nearly all of a CNN's
    arithmetic, so `sum(result.values())` is a fair total and `result[stem] / total` its share."""
    counts: dict[str, int] = {}

    def hook(name: str):
        def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                per_pixel = module.in_channels // module.groups * module.kernel_size[0]
                macs = output.numel() * per_pixel * module.kernel_size[1]
            else:
                macs = output.numel() * module.in_features
            counts[name] = counts.get(name, 0) + macs

        return count

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts
