"""The data of freezing recipes: activations below a split, computed once (lesson 04).

`CachedSplits` runs the frozen layers of a pre-trained model once over the train / val / test
images and keeps what they output, so every recipe that trains only layers above that split pays
for the frozen ones once in total instead of once per step; `Batches` serves those activations as
mini-batches. Used by `freezing.recipes`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..datasets import Split, image_dataset
from ..runtime.device import resolve_device
from .split import Below, activations, stage_names

__all__ = ["SPLITS", "Batches", "CachedSplits"]

SPLITS = ("train", "val", "test")


@dataclass
class CachedSplits:
    """Train / val / test images of one pre-trained `model`, and their activations below `at`.

    Built by `CachedSplits.build`; `batches(at)` gives mini-batches of the activations below any
    stage at or above `at` (running the frozen stages in between once), `images()` the images.
    """

    model: nn.Module
    splits: dict[str, Split]
    at: str
    size: int
    mean: Sequence[float] | float | None
    std: Sequence[float] | float | None
    device: torch.device
    _cached: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        model: nn.Module,
        splits: Mapping[str, Split],
        at: str,
        *,
        size: int,
        mean: Sequence[float] | float | None,
        std: Sequence[float] | float | None,
        device: torch.device | str | None = None,
        cache_dir: str | Path | None = None,
    ) -> CachedSplits:
        """Run the frozen layers of `model` below `at` once over each of `splits` ("train",
        "val", "test"): the only full forward passes any recipe on it will need."""
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"splits needs {', '.join(SPLITS)}; missing {', '.join(missing)}")
        model = copy.deepcopy(model).requires_grad_(False)  # everything below stays as loaded
        device = resolve_device(device)
        data = cls(model, {n: splits[n] for n in SPLITS}, at, size, mean, std, device)
        kw = {"size": size, "mean": mean, "std": std, "device": device, "cache_dir": cache_dir}
        data._cached[at] = {n: activations(model, s.x, at, **kw) for n, s in data.splits.items()}
        return data

    def subset(self, **sizes: int) -> CachedSplits:
        """The same data cut to the first `sizes[name]` examples of a split, e.g.
        `subset(val=0, test=500)` for runs too costly to validate (0: no validation)."""
        unknown = set(sizes) - set(SPLITS)
        if unknown or sizes.get("train", 1) < 1 or sizes.get("test", 1) < 1:
            raise ValueError(f"sizes are for {', '.join(SPLITS)} (train, test >= 1), got {sizes}")
        cut = {n: slice(0, sizes.get(n, len(s))) for n, s in self.splits.items()}
        splits = {n: s.subset(range(len(s))[cut[n]]) for n, s in self.splits.items()}
        cached = {at: {n: x[cut[n]] for n, x in xs.items()} for at, xs in self._cached.items()}
        fields = (self.model, splits, self.at, self.size, self.mean, self.std, self.device)
        return CachedSplits(*fields, cached)

    def activations(self, at: str) -> dict[str, torch.Tensor]:
        """{"train", "val", "test"}: the activations below `at` (CPU tensors)."""
        names = stage_names(self.model)
        if names.index(at) < names.index(self.at):
            raise ValueError(f"{at!r} lies below the cached split {self.at!r}: build it lower")
        if at not in self._cached:
            below = Below(self.model, at, start=self.at).eval().to(self.device)
            with torch.no_grad():
                self._cached[at] = {
                    n: _batched(below, x, self.device) for n, x in self._cached[self.at].items()
                }
        return self._cached[at]

    def batches(self, at: str, batch_size: int = 32) -> dict[str, Batches]:
        """Mini-batches of the activations below `at` with their labels (train shuffled)."""
        x = self.activations(at)
        return {
            n: Batches(x[n], s.y, batch_size if n == "train" else 256, shuffle=n == "train")
            for n, s in self.splits.items()
        }

    def images(self) -> dict[str, Dataset]:
        """The images themselves, prepared per batch (for runs whose frozen layers must run)."""
        return {
            name: image_dataset(s, self.size, mean=self.mean, std=self.std)
            for name, s in self.splits.items()
            if len(s)
        }


class Batches:
    """Re-iterable `(inputs, labels)` mini-batches of in-memory tensors, sliced whole (no
    per-example indexing and collating as a DataLoader does: on small cached activations that
    bookkeeping would cost more than the training step). With `shuffle`, a new order per pass
    from torch's global generator (`seed_everything` makes it reproducible)."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 32, shuffle: bool = False
    ):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.y)) if self.shuffle else None
        for start in range(0, len(self.y), self.batch_size):
            if order is None:
                yield (
                    self.x[start : start + self.batch_size],
                    self.y[start : start + self.batch_size],
                )
            else:
                idx = order[start : start + self.batch_size]
                yield self.x[idx], self.y[idx]


def _batched(fn: nn.Module, x: torch.Tensor, device: torch.device, size: int = 512) -> torch.Tensor:
    if not len(x):
        return fn(x[:1].to(device)).cpu()[:0]  # no examples, but the shape of the output
    return torch.cat([fn(x[i : i + size].to(device)).cpu() for i in range(0, len(x), size)])
