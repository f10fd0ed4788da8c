"""Feature extraction: run a frozen pre-trained backbone once, keep what it says, reuse it.

A frozen backbone gives the same output for the same input every time, so there is no reason to
run it again in every epoch: compute each example's feature vector once (in eval mode, without
gradients, in batches, on the fastest device), keep the N x D tensor on the CPU, and train only a
small head on it. That is the cheapest form of transfer learning, and the baseline every other
lesson is measured against.

The cache can never hand back stale features: its key is a hash of everything the result depends
on -- the model's weights (every tensor of its state dict, buffers included), the input bytes
(pixels or token ids) and the preprocessing parameters. Change one weight, one pixel or the image
size and the key changes. On disk each entry is one safetensors file (no pickle) written
atomically, with a checksum of the features; a damaged file is reported and recomputed.

    extract_features(fn, inputs, key)        the generic core: batches, no_grad, cache
    extract_image_features(model, images, size, mean, std)
    extract_text_features(encoder, tokenizer, texts, max_length)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .datasets import prepare_images, tokenize
from .device import pick_device
from .progress import progress_bar

__all__ = [
    "clear_feature_cache",
    "extract_features",
    "extract_image_features",
    "extract_text_features",
    "feature_key",
    "last_extraction",
    "state_digest",
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


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"features-{key}.safetensors"


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
    """Write atomically: a temporary file in the same folder, then `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".features-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        meta = {
            "key": key,
            "sha256": tensor_digest(features),
            "shape": str(list(features.shape)),
            "seconds": f"{seconds:.3f}",
        }
        save_file({"features": features.contiguous()}, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --- the generic core ------------------------------------------------------------------------


def _length(inputs: Inputs) -> int:
    if isinstance(inputs, torch.Tensor):
        return len(inputs)
    lengths = {len(v) for v in inputs.values()}
    if len(lengths) != 1:
        raise ValueError(f"all input tensors must have the same length, got {lengths}")
    return lengths.pop()


def _slice(inputs: Inputs, start: int, stop: int) -> Inputs:
    if isinstance(inputs, torch.Tensor):
        return inputs[start:stop]
    return {k: v[start:stop] for k, v in inputs.items()}


def extract_features(
    fn: Callable[[Inputs], torch.Tensor],
    inputs: Inputs,
    key: str | None = None,
    *,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    desc: str = "features",
) -> torch.Tensor:
    """`fn` applied to `inputs` in batches under `torch.no_grad()`: an N x D float32 CPU tensor.

    `inputs` is a tensor (sliced along dim 0) or a dict of equal-length tensors (sliced alike);
    `fn` gets one slice and returns its features (on any device). `key` (see `feature_key`)
    names the result: the same key returns the cached tensor without calling `fn`, from memory or
    from `cache_dir` (safetensors, written atomically). `key=None` disables caching. Put the model
    in eval mode yourself (the helpers below do).
    """
    n = _length(inputs)
    if n == 0:
        raise ValueError("no inputs to extract features from")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if key is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", key):
        raise ValueError(
            f"key {key!r} must be 1-128 letters, digits, '-' or '_' (it names a file); "
            "make one with feature_key(model, inputs, ...)"
        )
    start_time = time.perf_counter()
    path = _cache_file(Path(cache_dir), key) if (cache_dir is not None and key) else None
    source, cached = "computed", None
    if key is not None and key in _MEMORY and len(_MEMORY[key][0]) == n:
        cached, source = _MEMORY[key], "memory"
    elif path is not None and path.exists():
        cached = _read(path, key, n)
        source = "disk" if cached is not None else source
    if cached is not None:
        features, compute_seconds = cached
    else:
        chunks = []
        bar = progress_bar((n + batch_size - 1) // batch_size, desc, disable=not progress)
        with torch.no_grad():
            for start in range(0, n, batch_size):
                out = fn(_slice(inputs, start, start + batch_size))
                if not isinstance(out, torch.Tensor) or out.ndim < 1:
                    raise TypeError(f"fn must return a feature tensor, got {type(out).__name__}")
                chunks.append(out.detach().float().cpu())
                bar.update(1)
        bar.close()
        features = torch.cat(chunks)
        if len(features) != n:
            raise ValueError(f"fn returned {len(features)} feature rows for {n} inputs")
        compute_seconds = time.perf_counter() - start_time
        if path is not None:
            _write(path, key, features, compute_seconds)
    if key is not None:
        _remember(key, features, compute_seconds)
    _LAST.clear()
    _LAST.update(
        key=key,
        source=source,
        seconds=time.perf_counter() - start_time,
        compute_seconds=compute_seconds,
        examples=n,
    )
    return features.clone()  # callers may modify their copy; the cache stays intact


# --- images and texts ------------------------------------------------------------------------


class _EvalOn:
    """Put a model in eval mode on `device` for a block; restore train mode afterwards."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.model, self.device = model, device

    def __enter__(self) -> nn.Module:
        self.was_training = self.model.training
        return self.model.eval().to(self.device)

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def extract_image_features(
    model: nn.Module,
    images: torch.Tensor,
    size: int,
    mean: Sequence[float] | float | None,
    std: Sequence[float] | float | None,
    *,
    rgb: bool = True,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Pooled features of uint8 `images` (N x H x W or N x C x H x W): N x D on the CPU.

    Each batch is prepared like `datasets.prepare_images` (resize to `size`, grayscale -> RGB,
    normalise with the model's own `mean`/`std`), then passed through `model.features` (e.g.
    EfficientNet-Lite0's 1,280-d pooled features) or, for models without it, `model` itself.
    Preparing batch by batch keeps memory small even for 50,000 images at 224 px.
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (0..255), got {images.dtype}")
    device = torch.device(device) if device is not None else pick_device()
    forward = getattr(model, "features", None)
    forward = forward if callable(forward) else model
    params = {"size": size, "mean": mean, "std": std, "rgb": rgb, "fn": forward.__name__}
    key = feature_key(model, images, **params)

    def fn(batch: torch.Tensor) -> torch.Tensor:
        x = prepare_images(batch, size, rgb=rgb, mean=mean, std=std).to(device)
        return forward(x)

    with _EvalOn(model, device):
        return extract_features(
            fn,
            images,
            key,
            batch_size=batch_size,
            cache_dir=cache_dir,
            progress=progress,
            desc="image features",
        )


def extract_text_features(
    encoder: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    *,
    normalize: bool = False,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Mean-pooled sentence embeddings of `texts` (first `max_length` tokens): N x D on the CPU.

    `encoder` is a Hugging Face encoder such as MiniLM (a classifier built on one works too: its
    `base_model` is used). The cache key covers the token ids, so a different tokenizer or
    `max_length` gives a different key. Each batch is cut to its longest text, which changes
    nothing (padding is masked) but saves time on short texts. `normalize` L2-normalises.
    """
    from .models.text import sentence_vectors

    if isinstance(texts, str):
        raise TypeError("texts must be a list of str; wrap a single text as [text]")
    device = torch.device(device) if device is not None else pick_device()
    base = getattr(encoder, "base_model", encoder)
    tokens = tokenize(list(texts), tokenizer, max_length)
    key = feature_key(base, tokens, normalize=normalize, pool="mean")

    def fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        longest = int(batch["attention_mask"].sum(1).max())
        batch = {k: v[:, :longest].to(device) for k, v in batch.items()}
        return sentence_vectors(base, batch, normalize)

    with _EvalOn(base, device):
        return extract_features(
            fn,
            tokens,
            key,
            batch_size=batch_size,
            cache_dir=cache_dir,
            progress=progress,
            desc="text features",
        )
