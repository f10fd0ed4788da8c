"""Section 2: frozen-feature caching. Train a head for N epochs on cached features vs running the
frozen backbone on every batch of every epoch, for vision (EfficientNet-Lite0 on Fashion-MNIST)
and text (MiniLM on BBC News).

Both paths train the same head (Linear on the pooled features) with `fit` on the same examples,
batch size and epochs. The slow path's timer includes preparing the images / tokens once; the
fast path's first run includes extracting the features (`coursekit.features`); its re-run finds
the features in the cache, which is what happens when a lesson trains a second head, tries
another learning rate, or is run again.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import TensorDataset

import coursekit as ck
from coursekit.features import clear_feature_cache, extract_image_features, extract_text_features

from .common import Sizes, median, sync

BATCH_SIZE = 32
LR = 1e-3


class FrozenBackbone(nn.Module):
    """`head(features(x))` with the backbone frozen and kept in eval mode (BN statistics fixed)."""

    def __init__(self, features, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head, self._features = backbone.requires_grad_(False), head, features

    def train(self, mode: bool = True) -> FrozenBackbone:
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.head(self._features(*args, **kwargs))


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _fit_head(head: nn.Module, data, epochs: int, device) -> None:
    ck.fit(head, data, epochs=epochs, lr=LR, batch_size=BATCH_SIZE, device=device, progress=False)


def _vision(s: Sizes, device: torch.device) -> dict:
    from coursekit.datasets import load_fashion_mnist, prepare_images
    from coursekit.models import load_pretrained, normalization_for

    data = load_fashion_mnist(n_train=s.cache_images, n_val=1000)
    x, y = data.train.x, torch.as_tensor(data.train.y)
    mean, std = normalization_for("efficientnet_lite0")
    backbone = load_pretrained("efficientnet_lite0").to(device)

    def slow() -> None:
        ds = TensorDataset(prepare_images(x, s.image_size, mean=mean, std=std), y)
        torch.manual_seed(0)
        model = FrozenBackbone(backbone.features, backbone, nn.Linear(1280, 10))
        _fit_head(model, ds, s.cache_epochs, device)
        sync(device)

    def fast() -> None:
        feats = extract_image_features(backbone, x, s.image_size, mean, std, device=device)
        torch.manual_seed(0)
        _fit_head(nn.Linear(1280, 10), TensorDataset(feats, y), s.cache_epochs, device)
        sync(device)

    return _compare("vision", "EfficientNet-Lite0 + Fashion-MNIST", len(x), s, slow, fast)


def _text(s: Sizes, device: torch.device) -> dict:
    from coursekit.datasets import load_bbc_news, tokenize
    from coursekit.datasets.base import TensorDictDataset
    from coursekit.models import load_pretrained, load_tokenizer
    from coursekit.models.text import sentence_vectors

    bbc = load_bbc_news()
    texts, y = bbc.train.x[: s.cache_texts], torch.as_tensor(bbc.train.y[: s.cache_texts])
    tokenizer, encoder = load_tokenizer("minilm"), load_pretrained("minilm").to(device)

    def pooled(**batch: torch.Tensor) -> torch.Tensor:
        longest = int(batch["attention_mask"].sum(1).max())  # as extract_text_features does
        return sentence_vectors(encoder, {k: v[:, :longest] for k, v in batch.items()}, False)

    def slow() -> None:
        ds = TensorDictDataset(tokenize(texts, tokenizer, s.max_length), y)
        torch.manual_seed(0)
        _fit_head(FrozenBackbone(pooled, encoder, nn.Linear(384, 5)), ds, s.cache_epochs, device)
        sync(device)

    def fast() -> None:
        feats = extract_text_features(encoder, tokenizer, texts, s.max_length, device=device)
        torch.manual_seed(0)
        _fit_head(nn.Linear(384, 5), TensorDataset(feats, y), s.cache_epochs, device)
        sync(device)

    return _compare("text", "MiniLM-L6 + BBC News", len(texts), s, slow, fast)


def _compare(kind: str, what: str, n: int, s: Sizes, slow, fast) -> dict:
    slow_t, first_t, rerun_t = [], [], []
    for _ in range(s.repeats):  # interleaved: slow, fast (cold cache), fast (warm cache)
        slow_t.append(_timed(slow)[0])
        clear_feature_cache()
        first_t.append(_timed(fast)[0])
        rerun_t.append(_timed(fast)[0])
    clear_feature_cache()
    slow_s, first_s, rerun_s = median(slow_t), median(first_t), median(rerun_t)
    return {
        "kind": kind,
        "setup": what,
        "examples": n,
        "epochs": s.cache_epochs,
        "batch_size": BATCH_SIZE,
        "backbone_every_epoch_s": round(slow_s, 3),
        "cached_first_run_s": round(first_s, 3),
        "cached_rerun_s": round(rerun_s, 4),
        "speedup_first_run": round(slow_s / first_s, 2),
        "speedup_rerun": round(slow_s / rerun_s, 1),
    }


def run(s: Sizes, device: torch.device) -> dict:
    rows = [_vision(s, device), _text(s, device)]
    return {"rows": rows, "image_size": s.image_size, "max_length": s.max_length}
