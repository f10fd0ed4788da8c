"""Checkpoints you cannot lose: safetensors + JSON, written atomically, loaded without pickle.

A checkpoint is ONE `.safetensors` file. Its tensors are the model's weights (`model/...`) and
every tensor of the training state (optimizer moments, RNG states, ...); the rest of the state
(epoch, history, learning rates) is JSON in the file's metadata header. It is written to a
temporary file and renamed over the old one (`files.atomic_write`), so an interrupt mid-write
leaves the previous checkpoint intact. Loading never unpickles, so a checkpoint from a stranger
cannot run code. `fit(..., checkpoint_dir=...)` writes one every epoch (lessons 00, 03-06).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..runtime.files import atomic_write

__all__ = [
    "CheckpointError",
    "get_rng_state",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint_state",
    "save_checkpoint",
    "save_tensors",
    "save_weights",
    "set_rng_state",
]

_META_KEY = "coursekit"
_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, or does not fit the model it is loaded into."""


# --- nested state <-> (JSON structure, flat tensors) ---------------------------------------------


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"{prefix}{len(tensors)}"
        # safetensors has no unsigned 32/64-bit types in every version: widen, remember dtype.
        tensors[key] = (
            torch.from_numpy(np.ascontiguousarray(obj).astype(np.int64, copy=True))
            if obj.dtype.kind == "u"
            else torch.from_numpy(np.array(obj, copy=True))
        )
        return {"__ndarray__": key, "dtype": str(obj.dtype)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, prefix) for v in obj]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, prefix) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _flatten(v, tensors, prefix) for k, v in obj.items()}
        return {
            "__items__": [
                [_flatten(k, tensors, prefix), _flatten(v, tensors, prefix)] for k, v in obj.items()
            ]
        }
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(
        f"cannot store a {type(obj).__name__} in a checkpoint without pickle; "
        "keep training state to tensors, arrays, numbers, strings, lists and dicts"
    )


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy().astype(obj["dtype"])
    if "__tuple__" in obj:
        return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__items__"]}
    return {k: _unflatten(v, tensors) for k, v in obj.items()}


# --- RNG state -----------------------------------------------------------------------------------


def get_rng_state() -> dict:
    """Every random generator's state (python, numpy, torch CPU and CUDA), for exact resume."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in state["cuda"]])


# --- writing -------------------------------------------------------------------------------------


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
    """Write `tensors` and string metadata to one safetensors file, atomically (`files`)."""
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # .clone(): tied weights share storage, which safetensors refuses to write twice.
    return {
        f"model/{k}": v.detach().to("cpu", copy=True).contiguous()
        for k, v in model.state_dict().items()
    }


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    state: dict | None = None,
    rng: bool = True,
) -> Path:
    """Write model, optimizer, scheduler, scaler, RNG and `state` (epoch, history...) to `path`."""
    path = Path(path)
    tensors = _model_tensors(model)
    full = {
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": get_rng_state() if rng else None,
        "state": state or {},
    }
    structure = _flatten(full, tensors, prefix="state/")
    meta = {_META_KEY: json.dumps({"format": _FORMAT, "content": structure})}
    return save_tensors(path, tensors, meta)


def save_weights(path: str | Path, model: torch.nn.Module) -> Path:
    """Write only the model's weights (a plain safetensors file any tool can read)."""
    path = Path(path)
    tensors = {k.removeprefix("model/"): v for k, v in _model_tensors(model).items()}
    return save_tensors(path, tensors, {"format": "pt"})


# --- reading -------------------------------------------------------------------------------------


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise CheckpointError(
            f"{path} is corrupt or not a safetensors checkpoint ({err}). Delete it to start "
            "training afresh, or load an earlier copy."
        ) from err
    return tensors, meta


def _check_fits(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{path} was saved from a different model than the one given:"]
        if missing:
            lines.append(
                f"  {len(missing)} weights missing from the checkpoint, e.g. {missing[:3]}"
            )
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected weights, e.g. {unexpected[:3]}")
        if shapes:
            lines.append(f"  {len(shapes)} shape mismatches, e.g. {shapes[:3]}")
        lines.append(
            "Build the same architecture (same head size) before loading, or start afresh."
        )
        raise CheckpointError("\n".join(lines))


def _weights(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> dict[str, torch.Tensor]:
    prefix = "model/" if _META_KEY in meta else ""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _training_state(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> dict:
    if _META_KEY not in meta:
        raise CheckpointError(f"{path} holds weights only, not a coursekit training checkpoint")
    structure = json.loads(meta[_META_KEY])
    return _unflatten(structure["content"], tensors)


def load_weights(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load a `save_weights` (or `save_checkpoint`) file into `model`, checking it fits."""
    path = Path(path)
    tensors, meta = _read(path)
    weights = _weights(tensors, meta)
    _check_fits(model, weights, path)
    model.load_state_dict(weights)
    return model


def read_checkpoint_state(path: str | Path) -> dict:
    """The JSON/tensor training state of a checkpoint (optimizer, rng, state...) without a model."""
    path = Path(path)
    return _training_state(path, *_read(path))


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    rng: bool = True,
    check: Callable[[dict], None] | None = None,
) -> dict:
    """Restore everything `save_checkpoint` wrote into the given objects; return `state`.

    `check(state)` runs before anything is changed: it may raise to refuse a checkpoint
    (`fit` refuses one saved with another optimizer or monitor). The file is read once.
    """
    path = Path(path)
    tensors, meta = _read(path)
    full = _training_state(path, tensors, meta)
    weights = _weights(tensors, meta)
    _check_fits(model, weights, path)
    if check is not None:
        check(full["state"])
    model.load_state_dict(weights)
    try:
        if optimizer is not None and full["optimizer"] is not None:
            optimizer.load_state_dict(full["optimizer"])
        if scheduler is not None and full["scheduler"] is not None:
            scheduler.load_state_dict(full["scheduler"])
        if scaler is not None and full["scaler"] is not None:
            scaler.load_state_dict(full["scaler"])
    except (ValueError, KeyError) as err:
        raise CheckpointError(
            f"{path}: the optimizer/scheduler state does not fit ({err}). Use the same "
            "optimizer and parameter groups as the run that saved it, or start afresh."
        ) from err
    if rng and full["rng"] is not None:
        set_rng_state(full["rng"])
    return full["state"]
