"""The machine: which device to use, what it can do, and how to measure and seed it.

Everything here works on a CPU-only laptop (it never crashes for lack of a GPU), on Apple MPS and
on CUDA GPUs from a Colab T4 to an H100.
Every lesson (00-08) picks its device and seeds here; lesson 00 explains the hardware report.
"""

from __future__ import annotations

import functools
import os
import platform
import random
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "HardwareInfo",
    "autocast",
    "PeakMemory",
    "PrecisionPolicy",
    "adamw_kwargs",
    "dataloader_kwargs",
    "describe_hardware",
    "on_colab",
    "peak_memory",
    "pick_device",
    "resolve_device",
    "prefer_channels_last",
    "precision_policy",
    "resolve_precision",
    "seed_everything",
    "warn_if_no_gpu",
]


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple MPS, then CPU (or `prefer`, e.g. "cpu")."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """`device` as a torch.device; None picks the fastest available one (`pick_device`)."""
    return torch.device(device) if device is not None else pick_device()


@dataclass(frozen=True)
class HardwareInfo:
    """What a device is and can do; enough to choose precision and batch sizes."""

    device_type: str  # "cuda", "mps" or "cpu"
    name: str
    memory_gb: float | None  # GPU memory; None for CPU/MPS (shared with the system)
    compute_capability: tuple[int, int] | None  # CUDA only, e.g. (7, 5) for a T4
    bf16: bool  # fast bfloat16 matrix units
    cpu_count: int

    def __str__(self) -> str:
        parts = [f"{self.device_type}: {self.name}"]
        if self.memory_gb is not None:
            parts.append(f"{self.memory_gb:.1f} GB")
        if self.compute_capability is not None:
            parts.append("compute capability {}.{}".format(*self.compute_capability))
        parts.append(f"bf16 {'yes' if self.bf16 else 'no'}")
        parts.append(f"{self.cpu_count} CPU cores")
        return ", ".join(parts)


def describe_hardware(device: torch.device | str | None = None) -> HardwareInfo:
    """Describe `device` (default: `pick_device()`)."""
    device = resolve_device(device)
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        cc = (props.major, props.minor)
        return HardwareInfo(
            "cuda", props.name, props.total_memory / 1e9, cc, bf16=cc >= (8, 0), cpu_count=cpus
        )
    if device.type == "mps":
        return HardwareInfo("mps", "Apple GPU (MPS)", None, None, bf16=False, cpu_count=cpus)
    name = platform.processor() or platform.machine() or "CPU"
    return HardwareInfo("cpu", name, None, None, bf16=False, cpu_count=cpus)


@dataclass(frozen=True)
class PrecisionPolicy:
    """How to run the forward pass: autocast dtype (None = fp32) and whether to scale the loss."""

    dtype: torch.dtype | None
    grad_scaler: bool
    reason: str

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")


def precision_policy(info: HardwareInfo) -> PrecisionPolicy:
    """bf16 on Ampere and newer (A100, H100, L4); fp16 + GradScaler on older GPUs (T4, V100),
    which lack fast bf16 and whose fp16 gradients underflow without scaling; fp32 on CPU and MPS.
    """
    if info.device_type == "cuda":
        if info.bf16:
            return PrecisionPolicy(torch.bfloat16, False, f"{info.name} has fast bf16")
        return PrecisionPolicy(
            torch.float16, True, f"{info.name} has no fast bf16: fp16 with loss scaling"
        )
    return PrecisionPolicy(None, False, f"{info.device_type}: full fp32 precision")


def on_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def warn_if_no_gpu(expect_gpu: bool | None = None) -> bool:
    """Warn loudly when a GPU is expected (full mode, or Colab) but none is attached.

    Returns True when a warning was given. Never raises: the course still runs on the CPU.
    """
    if expect_gpu is None:
        from .config import get_mode

        expect_gpu = get_mode() == "full" or on_colab()
    if not expect_gpu or torch.cuda.is_available():
        return False
    how = (
        "In Colab: Runtime > Change runtime type > Hardware accelerator: T4 GPU > Save, "
        "then run the notebook again from the top."
        if on_colab()
        else "Attach a CUDA GPU, or run in quick mode: COURSEKIT_MODE=quick."
    )
    bar = "!" * 72
    msg = f"\n{bar}\nNO GPU ATTACHED, but this run expects one: it will be very slow.\n{how}\n{bar}"
    print(msg, file=sys.stderr)
    warnings.warn("No GPU attached but one is expected. " + how, stacklevel=2)
    return True


def resolve_precision(precision: str, device: torch.device) -> PrecisionPolicy:
    """ "auto" -> the device's policy; or an explicit "fp32", "bf16" or "fp16"."""
    if precision == "auto":
        return precision_policy(describe_hardware(device))
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be 'auto' or one of {sorted(dtypes)}, not {precision!r}")
    dtype = dtypes[precision]
    scaler = dtype is torch.float16 and device.type == "cuda"
    return PrecisionPolicy(dtype, scaler, f"{precision} requested")


def autocast(device: torch.device, policy: PrecisionPolicy) -> Any:
    """The autocast context for a policy (a no-op for fp32)."""
    if policy.dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=policy.dtype)


# ---------------------------------------------------------------------------------------------
# Peak memory


@dataclass
class PeakMemory:
    """Filled in when the `peak_memory()` block exits. Bytes."""

    device_type: str
    peak: int = 0  # CUDA: max allocated by tensors; CPU: process peak resident set size
    start: int = 0

    @property
    def increase(self) -> int:
        """How far the block pushed memory above where it started."""
        return max(0, self.peak - self.start)

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    @property
    def increase_mb(self) -> float:
        return self.increase / 2**20


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _linux_reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _linux_peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmHWM not found")


@contextmanager
def peak_memory(device: torch.device | str | None = None) -> Iterator[PeakMemory]:
    """Measure peak memory inside a `with` block: CUDA max allocated, or process RSS on CPU.

    >>> with peak_memory("cpu") as mem:
    ...     x = torch.ones(1000, 1000)
    >>> mem.peak > 0
    True
    """
    device = resolve_device(device)
    result = PeakMemory(device.type)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        result.start = torch.cuda.memory_allocated(device)
        try:
            yield result
        finally:
            torch.cuda.synchronize(device)
            result.peak = torch.cuda.max_memory_allocated(device)
        return
    result.start = _rss()
    if sys.platform.startswith("linux") and _linux_reset_peak_rss():
        try:
            yield result
        finally:
            result.peak = max(_linux_peak_rss(), result.start)
        return
    # Elsewhere (macOS, Windows, locked-down containers): sample RSS in a background thread.
    stop = threading.Event()
    samples = [result.start]

    def sample() -> None:
        while not stop.wait(0.005):
            samples.append(_rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result.peak = max(samples + [_rss()])


# ---------------------------------------------------------------------------------------------
# Seeding and data loading


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (CPU and every GPU). With `deterministic=True`, also ask
    torch for deterministic algorithms (slower; errors on ops that have none)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def dataloader_kwargs(device: torch.device | str | None = None) -> dict:
    """Portable DataLoader settings: worker processes only where they pay off and are safe.

    Windows and macOS start workers with `spawn`, which re-imports the notebook and fails on
    datasets defined in it, so they get 0 workers; small CPU machines gain nothing from workers.
    `pin_memory` only helps host-to-GPU copies, so it is on only with CUDA.
    """
    device = resolve_device(device)
    cpus = os.cpu_count() or 1
    workers = 0 if (not sys.platform.startswith("linux") or cpus <= 2) else min(4, cpus // 2)
    kwargs: dict = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers:
        kwargs["persistent_workers"] = True
    return kwargs


# ---------------------------------------------------------------------------------------------
# Fast paths measured by benchmarks/ (see docs/performance.md)


def adamw_kwargs(device: torch.device | str) -> dict:
    """`{"fused": True}` where torch has a fused AdamW for `device`, else `{}`.

    The fused kernel updates every parameter in one pass instead of a dozen element-wise passes;
    on a 2-core CPU it cut MiniLM's optimizer step about 3x (docs/performance.md). It keeps the
    same state (two fp32 moments per parameter) and gives the same update up to rounding.
    """
    return dict(_fused_adamw_kwargs(torch.device(device).type))


@functools.cache
def _fused_adamw_kwargs(device_type: str) -> tuple[tuple[str, bool], ...]:
    """Try one fused AdamW step once per device type (not at every `fit` call)."""
    try:
        probe = torch.zeros(1, device=device_type, requires_grad=True)
        probe.grad = torch.zeros_like(probe)
        torch.optim.AdamW([probe], fused=True).step()
    except (RuntimeError, ValueError, TypeError):
        return ()
    return (("fused", True),)


def prefer_channels_last(model: torch.nn.Module, device: torch.device | str) -> bool:
    """On CUDA, store a convolutional model's weights channels-last (NHWC); True if it did.

    Tensor cores read NHWC natively, so CNNs under AMP run faster; cuDNN then also returns
    channels-last activations. Models without 2-D convolutions (transformers) and other
    devices (the CPU gains little, MPS not reliably) are left as they are.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return False
    if not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return False
    model.to(memory_format=torch.channels_last)
    return True
