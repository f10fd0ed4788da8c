"""Tiny learnable problems and tiny models shared by the tests."""

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


def tiny_bert_config(**overrides):
    """A 2-layer, 16-wide BERT config: a fast stand-in for MiniLM's shape (random weights).
    Keyword arguments override any field (sizes, num_labels ...)."""
    from transformers import BertConfig

    fields = dict(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    return BertConfig(**{**fields, **overrides})


def tiny_classifier(seed: int = 0) -> nn.Module:
    """A tiny BERT encoder with a 2-way `TextClassifier` head (random weights, for tests)."""
    from transformers import BertModel

    from coursekit.heads import TextClassifier

    torch.manual_seed(seed)
    return TextClassifier(BertModel(tiny_bert_config(), add_pooling_layer=False), num_classes=2)
