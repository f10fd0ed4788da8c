"""Image preparation for a pre-trained network: uint8 images in, normalised float batches out.

`prepare_images` resizes uint8 images, makes them 3-channel and normalises them with *the model's
own* mean/std (the models layer knows those numbers; this module does not import it).

Why not prepare a dataset once, up front? Memory. Fashion-MNIST's 50,000 training images take
39 MB as 28x28 uint8, but 30 GB as 3x224x224 float32 -- more than a Colab runtime has.
`image_dataset` therefore keeps the uint8 images and prepares each *batch* when a DataLoader
fetches it (`__getitems__`: one resize call per batch), so only one batch of floats exists at a
time. Lessons 03 and 04 use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import Split

__all__ = ["ImageDataset", "image_dataset", "prepare_images"]


def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 3:  # N x H x W grayscale
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[-1] in (1, 3):  # N x H x W x C (numpy / PIL layout)
        return x.permute(0, 3, 1, 2)
    raise ValueError(
        f"expected images N x H x W, N x C x H x W or N x H x W x C with C in (1, 3); got shape "
        f"{tuple(x.shape)} (for one image, pass x[None] or a list of images)"
    )


def _channel_stats(v: float | Sequence[float] | None, c: int, name: str) -> torch.Tensor | None:
    if v is None:
        return None
    t = torch.as_tensor(v, dtype=torch.float32).flatten()
    if t.numel() not in (1, c):
        raise ValueError(f"{name} needs 1 or {c} values (one per channel), got {t.numel()}")
    return t.view(1, -1, 1, 1)


def prepare_images(
    x: torch.Tensor | np.ndarray | Sequence[np.ndarray | torch.Tensor],
    size: int | tuple[int, int] | None,
    *,
    rgb: bool = True,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    chunk: int = 1024,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """uint8 images -> float32 N x C x size x size, ready for a pre-trained network.

    Steps: scale to [0, 1]; resize with antialiasing (bilinear; `size=None` keeps the size);
    repeat a grayscale channel 3 times when `rgb` (pre-trained vision models expect RGB);
    normalise `(x - mean) / std` with the model's per-channel statistics (scalars or one value per
    channel; none means no normalisation). `x` is a uint8 batch (N x H x W, N x C x H x W or
    N x H x W x C), float images already in [0, 1], or a list of single images of any sizes
    (H x W or H x W x 3, e.g. from `load_photos`). Works `chunk` images at a time to bound memory.
    `device` (e.g. the model's GPU) moves each uint8 chunk there first, so the resize runs there
    and the float result is made there (default: the CPU).
    """
    if isinstance(x, list | tuple):
        if not x:
            raise ValueError("no images given")
        kw = dict(rgb=rgb, mean=mean, std=std, device=device)
        return torch.cat(
            [prepare_images(torch.as_tensor(np.array(im))[None], size, **kw) for im in x]
        )
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"images must be uint8 (0..255) or float in [0, 1], got {x.dtype}")
    if x.dtype.is_floating_point and x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("float images must already be scaled to [0, 1]; pass uint8 instead")
    x = _to_nchw(x)
    if size is None:
        size = tuple(x.shape[-2:])
    hw = (size, size) if isinstance(size, int) else tuple(size)
    c_out = 3 if rgb else x.shape[1]
    mean_t, std_t = _channel_stats(mean, c_out, "mean"), _channel_stats(std, c_out, "std")
    if std_t is not None and bool((std_t == 0).any()):
        raise ValueError("std must not be zero")
    device = torch.device(device) if device is not None else x.device
    # (x / top - mean) / std as (x - mean * top) / (std * top): two passes over the output, in place
    top = 255.0 if x.dtype == torch.uint8 else 1.0
    shift = torch.zeros(1, 1, 1, 1) if mean_t is None else mean_t * top
    shift = shift.expand(1, c_out, 1, 1).to(device)  # c_out channels: a gray batch becomes RGB
    scale = ((torch.ones(1, 1, 1, 1) if std_t is None else std_t) * top).to(device)
    # antialiasing only changes shrinking; growing is plain bilinear (the same numbers, faster)
    antialias = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    out = torch.empty((len(x), c_out, *hw), dtype=torch.float32, device=device)
    for start in range(0, len(x), chunk):
        b = x[start : start + chunk].to(device, non_blocking=True).float()
        if tuple(b.shape[-2:]) != hw:
            b = torch.nn.functional.interpolate(
                b, size=hw, mode="bilinear", antialias=antialias, align_corners=False
            ).clamp_(0, top)
        part = out[start : start + chunk]
        torch.sub(b, shift, out=part).div_(scale)
    return out


class ImageDataset(Dataset):
    """uint8 images at their native size, prepared batch by batch when a DataLoader fetches them.

    The course's one image dataset (lessons 02-04 and 07). Items are `(float image C x size x
    size, label)`, exactly `prepare_images(x[i:i+1], ...)[0]`. A DataLoader asks for a whole batch
    at once through `__getitems__`, so a batch is resized in one call; the dataset itself holds
    only the uint8 images (`nbytes` says how many bytes).

    `device`: where batches are prepared (default: the CPU). `fit`, `evaluate` and `predict` on a
    GPU prepare there (`to(device)`): only uint8 images cross to the GPU and the resize runs
    there instead of on the host's few cores. `transform`: a torchvision transform applied to
    each uint8 image (C x H x W) first, e.g. random crops and flips (`finetune.build.
    default_augmentation`); it keeps the batch on the host's DataLoader workers.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | Sequence[int] | np.ndarray,
        size: int | tuple[int, int] | None,
        *,
        rgb: bool = True,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | str | None = None,
    ):
        if not isinstance(images, torch.Tensor):
            raise TypeError(
                "ImageDataset needs an image split (x a uint8 tensor); for text use tokenize"
            )
        if images.dtype != torch.uint8:
            raise TypeError(f"ImageDataset stores uint8 images, got {images.dtype}")
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.size, self.rgb, self.mean, self.std = size, rgb, mean, std
        self.transform = transform
        self.device = torch.device(device) if device is not None else None
        prepare_images(images[:1], size, rgb=rgb, mean=mean, std=std)  # bad arguments fail now

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes held by the dataset (uint8 images + int64 labels)."""
        return self.images.nbytes + self.labels.nbytes

    def to(self, device: torch.device | str) -> ImageDataset:
        """The same images, with batches prepared on `device` (labels stay on the host)."""
        return ImageDataset(self.images, self.labels, self.size, rgb=self.rgb, mean=self.mean,
                            std=self.std, transform=self.transform, device=device)  # fmt: skip

    def prepare(self, idx: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The float batch for positions `idx` (N x C x size x size)."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        x = self.images[idx]
        if self.transform is not None:
            x = torch.stack([self.transform(image) for image in x])
        kw = dict(rgb=self.rgb, mean=self.mean, std=self.std, device=self.device)
        return prepare_images(x, self.size, **kw)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prepare([i])[0], self.labels[i]

    def __getitems__(self, idx: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x = self.prepare(idx)
        return list(zip(x, self.labels[torch.as_tensor(idx, dtype=torch.int64)], strict=True))


def image_dataset(
    split: Split,
    size: int | tuple[int, int] | None = None,
    *,
    rgb: bool = True,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    device: torch.device | str | None = None,
) -> ImageDataset:
    """An `ImageDataset` for a DataLoader: the split's uint8 images, prepared per batch (on
    `device`, default the CPU).

    Memory stays that of the uint8 images at their native size (10,000 Fashion-MNIST images:
    8 MB), whatever `size`; the float copy at `size` px exists one batch at a time.
    """
    return ImageDataset(split.x, split.y, size, rgb=rgb, mean=mean, std=std, device=device)
