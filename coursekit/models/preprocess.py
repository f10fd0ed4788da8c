"""Turn images into the float batches each pre-trained model expects.

A pre-trained network only works on inputs scaled the way its training images were. Each model
family has its own normalisation; `normalization_for(name)` gives it as (mean, std) per channel in
the [0, 1] pixel scale that torchvision transforms use, and `preprocess` does the whole job:
any image type -> RGB float -> resize -> normalise -> one [N, 3, size, size] tensor.
Lessons 01-04.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalization_for", "preprocess", "to_tensor"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# EfficientNet-Lite was trained on (x - 127) / 128 with x in 0..255: mean 127/255, std 128/255.
_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "efficientnet_lite0": ((127 / 255,) * 3, (128 / 255,) * 3),
    "resnet18": (IMAGENET_MEAN, IMAGENET_STD),
    "mobilenet_v3_small": (IMAGENET_MEAN, IMAGENET_STD),
    "mobilenet_v3_large": (IMAGENET_MEAN, IMAGENET_STD),
}


def normalization_for(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel, for pixels in [0, 1], of the named image model."""
    if name in _NORMALIZATION:
        return _NORMALIZATION[name]
    if name == "minilm":
        raise ValueError("'minilm' is a text model: it takes token ids, see load_tokenizer().")
    raise ValueError(
        f"no image normalisation known for {name!r}; known image models: "
        f"{', '.join(_NORMALIZATION)}"
    )


def to_tensor(image: Any) -> torch.Tensor:
    """One image -> float RGB tensor [3, H, W] in [0, 1].

    Accepts a PIL image, a numpy array (HxW or HxWxC, uint8 0..255 or float 0..1), or a tensor
    ([H, W], [C, H, W]; uint8 or float 0..1). Grey images are repeated to 3 channels and an
    alpha channel is dropped, so Fashion-MNIST and PNG photos both fit an RGB network.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 2:
            t = t.unsqueeze(0)
        if t.ndim != 3:
            raise ValueError(f"expected an image tensor [C, H, W] or [H, W], got {tuple(t.shape)}")
    else:
        if not isinstance(image, np.ndarray):  # PIL images and anything array-like
            if getattr(image, "mode", "RGB") not in ("RGB", "L"):
                image = image.convert("RGB")
            image = np.asarray(image)
        arr = np.array(image)  # a copy: PIL's buffer and skimage's arrays are read-only
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"expected an image array HxW or HxWxC, got shape {arr.shape}")
        t = torch.from_numpy(arr).permute(2, 0, 1)
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    elif t.shape[0] == 4:
        t = t[:3]
    elif t.shape[0] != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got {t.shape[0]}")
    return t


def _resize_center_crop(batch: torch.Tensor, size: int, crop: float = 1.0) -> torch.Tensor:
    """Resize the shorter side to `size / crop` (antialiased bilinear), keep the centre square."""
    h, w = batch.shape[-2:]
    short = round(size / crop)
    scale = short / min(h, w)
    new_h, new_w = max(short, round(h * scale)), max(short, round(w * scale))
    if (new_h, new_w) != (h, w):
        batch = F.interpolate(
            batch, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
        )
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return batch[..., top : top + size, left : left + size]


def _is_batch(images: Any) -> bool:
    """A 4-d tensor/array, or grey images [N, H, W] (told from one image by its channel count)."""
    if isinstance(images, torch.Tensor):
        return images.ndim == 4 or (images.ndim == 3 and images.shape[0] not in (1, 3, 4))
    if isinstance(images, np.ndarray):
        return images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4))
    return isinstance(images, Sequence) and not isinstance(images, (str, bytes))


def preprocess(
    images: Any, name: str = "efficientnet_lite0", size: int = 224, crop: float = 1.0
) -> torch.Tensor:
    """Images -> normalised float batch [N, 3, size, size] for the named model.

    `images` is one image (see `to_tensor`), a sequence of images, or a batch: tensor
    [N, C, H, W], array [N, H, W, C], or grey [N, H, W] (N not 1, 3 or 4: those read as one
    image's channels). Each image's shorter side is resized
    to `size / crop` and the centre `size` x `size` square kept. `crop=1.0` keeps as much of the
    image as fits a square (right for datasets); `crop=0.875` is the usual ImageNet evaluation
    (resize to 256, crop 224), which `classify_image` uses.
    """
    mean, std = normalization_for(name)
    if isinstance(images, (torch.Tensor, np.ndarray)) and _is_batch(images):
        batch = _resize_center_crop(torch.stack([to_tensor(i) for i in images]), size, crop)
    elif _is_batch(images):  # a list: the images may differ in size
        batch = torch.stack(
            [_resize_center_crop(to_tensor(i)[None], size, crop)[0] for i in images]
        )
    else:
        batch = _resize_center_crop(to_tensor(images)[None], size, crop)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (batch - m) / s
