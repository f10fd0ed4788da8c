"""Tiny learnable problems shared by the training tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


def blobs(n: int = 256, dim: int = 10, classes: int = 3, seed: int = 0) -> TensorDataset:
    """Gaussian blobs: a problem a small MLP learns in a few epochs."""
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    return TensorDataset(x, y)


def mlp(dim: int = 10, classes: int = 3, dropout: float = 0.2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, classes))
