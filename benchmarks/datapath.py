"""Section 4: the data path. A DataLoader (no workers / 2 workers) vs pre-tensorized in-memory
batches (one random permutation, then whole batches cut by index: no per-example
`__getitem__`, no collate).

Measured two ways: iterating one epoch and touching every batch (the data path alone), and one
`fit` epoch of a linear head on cached features (the lessons' common case, where data is most of
the work). Image features: 1,280-d (EfficientNet-Lite0's); text: token-id dicts of length 128.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import coursekit as ck
from coursekit.datasets.base import TensorDictDataset

from .common import Sizes, interleaved, median

BATCH_SIZE = 32


class TensorBatches:
    """Shuffled batches sliced straight out of in-memory tensors: `(x, y)` or dict batches.

    The same batches a DataLoader over a `TensorDataset` / `TensorDictDataset` yields, without
    indexing examples one by one and stacking them again.
    """

    def __init__(self, data: Any, labels: torch.Tensor, batch_size: int, shuffle: bool = True):
        self.data, self.labels, self.batch_size, self.shuffle = data, labels, batch_size, shuffle

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Any]:
        n = len(self.labels)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if isinstance(self.data, dict):
                yield {**{k: v[idx] for k, v in self.data.items()}, "labels": self.labels[idx]}
            else:
                yield self.data[idx], self.labels[idx]


def _loaders(data: Any, labels: torch.Tensor) -> dict[str, Any]:
    ds = TensorDictDataset(data, labels) if isinstance(data, dict) else TensorDataset(data, labels)
    kw = {"batch_size": BATCH_SIZE, "shuffle": True}
    return {
        "DataLoader, 0 workers": DataLoader(ds, num_workers=0, **kw),
        "DataLoader, 2 workers": DataLoader(ds, num_workers=2, persistent_workers=True, **kw),
        "in-memory batches": TensorBatches(data, labels, BATCH_SIZE),
    }


def _iterate(loader: Any) -> float:
    t0 = time.perf_counter()
    for batch in loader:
        _ = batch["labels"].sum() if isinstance(batch, dict) else batch[1].sum()
    return time.perf_counter() - t0


def _train_epoch(loader: Any, dim: int) -> float:
    torch.manual_seed(0)
    head = nn.Linear(dim, 10)
    t0 = time.perf_counter()
    ck.fit(head, loader, epochs=1, lr=1e-3, device="cpu", progress=False)
    return time.perf_counter() - t0


def run(s: Sizes, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    n = s.data_images
    # Real feature *values* do not change the data path's cost; shapes and dtypes do.
    feats, labels = torch.randn(n, 1280, generator=g), torch.randint(0, 10, (n,), generator=g)
    tokens = {
        "input_ids": torch.randint(0, 30522, (n, 128), generator=g),
        "attention_mask": torch.ones(n, 128, dtype=torch.long),
    }
    rows = []
    for what, data in (("image features 1280-d", feats), ("token ids 128", tokens)):
        loaders = _loaders(data, labels)
        for loader in loaders.values():  # warm up: start workers, touch memory
            _iterate(loader)
        times = interleaved({k: (lambda v=v: _iterate(v)) for k, v in loaders.items()}, s.repeats)
        for name, t in times.items():
            rows.append(
                {
                    "data": what,
                    "path": name,
                    "measure": "iterate one epoch",
                    "ms_per_epoch": round(median(t) * 1e3, 2),
                }
            )
    loaders = _loaders(feats, labels)
    times = interleaved(
        {k: (lambda v=v: _train_epoch(v, 1280)) for k, v in loaders.items()}, s.repeats
    )
    for name, t in times.items():
        rows.append(
            {
                "data": "image features 1280-d",
                "path": name,
                "measure": "fit one epoch, linear head",
                "ms_per_epoch": round(median(t) * 1e3, 2),
            }
        )
    fastest = {}
    for row in rows:
        key = (row["data"], row["measure"])
        if key not in fastest or row["ms_per_epoch"] < fastest[key]["ms_per_epoch"]:
            fastest[key] = row
    return {
        "rows": rows,
        "examples": n,
        "batch_size": BATCH_SIZE,
        "fastest": [{"data": d, "measure": m, "path": r["path"]} for (d, m), r in fastest.items()],
    }
