"""Frozen layers run once: split a network where learning starts, cache what lies below (lesson 04).

When only the top of a network learns, everything below its lowest trainable layer is a fixed
function of the input: running it again in every epoch recomputes the same numbers at full cost.
So split the network there (`lowest_trainable`):

- `Below(model, at)` is the frozen part, from the images up to the stage `at`. `activations`
  runs it once over a set of images, in eval mode (frozen BatchNorm layers normalise with their
  pre-trained statistics; stochastic depth and dropout are off), and caches the result the way
  lesson 02 caches features (`features.extract_features`: the key covers the frozen weights,
  the pixels, the image size and the split point, so it never goes stale).
- `Above(model, at)` is the rest, from `at` to the logits, as a module that *shares the model's
  parameters*: training it on the cached activations trains `model` itself. Its frozen weights
  stay bit-identical, and `model` is what you evaluate and save.

On the same images `Above(model, at)(Below(model, at)(x))` equals `model(x)` in eval mode, and in
training its gradients are those of the whole network with its frozen part in eval mode.

`Below(..., bn="train")` is the BatchNorm trap in isolation: the same frozen layers, run at every
step, with their BatchNorm layers in train mode (batch statistics, running statistics updated)
and everything else as in eval mode.

The stages of EfficientNet-Lite0 (`stage_names`), from the input: "stem", "_blocks.0" ...
"_blocks.15", "_conv_head" (1x1 convolution to 1,280 channels, BatchNorm, pooling) and "_fc"
(dropout and the classifier on the pooled features). `Below(model, "_fc")` gives the 1,280
pooled features of lesson 02; `Above(model, "_fc")` is the head alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..datasets import prepare_images
from ..features import extract_features, feature_key
from ..runtime.device import resolve_device
from .batchnorm import keep_running_stats
from .by_name import BN_MODES

__all__ = ["Above", "Below", "activations", "lowest_trainable", "stage_names"]

Stage = tuple[str, Callable[[torch.Tensor], torch.Tensor], list[nn.Module]]


def _stages(model: nn.Module) -> list[Stage]:
    """(name, function, modules) of each stage, from the input to the logits."""
    needed = ("stem", "head", "_blocks", "_conv_stem", "_bn0", "_conv_head", "_bn1", "_fc")
    if not all(hasattr(model, n) for n in needed):
        raise TypeError(
            f"splitting works on the course's EfficientNet-Lite0 (stem, _blocks, head, _fc), not "
            f"a {type(model).__name__}; train the whole network with fit instead."
        )

    def pooled(x: torch.Tensor) -> torch.Tensor:
        return model._avg_pooling(model.head(x)).flatten(1)

    def classify(x: torch.Tensor) -> torch.Tensor:
        return model._fc(model._dropout(x))

    stages: list[Stage] = [("stem", model.stem, [model._conv_stem, model._bn0])]
    stages += [(f"_blocks.{i}", b, [b]) for i, b in enumerate(model._blocks)]
    stages += [("_conv_head", pooled, [model._conv_head, model._bn1])]
    return stages + [("_fc", classify, [model._dropout, model._fc])]


def stage_names(model: nn.Module) -> list[str]:
    """The places a network can be split, from the input: "stem", "_blocks.0", ..., "_fc"."""
    return [name for name, _, _ in _stages(model)]


def _index(model: nn.Module, at: str) -> int:
    names = stage_names(model)
    if at not in names:
        raise ValueError(f"no stage {at!r}; split at one of {', '.join(names)}")
    return names.index(at)


def lowest_trainable(model: nn.Module) -> str:
    """The first stage, from the input, with a trainable parameter: below it nothing learns.

    After `unfreeze_last(model, 3)` that is "_blocks.13"; after `freeze_all_but_head`, "_fc".
    """
    for name, _, modules in _stages(model):
        if any(p.requires_grad for m in modules for p in m.parameters()):
            return name
    raise ValueError("every parameter is frozen: unfreeze something before splitting")


class Below(nn.Module):
    """The frozen stages from `start` (default: the images) up to (not including) `at`, always
    in eval mode.

    bn="train" keeps the BatchNorm layers in train mode while training (`model.train()`): they
    normalise with each batch's statistics and update their running statistics, the BatchNorm
    trap, with every other layer (stochastic depth, dropout) as in eval mode. Like
    `freeze(..., bn="train")`, it lifts the hook that `bn="eval"` put on those layers.
    """

    def __init__(self, model: nn.Module, at: str, *, start: str = "stem", bn: str = "eval") -> None:
        super().__init__()
        if bn not in BN_MODES:
            raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
        if _index(model, start) > _index(model, at):
            raise ValueError(f"start {start!r} lies above at {at!r}")
        stages = _stages(model)[_index(model, start) : _index(model, at)]
        trainable = [
            n for n, _, ms in stages for m in ms for p in m.parameters() if p.requires_grad
        ]
        if trainable:
            raise ValueError(
                f"{trainable[0]} is trainable but lies below {at!r}: split at "
                f"lowest_trainable(model) = {lowest_trainable(model)!r}"
            )
        self.start, self.at, self.bn = start, at, bn
        self._functions = [fn for _, fn, _ in stages]
        self.parts = nn.ModuleList(m for _, _, ms in stages for m in ms)  # for state and .to()
        if bn == "train":
            norms = [(n, m) for n, m in self.parts.named_modules() if isinstance(m, _BatchNorm)]
            keep_running_stats(norms, keep=False)

    def train(self, mode: bool = True) -> Below:
        super().train(False)
        if self.bn == "train":
            for m in self.parts.modules():
                if isinstance(m, _BatchNorm):
                    m.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self._functions:
            x = fn(x)
        return x


class Above(nn.Module):
    """The stages from `at` to the logits of `model`, sharing its parameters (`self.model`).

    Takes the activations `Below(model, at)` makes (see `activations`) and returns logits, so
    `fit(Above(model, at), cached_train, cached_val)` trains the model's own top layers.
    """

    def __init__(self, model: nn.Module, at: str) -> None:
        super().__init__()
        self.model, self.at = model, at
        self._functions = [fn for _, fn, _ in _stages(model)[_index(model, at) :]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self._functions:
            x = fn(x)
        return x


def activations(
    model: nn.Module,
    images: torch.Tensor,
    at: str,
    *,
    size: int,
    mean: Sequence[float] | float | None,
    std: Sequence[float] | float | None,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
) -> torch.Tensor:
    """What the frozen layers below `at` make of uint8 `images`: computed once, cached.

    Images are prepared like `datasets.prepare_images` (resize to `size`, gray -> RGB, the
    model's `mean`/`std`) batch by batch. Returns a float32 CPU tensor, e.g. N x 192 x 1 x 1
    below "_blocks.13" at 32 px, N x 1,280 below "_fc".
    """
    below = Below(model, at)
    device = resolve_device(device)
    key = feature_key(below, images, size=size, mean=mean, std=std, at=at, fn="Below")

    def fn(batch: torch.Tensor) -> torch.Tensor:
        return below(prepare_images(batch, size, mean=mean, std=std, device=device))

    home = next(model.parameters()).device
    modes = {m: m.training for m in below.modules()}
    below.eval().to(device)
    try:
        return extract_features(fn, images, key, batch_size=batch_size, cache_dir=cache_dir)
    finally:
        below.to(home)
        for m, mode in modes.items():
            m.training = mode
