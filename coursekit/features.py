"""Feature extraction: run a frozen pre-trained backbone once, keep what it says, reuse it.

A frozen backbone gives the same output for the same input every time, so there is no reason to
run it again in every epoch: compute each example's feature vector once (in eval mode, without
gradients, in batches, on the fastest device), keep the N x D tensor on the CPU, and train only a
small head on it. That is the cheapest form of transfer learning, and the baseline every other
lesson is measured against.

The cache can never hand back stale features: its key covers the model's weights, the input bytes
and the preprocessing parameters (see `feature_cache`, whose public names are re-exported here:
`feature_key`, `tensor_digest`, `state_digest`, `clear_feature_cache`, `last_extraction`).

    extract_features(fn, inputs, key)        the generic core: batches, no_grad, cache
    extract_image_features(model, images, size, mean, std)
    extract_text_features(encoder, tokenizer, texts, max_length)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import capped, max_steps
from .datasets import prepare_images, tokenize
from .device import pick_device
from .feature_cache import (
    Inputs,
    _cache_file,
    _read,
    _recall,
    _record,
    _remember,
    _write,
    clear_feature_cache,
    feature_key,
    last_extraction,
    state_digest,
    tensor_digest,
)
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
    if key is not None and (cached := _recall(key, n)) is not None:
        source = "memory"
    elif path is not None and path.exists():
        cached = _read(path, key, n)
        source = "disk" if cached is not None else source
    if cached is not None:
        features, compute_seconds = cached
    else:
        chunks = []
        bar = progress_bar((n + batch_size - 1) // batch_size, desc, disable=not progress)
        with torch.no_grad():
            for start in capped(range(0, n, batch_size)):  # all, unless $COURSEKIT_MAX_STEPS
                out = fn(_slice(inputs, start, start + batch_size))
                if not isinstance(out, torch.Tensor) or out.ndim < 1:
                    raise TypeError(f"fn must return a feature tensor, got {type(out).__name__}")
                chunks.append(out.detach().float().cpu())
                bar.update(1)
        bar.close()
        features = torch.cat(chunks)
        if len(features) < n and max_steps() is not None:  # a CPU memory check: full-size
            rest = features.new_zeros(n - len(features), *features.shape[1:])  # output, rows
            features, path, key = torch.cat([features, rest]), None, None  # zero, never cached
        if len(features) != n:
            raise ValueError(f"fn returned {len(features)} feature rows for {n} inputs")
        compute_seconds = time.perf_counter() - start_time
        if path is not None:
            _write(path, key, features, compute_seconds)
    if key is not None:
        _remember(key, features, compute_seconds)
    _record(
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
