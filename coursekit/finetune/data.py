"""Your own data, as people keep it: a folder of images per class, or a table of texts.

Lesson 07 starts here. `load_data(source)` reads

- a folder with one sub-folder per class (torchvision's `ImageFolder` layout):
  `photos/cat/1.jpg`, `photos/dog/7.png`, ... (class names are the folder names, sorted);
- a CSV, TSV, JSONL or JSON file with a text column and a label column, through Hugging Face
  `datasets` (so large files stream from disk the same way);
- a `datasets.Dataset` you already have.

Every problem gets an error that names the file and says what to do (`DataError`): an image that
does not open, an empty class folder, a column that does not exist (with the closest names), a
class too small to split, labels that mix numbers and names, a file that is not UTF-8. Nothing is
dropped silently: hidden files, rows without a text or label and exact duplicates are listed in
`data.skipped` with the reason. Then the examples are split train / validation / test, stratified
(each split keeps the class proportions) and from a fixed seed, so a rerun gets the same split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from .tables import from_table, read_table
from .userdata import DataError, UserData

__all__ = ["IMAGE_SUFFIXES", "load_data", "read_image", "split_data"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# --- images ------------------------------------------------------------------------------------


def read_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """One image file -> uint8 RGB array H x W x 3 (grey and RGBA converted); with `size`,
    the centre square cropped and resized to size x size (bilinear), as training and the
    exported model both expect. Raises DataError naming the file if it does not open."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{path}: cannot read this image ({err}). Delete or replace the file, "
            "or pass skip_bad=True to leave it out (it will be listed)."
        ) from err
    if size is not None:
        rgb = ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def _image_facts(path: Path) -> tuple[int, int, str, str]:
    """(width, height, colour mode, sha1 of the bytes) of an image that opens and decodes."""
    from PIL import Image

    read_image(path)  # decodes the whole file: truncated images fail here, not mid-training
    with Image.open(path) as im:
        width, height, mode = im.width, im.height, im.mode
    return width, height, mode, hashlib.sha1(path.read_bytes()).hexdigest()


def _load_folder(root: Path, skip_bad: bool) -> UserData:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    skipped = [
        (str(p), "a file, not a class folder" if p.is_file() else "a hidden folder")
        for p in sorted(root.iterdir())
        if p.is_file() or p.name.startswith(".")
    ]
    if len(class_dirs) < 2:
        raise DataError(
            f"{root}: found {len(class_dirs)} class folder(s); an image folder needs one "
            "sub-folder per class with at least two classes, e.g. data/cat/1.jpg, data/dog/2.jpg."
        )
    items, labels, keys, sizes, modes = [], [], [], [], []
    for label, folder in enumerate(class_dirs):
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        found = 0
        for path in files:
            if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((str(path), f"not an image ({', '.join(IMAGE_SUFFIXES)})"))
                continue
            try:
                width, height, mode, key = _image_facts(path)
            except DataError as err:
                if not skip_bad:
                    raise
                skipped.append((str(path), str(err).split(": ", 1)[1].split(". ")[0]))
                continue
            items.append(str(path))
            labels.append(label)
            keys.append(key)
            sizes.append((width, height))
            modes.append(mode)
            found += 1
        if found == 0:
            raise DataError(
                f"{folder}: the class folder '{folder.name}' holds no readable images. Add "
                f"images to it ({', '.join(IMAGE_SUFFIXES)}) or remove the folder."
            )
    data = UserData(
        "image",
        items,
        np.asarray(labels, np.int64),
        [p.name for p in class_dirs],
        str(root),
        skipped=skipped,
        info={"size": sizes, "mode": modes},
    )
    data.info["key"] = keys
    return data


# --- split -------------------------------------------------------------------------------------


def _drop_duplicates(data: UserData) -> None:
    """Keep the first copy of each exact duplicate (same file bytes or same text), list the rest;
    otherwise a test example could also sit in train and test accuracy would measure memory."""
    first: dict[str, int] = {}
    keep = []
    for i, key in enumerate(data.info["key"]):
        j = first.setdefault(key, i)
        if j == i:
            keep.append(i)
        else:
            data.skipped.append((_short(data.items[i]), f"duplicate of {_short(data.items[j])}"))
    _subset(data, np.asarray(keep, np.int64))


def _short(item: Any) -> str:
    text = str(item)
    return text if len(text) <= 80 else text[:77] + "..."


def _subset(data: UserData, keep: np.ndarray) -> None:
    data.items = [data.items[i] for i in keep]
    data.labels = data.labels[keep]
    data.info = {k: [v[i] for i in keep] for k, v in data.info.items()}


def split_data(data: UserData, val_frac: float, test_frac: float, seed: int) -> None:
    """Stratified train/val/test positions (each class's examples shuffled by `seed`, then
    `val_frac` and `test_frac` of them, at least one each, go to val and test)."""
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(
            f"need 0 < val_frac, test_frac and a sum below 1; got {val_frac}, {test_frac}"
        )
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c, name in enumerate(data.classes):
        pool = rng.permutation(np.flatnonzero(data.labels == c))
        n_test, n_val = max(1, round(test_frac * len(pool))), max(1, round(val_frac * len(pool)))
        if len(pool) < n_test + n_val + 1:
            raise DataError(
                f"{data.source}: class {name!r} has {len(pool)} example(s); it needs at least "
                f"{n_test + n_val + 1} to have one in each of train, validation and test. Add "
                "examples of this class, or remove the class."
            )
        parts["test"].append(pool[:n_test])
        parts["val"].append(pool[n_test : n_test + n_val])
        parts["train"].append(pool[n_test + n_val :])
    data.splits = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}


def load_data(
    source: Any,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    encoding: str = "utf-8",
    skip_bad: bool = False,
    dedupe: bool = True,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
) -> UserData:
    """Read an image folder, a CSV/TSV/JSONL/JSON file or a `datasets.Dataset`; split it.

    text_column / label_column: default to a column with a usual name ("text", "label", ...).
    encoding: of a text file (UTF-8 by default; a file that is not raises a DataError).
    skip_bad: leave unreadable images out (listed in `skipped`) instead of raising.
    dedupe: drop exact duplicates before splitting (listed in `skipped`).
    """
    if isinstance(source, UserData):
        return source
    if hasattr(source, "column_names") and hasattr(source, "features"):  # datasets.Dataset
        data = from_table(source, "the dataset", text_column, label_column)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{path}: no such file or folder.")
        if path.is_dir():
            data = _load_folder(path, skip_bad)
        else:
            data = from_table(read_table(path, encoding), str(path), text_column, label_column)
    if dedupe:
        _drop_duplicates(data)
    split_data(data, val_frac, test_frac, seed)
    return data
