"""Feature extraction: run a frozen pre-trained backbone once, keep what it says, reuse it.

A frozen backbone gives the same output for the same input every time, so there is no reason to
run it again in every epoch: compute each example's feature vector once (in eval mode, without
gradients, in batches, on the fastest device), keep the N x D tensor on the CPU, and train only a
small head on it. That is the cheapest form of transfer learning, and the baseline every other
lesson is measured against.

The cache can never hand back stale features: its key covers the model's weights, the input bytes
and the preprocessing parameters (see `features.cache`). Used in lessons 02, 03 and 06.

    extract_features(fn, inputs, key)        the generic core: batches, no_grad, cache
    extract_image_features(model, images, size, mean, std)
    extract_text_features(encoder, tokenizer, texts, max_length)
    pooled_text_features(encoder, tokens, poolings)   one encoder pass, several poolings
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import prepare_images, tokenize
from ..models.text import POOLINGS, pool_tokens, sentence_vectors
from ..runtime.device import resolve_device
from ..runtime.progress import progress_bar
from .cache import Inputs, feature_key, recall, record_extraction, store

__all__ = [
    "extract_features",
    "extract_image_features",
    "extract_text_features",
    "pooled_text_features",
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


def _compute(
    fn: Callable[[Inputs], torch.Tensor],
    inputs: Inputs,
    n: int,
    batch_size: int,
    progress: bool,
    desc: str,
) -> torch.Tensor:
    """`fn` over `inputs` in batches, without gradients: the N x D float32 CPU features."""
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
    return features


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
    cached = recall(key, n, cache_dir) if key is not None else None
    if cached is not None:
        features, compute_seconds, source = cached
    else:
        features = _compute(fn, inputs, n, batch_size, progress, desc)
        compute_seconds, source = time.perf_counter() - start_time, "computed"
        if key is not None:
            store(key, features, compute_seconds, cache_dir)
    record_extraction(
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
    Preparing batch by batch keeps memory small even for 50,000 images at 224 px; on a GPU each
    uint8 batch is resized there, not on the host.
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (0..255), got {images.dtype}")
    device = resolve_device(device)
    forward = getattr(model, "features", None)
    forward = forward if callable(forward) else model
    params = {"size": size, "mean": mean, "std": std, "rgb": rgb, "fn": forward.__name__}
    key = feature_key(model, images, **params)

    def fn(batch: torch.Tensor) -> torch.Tensor:
        return forward(prepare_images(batch, size, rgb=rgb, mean=mean, std=std, device=device))

    with _EvalOn(model, device):
        options = {"batch_size": batch_size, "cache_dir": cache_dir, "progress": progress}
        return extract_features(fn, images, key, desc="image features", **options)


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
    if isinstance(texts, str):
        raise TypeError("texts must be a list of str; wrap a single text as [text]")
    device = resolve_device(device)
    base = getattr(encoder, "base_model", encoder)
    tokens = tokenize(list(texts), tokenizer, max_length)
    key = feature_key(base, tokens, normalize=normalize, pool="mean")

    def fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        longest = int(batch["attention_mask"].sum(1).max())
        batch = {k: v[:, :longest].to(device) for k, v in batch.items()}
        return sentence_vectors(base, batch, normalize)

    with _EvalOn(base, device):
        options = {"batch_size": batch_size, "cache_dir": cache_dir, "progress": progress}
        return extract_features(fn, tokens, key, desc="text features", **options)


def pooled_text_features(
    encoder: nn.Module,
    tokens: dict[str, torch.Tensor],
    poolings: tuple[str, ...] = POOLINGS,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, torch.Tensor]:
    """One pass of a frozen encoder over `tokens` (from `datasets.tokenize`), several poolings:
    {pooling: N x hidden features on the CPU}, cached like every `features.extract_features` call
    (the key covers the weights, the token ids and the poolings). `features.last_extraction()`
    tells what the pass cost."""
    for p in poolings:
        if p not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {p!r}")
    base = getattr(encoder, "base_model", encoder)
    device = resolve_device(device)
    key = feature_key(base, tokens, poolings=list(poolings))

    def fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = base(**batch).last_hidden_state
        mask, pooler = batch["attention_mask"], getattr(base, "pooler", None)
        return torch.cat([pool_tokens(hidden, mask, p, pooler) for p in poolings], 1)

    with _EvalOn(base, device):
        out = extract_features(fn, tokens, key, batch_size=batch_size, cache_dir=cache_dir)
    return dict(zip(poolings, out.chunk(len(poolings), dim=1), strict=True))
