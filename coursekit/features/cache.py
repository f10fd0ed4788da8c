"""The feature cache: keys that can never go stale, an in-memory LRU and safetensors files.

A cached feature tensor is only safe to reuse if nothing it depends on has changed, so its key is
a hash of all of it: the model's weights (every tensor of its state dict, buffers included), the
input bytes (pixels or token ids) and the preprocessing parameters. Change one weight, one pixel
or the image size and the key changes. On disk each entry is one safetensors file (no pickle)
written atomically, with a checksum of the features; a damaged file is reported and recomputed.

This module owns the cache's state (the in-memory entries and the record of the last
extraction); `features.extract.extract_features` uses it through `recall` and `store`.
Lessons 02, 03 and 06 rely on it (`coursekit.features` imports the public names).

    feature_key(model, inputs, **params)     the key of one extraction
    clear_feature_cache()                    forget the in-memory entries
    last_extraction()                        where the last result came from and what it cost
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..training.checkpoint import save_tensors

__all__ = [
    "Inputs",
    "cache_file",
    "clear_feature_cache",
    "feature_key",
    "last_extraction",
    "recall",
    "record_extraction",
    "state_digest",
    "store",
    "tensor_digest",
]

Inputs = torch.Tensor | dict[str, torch.Tensor]

_MEMORY: OrderedDict[str, tuple[torch.Tensor, float]] = OrderedDict()  # key -> (features, s)
_MEMORY_ENTRIES = 16
_LAST: dict[str, Any] = {}


def last_extraction() -> dict[str, Any]:
    """What the last `extract_features` call did: `source` ("computed", "memory" or "disk"),
    `seconds` (this call), `compute_seconds` (what computing the features cost when they were
    made, also for a cache hit), `examples` and `key`. Lets a notebook report the cost honestly."""
    return dict(_LAST)


def record_extraction(**info: Any) -> None:
    """Replace the last-extraction record (read back by `last_extraction`)."""
    _LAST.clear()
    _LAST.update(info)


# --- keys ------------------------------------------------------------------------------------


def _update(h: Any, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def tensor_digest(x: Inputs | Sequence[str]) -> str:
    """sha256 of a tensor (dtype, shape and bytes), a dict of tensors, or a list of strings."""
    h = hashlib.sha256()
    if isinstance(x, torch.Tensor):
        _update(h, x)
    elif isinstance(x, dict):
        for name in sorted(x):
            h.update(name.encode())
            _update(h, torch.as_tensor(x[name]))
    else:
        for s in x:
            h.update(s.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def state_digest(model: nn.Module) -> str:
    """sha256 over every tensor of `model.state_dict()` (weights and buffers such as BatchNorm
    running statistics), with their names: changes whenever any weight changes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        _update(h, t)
    return h.hexdigest()


def feature_key(model: nn.Module, inputs: Inputs | Sequence[str], **params: Any) -> str:
    """The cache key of `model` applied to `inputs` with preprocessing `params` (JSON-able)."""
    parts = {
        "model": type(model).__name__,
        "weights": state_digest(model),
        "inputs": tensor_digest(inputs),
        "params": params,
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


# --- the cache -------------------------------------------------------------------------------


def clear_feature_cache() -> None:
    """Forget the in-memory cache (disk files stay; delete the cache folder to remove them)."""
    _MEMORY.clear()


def _remember(key: str, features: torch.Tensor, seconds: float) -> None:
    _MEMORY[key] = (features, seconds)
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)


def cache_file(cache_dir: str | Path, key: str) -> Path:
    """Where the features of `key` live inside `cache_dir`."""
    return Path(cache_dir) / f"features-{key}.safetensors"


def recall(
    key: str, n: int, cache_dir: str | Path | None
) -> tuple[torch.Tensor, float, str] | None:
    """The cached `(features, compute seconds, "memory" | "disk")` of `key` if they hold `n`
    rows, else None. A damaged or foreign file is reported with a warning and ignored."""
    entry = _MEMORY.get(key)
    if entry is not None and len(entry[0]) == n:
        _remember(key, *entry)
        return (*entry, "memory")
    path = cache_file(cache_dir, key) if cache_dir is not None else None
    if path is None or not path.exists():
        return None
    found = _read(path, key, n)
    if found is None:
        return None
    _remember(key, *found)
    return (*found, "disk")


def store(key: str, features: torch.Tensor, seconds: float, cache_dir: str | Path | None) -> None:
    """Keep `features` (which took `seconds` to compute) in memory and, given a folder, on disk."""
    if cache_dir is not None:
        _write(cache_file(cache_dir, key), key, features, seconds)
    _remember(key, features, seconds)


def _read(path: Path, key: str, n: int) -> tuple[torch.Tensor, float] | None:
    """Cached (features, compute seconds), or None (with a warning) when damaged or not ours."""
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            features = f.get_tensor("features")
        problem = None
        if meta.get("key") != key:
            problem = "its key does not match"
        elif features.ndim < 1 or features.shape[0] != n:
            problem = f"it holds {features.shape[0] if features.ndim else 0} rows, expected {n}"
        elif meta.get("sha256") != tensor_digest(features):
            problem = "its checksum does not match (the data was modified)"
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as err:
        problem = f"it cannot be read ({type(err).__name__}: {err})"
    if problem is None:
        return features, float(meta.get("seconds", "nan"))
    warnings.warn(f"feature cache {path} ignored and recomputed: {problem}.", stacklevel=3)
    return None


def _write(path: Path, key: str, features: torch.Tensor, seconds: float) -> None:
    meta = {
        "key": key,
        "sha256": tensor_digest(features),
        "shape": str(list(features.shape)),
        "seconds": f"{seconds:.3f}",
    }
    save_tensors(path, {"features": features.contiguous()}, meta)
