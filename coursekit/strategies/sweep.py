"""Running a sweep: every strategy trained on the same task with `fit`, tested on the same split,
its cost measured, once per seed (see the package docstring for the columns of a row).
Lessons 05 and 06.
"""

from __future__ import annotations

import ctypes
import gc
import math
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..claims import accuracy_se
from ..measure.measured import optimizer_state_bytes
from ..params import count_parameters
from ..runtime.device import peak_memory, resolve_device, seed_everything
from ..training.evaluation import predict
from ..training.loop import fit
from ..training.metrics import accuracy, macro_f1
from ..training.optim import make_optimizer

__all__ = ["ROW_COLUMNS", "Strategy", "run_strategies", "run_strategy"]

# The one row of a strategy run (lessons 05 and 06, the benchmarks' text section): every key a
# row holds, in order, with what it means (the package docstring explains them at length).
ROW_COLUMNS = {
    "strategy": "the strategy's name",
    "seed": "the seed the run started from",
    "accuracy": "test accuracy (graded here, never by the strategy)",
    "accuracy_se": "its binomial standard error on n_test examples",
    "n_test": "test examples",
    "macro_f1": "test macro-F1",
    "trainable": "trainable parameters",
    "total": "all parameters (with a frozen encoder whose features were cached)",
    "trainable_pct": "100 x trainable / total",
    "seconds": "wall time from pre-trained weights to a trained model (setup + build + fit)",
    "train_seconds": "the training loop alone (fit, no validation pass)",
    "steps": "optimizer steps",
    "s_per_step": "train_seconds / steps",
    "peak_mb": "memory above the start while training (CUDA: allocated; CPU: resident)",
    "optimizer_state_bytes": "what the optimizer kept (AdamW: 8 bytes a trainable weight)",
    "epochs": "epochs trained",
    "correct": "1/0 per test example (for paired comparisons)",
    "history": "the run's History (learning curves)",
}


@dataclass
class Strategy:
    """One way to adapt a pre-trained model.

    build: returns a fresh model with its trainable parts chosen (freezing, LoRA, a probe head...).
        It runs inside the timed region, so work it does (e.g. training a probe first) is counted.
    lr: learning rate of the default optimizer (AdamW over the trainable parameters).
    optimizer: `model -> optimizer` instead, e.g. discriminative learning rates from
        `freezing.param_groups`.
    data: `(train, test)` or `(train, test, val)` for this strategy alone (e.g. cached features
        for a linear probe); the labels must match the shared splits. Default: the splits given
        to `run_strategies`.
    epochs: overrides the sweep's epochs (a head on cached features can afford many).
    batch_size: overrides the sweep's batch size (e.g. larger batches for a head on features).
    setup_seconds: one-off work done before the sweep for this strategy, e.g. extracting the
        features it trains on (`features.last_extraction()["compute_seconds"]`); added to seconds.
    frozen_elsewhere: parameters this strategy uses outside its model, e.g. the frozen encoder
        that produced cached features; counted in `total` so the fractions compare fairly.
    """

    name: str
    build: Callable[[], nn.Module]
    lr: float = 1e-3
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] | None = None
    data: tuple[Any, ...] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    setup_seconds: float = 0.0
    frozen_elsewhere: int = 0


def _release_freed_memory() -> None:
    """Hand freed memory back to the OS, so the next run's peak is measured from a fair start
    (glibc otherwise keeps it, and the next strategy reuses it without raising the process RSS)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _labels(data: Any) -> torch.Tensor:
    """All labels of a dataset, in order (for checking that strategies see the same examples)."""
    if hasattr(data, "labels") and isinstance(data.labels, torch.Tensor):
        return data.labels
    if hasattr(data, "tensors"):  # TensorDataset(features, labels)
        return data.tensors[-1]
    return torch.as_tensor(
        [int(item[-1] if isinstance(item, tuple) else item["labels"]) for item in data]
    )


def run_strategy(
    strategy: Strategy,
    train: Any,
    test: Any,
    *,
    epochs: int,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    val: Any = None,
    checkpoints: str | Path | None = None,
) -> tuple[dict[str, Any], nn.Module]:
    """Build, train and test one strategy; return (its row, the trained model). See the module
    docstring for the columns. `val`: validation data scored after every epoch (the learning
    curves in `row["history"]`; a strategy with its own `data` is validated on its third item,
    if any). `checkpoint_dir`: a folder (as `fit`'s); the strategy's `fit` checkpoints into a
    subfolder named for it and resumes from there (a resumed run's `seconds` counts only the part
    trained in this session; `train_seconds` comes from the restored history). `checkpoints`:
    the deprecated name of `checkpoint_dir` (one release)."""
    checkpoint_dir = _checkpoint_dir(checkpoint_dir, checkpoints)
    device = resolve_device(device)
    if strategy.data is not None:
        train, test, *own_val = strategy.data
        val = own_val[0] if own_val else None
    epochs = strategy.epochs if strategy.epochs is not None else epochs
    batch_size = strategy.batch_size if strategy.batch_size is not None else batch_size
    _release_freed_memory()
    seed_everything(seed)
    start = time.perf_counter()
    model = strategy.build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"{strategy.name}: build() must return an nn.Module, got {type(model)}")
    opt = (
        strategy.optimizer(model)
        if strategy.optimizer
        else make_optimizer(model, strategy.lr, device=device)
    )
    with peak_memory(device) as mem:
        history = fit(
            model,
            train,
            val,
            epochs=epochs,
            optimizer=opt,
            batch_size=batch_size,
            device=device,
            progress=False,
            checkpoint_dir=_run_folder(checkpoint_dir, strategy.name),
        )
    seconds = time.perf_counter() - start + strategy.setup_seconds
    logits, labels = predict(model, test, device)
    counts = count_parameters(model)
    total = counts.total + strategy.frozen_elsewhere
    steps = len(history.steps)
    acc = accuracy(logits, labels)
    row = {  # ROW_COLUMNS, in order
        "strategy": strategy.name,
        "seed": seed,
        "accuracy": acc,
        "accuracy_se": accuracy_se(acc, len(labels)),
        "n_test": len(labels),
        "macro_f1": macro_f1(logits, labels, logits.shape[1]),
        "trainable": counts.trainable,
        "total": total,
        "trainable_pct": 100 * counts.trainable / total,
        "seconds": seconds,
        "train_seconds": history.total_seconds,
        "steps": steps,
        "s_per_step": history.total_seconds / steps if steps else math.nan,
        "peak_mb": mem.increase_mb,
        "optimizer_state_bytes": optimizer_state_bytes(opt),
        "epochs": len(history.epochs),
        "correct": (logits.argmax(1) == labels).float().numpy(),
        "history": history,
    }
    return row, model


def _checkpoint_dir(
    checkpoint_dir: str | Path | None, checkpoints: str | Path | None
) -> str | Path | None:
    """`checkpoint_dir`, or the deprecated `checkpoints=` it replaced (the name `fit` uses)."""
    if checkpoints is None:
        return checkpoint_dir
    warnings.warn(
        "checkpoints= is deprecated and will be removed in the next release: pass "
        "checkpoint_dir= (the name fit uses for the same folder).",
        DeprecationWarning,
        stacklevel=3,
    )
    if checkpoint_dir is not None:
        raise TypeError("pass checkpoint_dir= only (checkpoints= is its deprecated name)")
    return checkpoints


def _run_folder(root: str | Path | None, name: str) -> Path | None:
    """`root/<name as a folder name>`, or None without a root."""
    if root is None:
        return None
    return Path(root) / (re.sub(r"[^A-Za-z0-9_.=-]+", "-", name).strip("-") or "strategy")


def run_strategies(
    strategies: Sequence[Strategy],
    train: Any,
    test: Any,
    *,
    epochs: int,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    val: Any = None,
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    on_trained: Callable[[dict[str, Any], nn.Module], None] | None = None,
    checkpoints: str | Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, nn.Module]]:
    """Run every strategy on the same task: `(rows, models)`, one row per strategy and seed (in
    the order given, seed by seed) and the trained model of every strategy's first seed.

    `train` / `test` (/ `val`, scored after every epoch) are datasets `fit` accepts (a strategy
    may bring its own, see `Strategy.data`); every strategy starts from the same seed. `seeds`:
    several seeds, e.g. (0, 1, 2), for `summarize` and `difference`; default `(seed,)`.
    `on_trained(row, model)` is called after each run (e.g. to measure something on every
    seed's model without keeping them all). `checkpoint_dir`: a folder (e.g.
    `drive.resumable("06", "strategies")`); each strategy (and seed, with several) resumes from
    its own subfolder, so a disconnect costs at most one epoch of one run (`checkpoints=`: its
    deprecated name, for one release)."""
    checkpoint_dir = _checkpoint_dir(checkpoint_dir, checkpoints)
    if not strategies:
        raise ValueError("no strategies given: pass a list of Strategy(name, build, ...)")
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must be unique, got {names}")
    seeds = list(seeds) if seeds is not None else [seed]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    truth = _labels(test)
    for strategy in strategies:
        if strategy.data is not None and not torch.equal(_labels(strategy.data[1]), truth):
            raise ValueError(
                f"strategy {strategy.name!r} brings its own test data with other labels: every "
                "strategy must be tested on the same examples (e.g. the features of the test split)"
            )
    rows, models = [], {}
    for s in seeds:
        folder = checkpoint_dir
        if checkpoint_dir is not None and len(seeds) > 1:
            folder = Path(checkpoint_dir) / f"seed{s}"
        for strategy in strategies:
            row, model = run_strategy(
                strategy, train, test, epochs=epochs, batch_size=batch_size, device=device,
                seed=s, checkpoint_dir=folder, val=val,
            )  # fmt: skip
            rows.append(row)
            models.setdefault(strategy.name, model)
            if on_trained is not None:
                on_trained(row, model)
            if progress:
                _print_row(row, len(seeds) > 1)
    return rows, models


def _print_row(row: dict[str, Any], with_seed: bool) -> None:
    seed = f" | seed {row['seed']}" if with_seed else ""
    print(
        f"{row['strategy']:>28}{seed} | accuracy {row['accuracy']:.3f} ± "
        f"{row['accuracy_se']:.3f} | {row['steps']:>4} steps | {row['trainable']:>11,} trainable "
        f"| {row['seconds']:6.1f} s | peak +{row['peak_mb']:.0f} MB"
    )
