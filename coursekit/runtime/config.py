"""Run modes: one switch picks how big every notebook runs.

`quick` fits a 2-core laptop CPU (minutes per notebook); `full` reproduces real-world results on a
GPU. Set it with the environment variable `COURSEKIT_MODE=quick|full` or `set_mode("full")`; left
unset, it is `full` when a CUDA GPU is attached and `quick` otherwise. Notebooks read their sizes
from `settings()` so the same cells serve both modes.

Full-mode sizes are chosen to fit a free Colab T4 (15 GB GPU, ~12.7 GB RAM): each notebook is
estimated at about 20 minutes or less there (`coursekit.measure.predicted`, docs/performance.md).
`coursekit course --mode full --max-steps 2` checks on a CPU that full-mode sizes fit in memory,
with every training run cut short: a dry run, installed from the outside (`training.limits`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

__all__ = [
    "MODES",
    "Settings",
    "get_mode",
    "set_mode",
    "settings",
    "show_mode",
]

MODES = ("quick", "full")
_override: str | None = None


@dataclass(frozen=True)
class Settings:
    """The sizes a lesson uses in one mode."""

    mode: str
    image_size: int  # pixels per side fed to vision models
    train_per_class: int  # labelled examples per class for training
    test_per_class: int  # examples per class for evaluation
    epochs: int
    batch_size: int
    max_length: int  # tokens per text
    shots: tuple[int, ...]  # examples per class on data-efficiency curves


_SETTINGS = {
    "quick": Settings(
        mode="quick",
        image_size=64,
        train_per_class=100,
        test_per_class=100,
        epochs=3,
        batch_size=32,
        max_length=128,
        shots=(5, 20, 100),
    ),
    "full": Settings(
        mode="full",
        image_size=224,
        train_per_class=1000,  # 10,000 Fashion-MNIST images: ~90% after a few epochs
        test_per_class=1000,  # the whole 10,000-image Fashion-MNIST test set
        epochs=3,
        batch_size=128,
        max_length=256,
        shots=(5, 20, 100, 1000),
    ),
}


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return torch.cuda.is_available()


def get_mode() -> str:
    """The current mode: `set_mode`, else `$COURSEKIT_MODE`, else full on CUDA, quick otherwise."""
    mode = _override or os.environ.get("COURSEKIT_MODE", "").strip().lower()
    if not mode:
        return "full" if _cuda_available() else "quick"
    if mode not in MODES:
        raise ValueError(f"COURSEKIT_MODE={mode!r} is not a mode; use one of {MODES}.")
    return mode


def set_mode(mode: str | None) -> str:
    """Pick the mode from Python (None goes back to the environment/default). Returns it."""
    global _override
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    _override = mode
    return get_mode()


def settings(mode: str | None = None) -> Settings:
    """The sizes for `mode` (default: the current mode)."""
    return _SETTINGS[mode or get_mode()]


def show_mode() -> Settings:
    """Print the mode and its sizes (every notebook does this at the top) and return them."""
    s = settings()
    source = (
        "set_mode()"
        if _override
        else ("$COURSEKIT_MODE" if os.environ.get("COURSEKIT_MODE") else "default")
    )
    sizes = ", ".join(f"{k}={v}" for k, v in asdict(s).items() if k != "mode")
    print(f"coursekit mode: {s.mode.upper()} (from {source}) | {sizes}")
    other = "full" if s.mode == "quick" else "quick"
    print(f"  switch: COURSEKIT_MODE={other} before starting, or coursekit.set_mode('{other}')")
    return s
