"""Your own data, as people keep it: a folder of images per class, or a table of texts.

Lesson 07 starts here. `load_data(source)` reads

- a folder with one sub-folder per class (torchvision's `ImageFolder` layout):
  `photos/cat/1.jpg`, `photos/dog/7.png`, ... (class names are the folder names, sorted);
- a CSV, TSV, JSONL or JSON file with a text column and a label column, through Hugging Face
  `datasets` (so large files stream from disk the same way);
- a `datasets.Dataset` you already have.

Images are read as people see them (EXIF orientation applied, 16-bit scans scaled by their range:
`pixels.py`), each decoded once, in parallel, with every unreadable file found in that one pass
(`images.py`). A table's text and label columns are found by name, else by content (`columns.py`).

Every problem gets an error that names the file and says what to do (`DataError`): images that
do not open (all of them at once), an empty class folder, a column that does not exist (with the
closest names), a class too small to split, labels that mix numbers and names, a file that is not
UTF-8. Nothing is dropped silently: hidden and system files, rows without a text or label and
exact duplicates are listed in `data.skipped` with the reason. Then the examples are split
train / validation / test, stratified (each split keeps the class proportions) and from a fixed
seed, so a rerun gets the same split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .images import load_image_folder
from .tables import from_table, read_table
from .userdata import DataError, UserData

__all__ = ["load_data", "split_data"]


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
    if len(keep) < len(data.items):
        _subset(data, np.asarray(keep, np.int64))


def _short(item: Any) -> str:
    text = str(item)
    return text if len(text) <= 80 else text[:77] + "..."


def _subset(data: UserData, keep: np.ndarray) -> None:
    data.items = [data.items[i] for i in keep]
    data.labels = data.labels[keep]
    data.info = {k: [v[i] for i in keep] for k, v in data.info.items()}
    data.pixels = {size: x[keep] for size, x in data.pixels.items()}


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
    image_size: int | None = None,
    dedupe: bool = True,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
) -> UserData:
    """Read an image folder, a CSV/TSV/JSONL/JSON file or a `datasets.Dataset`; split it.

    text_column / label_column: default to a column with a usual name ("text", "label", ...),
        else to the column its content makes plain (`columns.py`; the choice is printed).
    encoding: of a text file (UTF-8 by default; a file that is not raises a DataError).
    skip_bad: leave unreadable images out (listed in `skipped`) instead of raising an error
        that lists them all.
    image_size: also keep each image's resized uint8 copy (`data.pixels`), from the decode
        that checks it, so that training does not decode it again.
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
            data = load_image_folder(path, skip_bad, image_size)
        else:
            named = text_column is not None or label_column is not None
            table, notes = read_table(path, encoding, check_header=not named)
            data = from_table(table, str(path), text_column, label_column, notes)
    for note in data.notes:
        print(note)
    if dedupe:
        _drop_duplicates(data)
    split_data(data, val_frac, test_frac, seed)
    return data
