"""What a batch is, and how it meets a model.

A batch is `(inputs, labels)` (vision) or a dict of tensors with a "labels" key (Hugging Face
models); a model returns logits, or an object with `.logits`. `fit`, `evaluate`, the LR finder
and the cost measurements all go through these few functions, so every one of them accepts the
same data and reports the same clear errors. Images come as `datasets.ImageDataset` (uint8,
prepared per batch, on the GPU when training runs there).
Every lesson that trains (00, 02-06) goes through this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..datasets import ImageDataset, Split, image_dataset
from ..runtime.device import dataloader_kwargs

__all__ = [
    "ImageBatches",
    "as_loader",
    "check_labels",
    "describe_inputs",
    "forward_logits",
    "split_batch",
    "to_device",
]


def as_loader(
    data: Any,
    batch_size: int,
    shuffle: bool,
    device: torch.device,
    name: str,
    *,
    on_device: bool = True,
) -> Any:
    """A DataLoader for a Dataset (portable defaults), anything else as given; errors if empty.

    Images for a GPU are prepared *on* the GPU (`on_device`): an `ImageDataset` without a host
    transform is batched in this process with its preparation on `device`, so only uint8 images
    cross to the GPU and the resize to 224 px runs there instead of on the host's few CPU cores.
    (`fit` under several processes passes `on_device=False`: Accelerate shards the DataLoader.)
    """
    try:
        n = len(data)
    except TypeError:
        n = None
    if n and on_device and device.type == "cuda" and isinstance(data, ImageDataset):
        if data.transform is None:
            return DataLoader(data.to(device), batch_size=batch_size, shuffle=shuffle)
    if n != 0 and isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=shuffle, **dataloader_kwargs(device))
    if n == 0:
        raise ValueError(
            f"{name} is empty: it yields no batches. Check the split or the subset "
            "size (e.g. per_class n) that built it."
        )
    return data


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """(inputs, labels) from a tuple batch, or from a dict batch with a "labels" key; clear
    errors for batches that are not tensors (numpy arrays, lists of strings)."""
    if isinstance(batch, dict):
        if "labels" not in batch:
            raise ValueError(f"a dict batch needs a 'labels' key; it has {sorted(batch)}")
        inputs, labels = {k: v for k, v in batch.items() if k != "labels"}, batch["labels"]
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        inputs, labels = batch[0], batch[1]
    else:
        raise ValueError(
            f"a batch must be (inputs, labels) or a dict with 'labels'; got {type(batch).__name__}"
        )
    _check_tensor(labels, "labels")
    for name, x in inputs.items() if isinstance(inputs, dict) else [("inputs", inputs)]:
        _check_tensor(x, name)
    return inputs, labels


def _check_tensor(x: Any, name: str) -> None:
    """Batches hold torch tensors; say how to fix the two usual other things."""
    if isinstance(x, torch.Tensor):
        return
    if type(x).__module__ == "numpy":
        raise TypeError(
            f"the batch's {name} are a numpy array; fit and evaluate take torch tensors. Convert "
            "with torch.from_numpy(array) (labels: .long()), or wrap the arrays in a TensorDataset."
        )
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], str):
        kind = "labels are strings" if name == "labels" else f"{name} are strings"
        fix = (
            "map them to class indices 0..C-1 first, e.g. "
            "index = {c: i for i, c in enumerate(sorted(set(labels)))}"
            if name == "labels"
            else "tokenize texts first (datasets.text_dataset / datasets.tokenize)"
        )
        raise TypeError(f"the batch's {kind} (e.g. {x[0]!r}); {fix}.")


def to_device(x: Any, device: torch.device) -> Any:
    """Move a tensor, or every tensor of a dict, to `device` (asynchronously where possible)."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def describe_inputs(x: Any) -> str:
    """Shapes of a batch's inputs, for error messages."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in x.items()) + "}"
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def forward_logits(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Call the model on tensor or dict inputs; return logits (also from HF output objects)."""
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return out.logits if hasattr(out, "logits") else out


def check_labels(labels: torch.Tensor, logits: torch.Tensor, custom_loss: bool) -> None:
    """Clear errors for the usual mistakes, before they become cryptic CUDA asserts."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"the model returned {logits.shape[0]} predictions for a batch of "
            f"{labels.shape[0]} labels: inputs and labels are mismatched."
        )
    if custom_loss:
        return
    if logits.ndim != 2:
        raise ValueError(
            f"expected logits of shape (batch, num_classes), got {tuple(logits.shape)};"
            " pass loss_fn= for other outputs."
        )
    if labels.ndim != 1:
        raise ValueError(
            f"labels must be one class index per example, shape ({labels.shape[0]},), got shape "
            f"{tuple(labels.shape)}; flatten them with labels.view(-1) (or y.squeeze(1))."
        )
    if labels.dtype.is_floating_point:
        raise ValueError(f"labels must be integer class indices (torch.long), got {labels.dtype}.")
    n = logits.shape[-1]
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n:
        raise ValueError(
            f"labels must lie in 0..{n - 1} for a model with {n} outputs, but a batch has labels "
            f"{lo}..{hi}. Give the model a head with {hi + 1} outputs (replace its classifier) or "
            "map the labels to 0..num_classes-1."
        )


def ImageBatches(  # the old class name, kept for one release
    split: Split,
    size: int | tuple[int, int] | None,
    mean: Sequence[float] | float | None,
    std: Sequence[float] | float | None,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    rgb: bool = True,
    device: torch.device | str | None = None,
) -> DataLoader:
    """Deprecated: pass `datasets.image_dataset(split, size, mean=..., std=...)` to `fit` /
    `predict` (they batch it, and prepare it on the GPU they run on). Returns the DataLoader
    over that one image dataset type; removed in the next release."""
    warnings.warn(
        "ImageBatches is deprecated and will be removed in the next release: pass "
        "datasets.image_dataset(split, size, mean=mean, std=std) to fit/predict (batch_size= "
        "there), or wrap it in a DataLoader.",
        DeprecationWarning,
        stacklevel=2,
    )
    dataset = image_dataset(split, size, rgb=rgb, mean=mean, std=std, device=device)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
