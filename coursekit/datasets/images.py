"""Image datasets: Fashion-MNIST, scikit-learn digits and a few real photos.

Images are kept as uint8 tensors at their native size until a model needs them; `prepare.py`
turns them into model inputs, batch by batch.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from coursekit.runtime.assets import AssetCorruptError, AssetMissingError, asset_path

from .base import DatasetSplits, Split, data_dir, dedupe_indices, split_fractions, stratified_split

__all__ = [
    "FASHION_MNIST_CLASSES",
    "load_digits_splits",
    "load_fashion_mnist",
    "load_photos",
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
