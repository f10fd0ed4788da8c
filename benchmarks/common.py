"""Shared pieces of the benchmark suite: sizes per run, timing, the machine, contention.

Every figure the suite reports is measured in the run that reports it. Timings are medians over
interleaved repeats (A B C A B C ...) so that a slow spell on a shared machine hits every
contender alike; `Contention` measures how much CPU *other* processes used while a section ran,
so a figure taken on a busy machine is marked as such instead of being passed off as final.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

# Another process using more than this many cores on average marks a section as contended.
CONTENDED_CORES = 0.25


@dataclass(frozen=True)
class Sizes:
    """How big each section runs. `smoke` is for tests (seconds); `full` for the real figures."""

    smoke: bool
    repeats: int  # interleaved repeats per contender (median reported)
    loop_steps: int
    loop_warmup: int
    cache_images: int  # Fashion-MNIST images for the caching benchmark
    cache_texts: int  # BBC News articles for the caching benchmark
    cache_epochs: int
    image_size: int
    max_length: int
    cost_steps: int
    data_images: int


def sizes(smoke: bool) -> Sizes:
    if smoke:
        return Sizes(True, 1, 2, 1, 40, 20, 5, 32, 32, 1, 128)
    return Sizes(False, 3, 20, 3, 600, 300, 5, 64, 128, 3, 4000)


def median(values: list[float]) -> float:
    return statistics.median(values)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock reading covers it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def in_fresh_process(fn: Callable[..., Any], *args: Any, fresh: bool = True) -> Any:
    """`fn(*args)` in a freshly spawned process (its peak memory and caches its own), or here
    when `fresh` is False (smoke runs: speed). `fn` must be importable (module level)."""
    if not fresh:
        return fn(*args)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def interleaved(contenders: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each contender `repeats` times, round-robin; each call returns its own measurement."""
    out: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            out[name].append(fn())
    return out


def busy_seconds() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def _own_seconds() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


class Contention:
    """`with Contention() as c:` ... then `c.other_cores`: average cores used by other processes.

    Busy CPU time of the whole machine minus this process's (and its finished children's),
    divided by wall time. Approximate (kernel threads count as "others"), but it tells a quiet
    machine (~0) from one where a colleague's test suite is running (~1 or more).
    """

    def __enter__(self) -> Contention:
        self.t0, self.busy0, self.own0 = time.perf_counter(), busy_seconds(), _own_seconds()
        self.load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        others = (busy_seconds() - self.busy0) - (_own_seconds() - self.own0)
        self.seconds = wall
        self.other_cores = max(0.0, others / wall)

    def record(self) -> dict:
        return {
            "seconds": round(self.seconds, 2),
            "other_cores": round(self.other_cores, 2),
            "contended": self.other_cores > CONTENDED_CORES,
        }


def machine() -> dict:
    """Machine, versions and date, for the report header."""
    import transformers

    from coursekit.runtime.device import describe_hardware, pick_device

    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 1e9, 1)
    except ImportError:  # pragma: no cover - psutil is a dependency
        mem_gb = None
    cpu_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu_name = names[0] if names else cpu_name
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": cpu_name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": mem_gb,
        "device": str(describe_hardware(pick_device())),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }
