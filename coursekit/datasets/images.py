"""Image datasets (Fashion-MNIST, scikit-learn digits, a few real photos) and image preparation.

Images are kept as uint8 tensors at their native size until a model needs them; `prepare_images`
then resizes them, makes them 3-channel and normalises them with *the model's own* mean/std (the
models layer knows those numbers; this module does not import it).

Why not prepare everything once? Memory. Fashion-MNIST's 50,000 training images take 39 MB as
28x28 uint8, but 30 GB as 3x224x224 float32 -- more than a Colab runtime has. `image_dataset`
therefore keeps the uint8 images and prepares each *batch* when it is fetched (`__getitems__`:
one resize call per batch), so only one batch of floats exists at a time. Lessons 03 and 04 use it.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from coursekit.assets import AssetCorruptError, AssetMissingError, asset_path

from .base import DatasetSplits, Split, data_dir, dedupe_indices, split_fractions, stratified_split

__all__ = [
    "FASHION_MNIST_CLASSES",
    "ImageDataset",
    "image_dataset",
    "load_digits_splits",
    "load_fashion_mnist",
    "load_photos",
    "prepare_images",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file: images (magic 2051, 16-byte header) or labels (2049, 8 bytes)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # truncated or not gzip (e.g. an interrupted download)
        raise AssetCorruptError(f"{path} is damaged ({err}); delete it and reload") from err
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (2049, 2051):
        raise AssetCorruptError(f"{path} is not an IDX label/image file (magic number {magic})")
    ndim = 1 if magic == 2049 else 3
    header = 4 + 4 * ndim
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) - header != int(np.prod(shape)):
        raise AssetCorruptError(f"{path} is truncated: header says {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def _fashion_mnist_files(download: bool) -> tuple[dict[str, Path], str]:
    """The four IDX files: Debian package, else the torchvision cache in data/, else download."""
    try:
        folder = asset_path("fashion_mnist")
        if all((folder / f).exists() for f in _FASHION_FILES.values()):
            return {k: folder / f for k, f in _FASHION_FILES.items()}, str(folder)
    except AssetMissingError:
        pass
    failure = ""
    cache = data_dir() / "FashionMNIST" / "raw"
    if not all((cache / f).exists() for f in _FASHION_FILES.values()) and download:
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(root=str(data_dir()), train=True, download=True)
            FashionMNIST(root=str(data_dir()), train=False, download=True)
        except Exception as err:  # offline, blocked, partial download...
            failure = f"\nDownloading with torchvision into {data_dir()} failed: {err}"
    if all((cache / f).exists() for f in _FASHION_FILES.values()):
        return {k: cache / f for k, f in _FASHION_FILES.items()}, str(cache)
    raise AssetMissingError(
        "Fashion-MNIST is not installed. Install it with:  "
        "sudo apt-get install dataset-fashion-mnist  (files in /usr/share/datasets/fashion-mnist), "
        f"or run once online so torchvision downloads it into {data_dir()}.{failure}"
    )


def load_fashion_mnist(
    n_train: int | None = None,
    n_val: int = 5000,
    n_test: int | None = None,
    seed: int = 0,
    *,
    download: bool = True,
) -> DatasetSplits:
    """Fashion-MNIST: 28x28 grayscale clothes, 10 balanced classes, as uint8 tensors N x 28 x 28.

    Test is the official 10,000-image test set; val (`n_val` images) is carved, stratified, from
    the official 60,000 training images. Before that, training images that are exact copies of a
    test image (or of an earlier training image) are dropped, so `train + val + dropped = 60,000`.
    `n_train` / `n_test` subsample train / test (stratified) for a quick run.

    Read from the Debian package `dataset-fashion-mnist` when installed; otherwise from the
    torchvision cache in `data_dir()`, downloading it there when `download` is true.
    """
    files, source = _fashion_mnist_files(download)
    x_tr, y_tr = _read_idx(files["train_x"]), _read_idx(files["train_y"])
    x_te, y_te = _read_idx(files["test_x"]), _read_idx(files["test_y"])
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise AssetCorruptError(f"Fashion-MNIST image and label counts differ in {source}")

    test_keys = {row.tobytes() for row in x_te}
    keys = [row.tobytes() for row in x_tr]
    keep = dedupe_indices(keys, y_tr)
    keep = np.array([i for i in keep if keys[i] not in test_keys], dtype=np.int64)
    dropped = len(x_tr) - len(keep)
    pool = Split(x_tr[keep], y_tr[keep])

    if not 0 < n_val < len(pool):
        raise ValueError(f"n_val must be between 1 and {len(pool) - 1}, got {n_val}")
    val_idx, train_idx = stratified_split(pool.y, [n_val], seed=seed)
    train, val, test = pool.subset(train_idx), pool.subset(val_idx), Split(x_te, y_te)
    for name, n, split in (("n_train", n_train, train), ("n_test", n_test, test)):
        if n is not None and not 0 < n <= len(split):
            raise ValueError(f"{name} must be between 1 and {len(split)}, got {n}")
    if n_train is not None:
        train = train.subset(stratified_split(train.y, [n_train], seed=seed)[0])
    if n_test is not None:
        test = test.subset(stratified_split(test.y, [n_test], seed=seed)[0])
    return DatasetSplits(
        train, val, test, list(FASHION_MNIST_CLASSES), "Fashion-MNIST", dropped, source
    )


def load_digits_splits(
    seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.15
) -> DatasetSplits:
    """scikit-learn's 1,797 handwritten digits (8x8), stratified train / val / test.

    The original pixel values 0..16 are rescaled to uint8 0..255 so every image dataset shares
    one format. The set has no exact duplicates (checked; any would be dropped).
    """
    asset_path("digits")
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images * (255 / 16)).astype(np.uint8)
    keep = dedupe_indices([row.tobytes() for row in x], digits.target)
    train, val, test = split_fractions(
        Split(x[keep], digits.target[keep]), val_frac, test_frac, seed
    )
    classes = [str(c) for c in digits.target_names]
    return DatasetSplits(train, val, test, classes, "digits", len(x) - len(keep), "scikit-learn")


_PHOTOS = {  # name -> (package, file inside it); the same files skimage.data / sklearn return
    "coffee": ("skimage", "data/coffee.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}


def load_photos() -> dict[str, np.ndarray]:
    """Six real photos bundled in the scikit-image and scikit-learn wheels, as H x W x 3 uint8.

    coffee, chelsea (a cat), rocket, astronaut (skimage.data) and china, flower
    (sklearn `load_sample_image`). Read straight from the package files with Pillow, which gives
    the same arrays without importing either library. Other `skimage.data` images are fetched
    at run time and fail offline, so they are not used.
    """
    from PIL import Image

    asset_path("photos")
    photos = {}
    for name, (module, rel) in _PHOTOS.items():
        spec = importlib.util.find_spec(module)
        path = Path(next(iter(spec.submodule_search_locations))) / rel if spec else None
        if path is None or not path.exists():
            pip = {"skimage": "scikit-image", "sklearn": "scikit-learn"}[module]
            raise AssetMissingError(
                f"photo {name!r} not found. Install it with:  pip install {pip}"
            )
        with Image.open(path) as im:
            photos[name] = np.array(im.convert("RGB"))
    return photos


# ---------------------------------------------------------------------------------------------
# Image preparation for a pre-trained network


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

    Items are `(float image C x size x size, label)`, exactly `prepare_images(x[i:i+1], ...)[0]`.
    A DataLoader asks for a whole batch at once through `__getitems__`, so a batch is resized in
    one call; the dataset itself holds only the uint8 images (`nbytes` says how many bytes).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        size: int | tuple[int, int] | None,
        *,
        rgb: bool = True,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
    ):
        if images.dtype != torch.uint8:
            raise TypeError(f"ImageDataset stores uint8 images, got {images.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.size, self.rgb, self.mean, self.std = size, rgb, mean, std
        prepare_images(images[:1], size, rgb=rgb, mean=mean, std=std)  # bad arguments fail now

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes held by the dataset (uint8 images + int64 labels)."""
        return self.images.nbytes + self.labels.nbytes

    def prepare(self, idx: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The float batch for positions `idx` (N x C x size x size)."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        kw = dict(rgb=self.rgb, mean=self.mean, std=self.std)
        return prepare_images(self.images[idx], self.size, **kw)

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
) -> ImageDataset:
    """An `ImageDataset` for a DataLoader: the split's uint8 images, prepared per batch.

    Memory stays that of the uint8 images at their native size (10,000 Fashion-MNIST images:
    8 MB), whatever `size`; the float copy at `size` px exists one batch at a time.
    """
    if not isinstance(split.x, torch.Tensor):
        raise TypeError(
            "image_dataset needs an image split (x a uint8 tensor); for text use tokenize"
        )
    return ImageDataset(split.x, split.y, size, rgb=rgb, mean=mean, std=std)
