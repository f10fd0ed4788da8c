"""Look at the data before training on it: the data report of lesson 07.

Most surprises of a fine-tuning run were visible in the data first: a class with ten times fewer
examples than another (accuracy then hides that the model never predicts it), images of mixed
sizes or colour modes, texts much longer than the model reads (the end is cut off), or the same
example in train and test (test accuracy then measures memory). `data_report` prints all of it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .userdata import UserData

__all__ = ["data_report", "imbalance"]


def imbalance(data: UserData, split: str = "train") -> float:
    """Largest class count divided by the smallest, in `split` (1.0 = balanced)."""
    counts = np.bincount(data.labels[data.splits[split]], minlength=data.num_classes)
    return float(counts.max() / max(counts.min(), 1))


def _class_table(data: UserData) -> list[str]:
    width = max(5, *(len(c) for c in data.classes))
    lines = [f"{'class':<{width}}  {'train':>7}  {'val':>7}  {'test':>7}"]
    counts = {
        k: np.bincount(data.labels[idx], minlength=data.num_classes)
        for k, idx in data.splits.items()
    }
    for c, name in enumerate(data.classes):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{counts[k][c]:>7,}" for k in counts))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{len(v):>7,}" for v in data.splits.values()))
    return lines


def _image_lines(data: UserData) -> list[str]:
    sizes = data.info["size"]
    widths, heights = np.array([s[0] for s in sizes]), np.array([s[1] for s in sizes])
    modes = ", ".join(f"{m} {n}" for m, n in Counter(data.info["mode"]).most_common())
    common = Counter(sizes).most_common(1)[0]
    return [
        f"image sizes (width x height): {widths.min()}x{heights.min()} smallest, "
        f"{widths.max()}x{heights.max()} largest, most common {common[0][0]}x{common[0][1]} "
        f"({common[1]} images)",
        f"colour modes: {modes} (all are converted to RGB for the model)",
    ]


def _text_lines(data: UserData, tokenizer: Any, max_length: int | None) -> list[str]:
    lengths = np.array([len(ids) for ids in tokenizer(list(data.items))["input_ids"]])
    line = (
        f"text length in tokens: median {int(np.median(lengths))}, 95th percentile "
        f"{int(np.percentile(lengths, 95))}, longest {lengths.max()}"
    )
    if max_length is not None:
        cut = float((lengths > max_length).mean())
        line += f"; {cut:.1%} are longer than max_length={max_length} and will be cut"
    return [line]


def duplicates_across_splits(data: UserData) -> int:
    """Examples whose exact copy (same file bytes or same text) sits in another split."""
    keys = data.info["key"]
    owner: dict[Any, set[str]] = {}
    for split, idx in data.splits.items():
        for i in idx:
            owner.setdefault(keys[i], set()).add(split)
    return sum(1 for splits in owner.values() if len(splits) > 1)


def data_report(data: UserData, tokenizer: Any = None, max_length: int | None = None) -> str:
    """A short text report: counts per class and split, imbalance, image sizes and colour
    modes or text lengths in tokens (with `tokenizer`), duplicates across splits, skipped items."""
    kind = "images" if data.kind == "image" else "texts"
    lines = [
        f"{data.source}: {len(data.items):,} {kind}, {data.num_classes} classes",
        *_class_table(data),
        f"imbalance (largest / smallest class in train): {imbalance(data):.1f}x",
    ]
    if data.kind == "image":
        lines += _image_lines(data)
    elif tokenizer is not None:
        lines += _text_lines(data, tokenizer, max_length)
    lines.append(f"duplicates across splits: {duplicates_across_splits(data)}")
    lines.append(f"skipped: {len(data.skipped)}")
    lines += [f"  {what}: {why}" for what, why in data.skipped[:20]]
    if len(data.skipped) > 20:
        lines.append(f"  ... and {len(data.skipped) - 20} more (see data.skipped)")
    return "\n".join(lines)
