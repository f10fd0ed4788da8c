"""The data contract shared by every course dataset, and the split helpers behind it.

A dataset is a `DatasetSplits`: three `Split`s (train / val / test) plus the class names. A
`Split` is deliberately plain: `x` is a uint8 image tensor (N x H x W or N x C x H x W) or a list
of strings, `y` an int64 tensor of N labels. Splits are made from fixed seeds, are stratified
(every split keeps the class proportions) and are made *after* exact duplicates are removed, so no
test example also sits in train or val -- otherwise test accuracy silently measures memory.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "DatasetSplits",
    "Split",
    "TensorDictDataset",
    "data_dir",
    "dedupe_indices",
    "per_class",
    "split_fractions",
    "stratified_sample",
    "stratified_split",
]


def data_dir() -> Path:
    """The folder where downloads and caches go (created on first use).

    `$COURSEKIT_DATA` if set; else the repository's `data/` when coursekit runs from a checkout
    (so notebooks in `notebooks/` share one cache); else `./data`.
    """
    env = os.environ.get("COURSEKIT_DATA")
    if env:
        path = Path(env).expanduser()
    else:
        repo = Path(__file__).resolve().parents[2]
        path = repo / "data" if (repo / "pyproject.toml").exists() else Path("data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _as_labels(y: Any) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(y))
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"labels must be integers, got {y.dtype}")
    return y.to(torch.int64)


@dataclass
class Split:
    """One split: inputs `x` (uint8 image tensor or list of str) and int64 labels `y`.

    Numpy arrays are accepted and converted; `x` and `y` must have the same length.
    """

    x: torch.Tensor | list[str]
    y: torch.Tensor

    def __post_init__(self) -> None:
        if isinstance(self.x, np.ndarray):
            self.x = torch.from_numpy(np.ascontiguousarray(self.x))
        elif not isinstance(self.x, torch.Tensor):
            self.x = list(self.x)
        self.y = _as_labels(self.y)
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} items but y has {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: Sequence[int] | np.ndarray | torch.Tensor) -> Split:
        """The examples at positions `idx`, in that order (works for tensors and text lists)."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self.x, torch.Tensor):
            x: torch.Tensor | list[str] = self.x[torch.from_numpy(idx)]
        else:
            x = [self.x[i] for i in idx]
        return Split(x, self.y[torch.from_numpy(idx)])

    def class_counts(self, num_classes: int | None = None) -> list[int]:
        """How many examples of each label 0..num_classes-1."""
        return torch.bincount(self.y, minlength=num_classes or 0).tolist()


@dataclass
class DatasetSplits:
    """A dataset ready for the course: train / val / test splits and the class names.

    `dropped` counts the examples removed as duplicates (or label conflicts) before splitting;
    `source` says where the data was read from.
    """

    train: Split
    val: Split
    test: Split
    classes: list[str]
    name: str
    dropped: int = 0
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self) -> str:
        """A small text table: examples per class in each split, and where the data came from."""
        x = self.train.x
        kind = (
            f"{'x'.join(map(str, x.shape[1:]))} {str(x.dtype).replace('torch.', '')} images"
            if isinstance(x, torch.Tensor)
            else "texts"
        )
        lines = [
            f"{self.name}: {self.num_classes} classes, {kind}, {self.dropped} duplicates dropped"
        ]
        if self.source:
            lines.append(f"source: {self.source}")
        counts = {k: s.class_counts(self.num_classes) for k, s in self.splits().items()}
        width = max(len("class"), *(len(c) for c in self.classes))
        lines.append(f"{'class':<{width}}  {'train':>7}  {'val':>7}  {'test':>7}")
        for i, name in enumerate(self.classes):
            row = "  ".join(f"{counts[k][i]:>7,}" for k in counts)
            lines.append(f"{name:<{width}}  {row}")
        total = "  ".join(f"{len(s):>7,}" for s in self.splits().values())
        lines.append(f"{'total':<{width}}  {total}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------------------------
# Deduplication and stratified sampling (plain numpy, deterministic for a given seed)


def dedupe_indices(keys: Sequence[Hashable], y: Sequence[int] | None = None) -> np.ndarray:
    """Positions to keep so that every key appears once (the first occurrence is kept).

    With labels `y`, a key that occurs with *different* labels is dropped entirely: the example
    is ambiguous, and keeping one copy would make an arbitrary choice.
    """
    first: dict[Hashable, int] = {}
    conflict: set[Hashable] = set()
    labels = None if y is None else np.asarray(y)
    if labels is not None and len(labels) != len(keys):
        raise ValueError(f"{len(keys)} keys but {len(labels)} labels")
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if labels is not None and j != i and labels[j] != labels[i]:
            conflict.add(key)
    return np.array(sorted(i for k, i in first.items() if k not in conflict), dtype=np.int64)


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Share `n` over classes in proportion to `counts` (largest remainder); sums to exactly n."""
    total = int(counts.sum())
    if not 0 <= n <= total:
        raise ValueError(f"asked for {n} examples but only {total} are available")
    exact = counts * n / total
    take = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - int(take.sum())]] += 1
    return take


def stratified_split(
    y: Sequence[int] | np.ndarray | torch.Tensor, sizes: Sequence[int], seed: int = 0
) -> list[np.ndarray]:
    """Stratified random partition of positions 0..N-1.

    Returns one index array per entry of `sizes` (exactly that many, with the class proportions
    of `y`) and a last array with the rest. Each array is shuffled (classes mixed).
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    parts = []
    for n in sizes:
        take = _allocate(np.array([len(p) for p in pools]), int(n))
        parts.append(np.concatenate([p[:k] for p, k in zip(pools, take, strict=True)]))
        pools = [p[k:] for p, k in zip(pools, take, strict=True)]
    parts.append(np.concatenate(pools) if pools else np.array([], dtype=np.int64))
    return [rng.permutation(p).astype(np.int64) for p in parts]


def stratified_sample(split: Split, n: int | None, seed: int = 0) -> Split:
    """A stratified random subset of `n` examples (the whole split, unchanged, when n is None)."""
    if n is None or n == len(split):
        return split
    if n > len(split):
        raise ValueError(f"asked for {n} examples but the split has only {len(split)}")
    idx, _ = stratified_split(split.y, [n], seed=seed)
    return split.subset(idx)


def split_fractions(
    data: Split, val_frac: float, test_frac: float, seed: int = 0
) -> tuple[Split, Split, Split]:
    """Stratified (train, val, test) with `val_frac` and `test_frac` of the examples."""
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(f"need 0 <= fractions and val+test < 1; got {val_frac}, {test_frac}")
    n = len(data)
    test, val, train = stratified_split(data.y, [round(test_frac * n), round(val_frac * n)], seed)
    return data.subset(train), data.subset(val), data.subset(test)


def per_class(split: Split, n: int, seed: int = 0) -> Split:
    """Exactly `n` random examples of every class in `split` (for data-efficiency curves)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    y = split.y.numpy()
    chosen = []
    for c in np.unique(y):
        pool = np.flatnonzero(y == c)
        if len(pool) < n:
            raise ValueError(
                f"class {int(c)} has only {len(pool)} examples in this split; "
                f"asked for {n} per class"
            )
        chosen.append(rng.choice(pool, size=n, replace=False))
    return split.subset(rng.permutation(np.concatenate(chosen)))


# ---------------------------------------------------------------------------------------------
# torch Datasets (module-level classes, so they pickle for spawn-based DataLoader workers)


class TensorDictDataset(Dataset):
    """Items `{name: tensor[i], ..., "labels": labels[i]}`, the input Hugging Face models take.

    `encodings` is a dict of equal-length tensors (e.g. `input_ids`, `attention_mask` from
    `tokenize`); the default collate stacks the items back into a batch dict.
    """

    def __init__(self, encodings: dict[str, torch.Tensor], labels: torch.Tensor | None = None):
        self.encodings = {k: torch.as_tensor(v) for k, v in encodings.items()}
        self.labels = None if labels is None else _as_labels(labels)
        lengths = {k: len(v) for k, v in self.encodings.items()}
        if self.labels is not None:
            lengths["labels"] = len(self.labels)
        if not lengths:
            raise ValueError("TensorDictDataset needs at least one tensor")
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all tensors must have the same length, got {lengths}")
        self._len = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {k: v[i] for k, v in self.encodings.items()}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item
