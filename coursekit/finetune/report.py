"""Look at the data before training on it: the data report of lesson 07.

Most surprises of a fine-tuning run were visible in the data first: a class with ten times fewer
examples than another (accuracy then hides that the model never predicts it), images of mixed
sizes or colour modes (phone photos lie on their side until their EXIF orientation is applied;
16-bit scans must be scaled to 8 bits), texts much longer than the model reads (the end is cut
off), or the same example in train and test (test accuracy then measures memory). `data_report`
prints all of it, and says how each image was read.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .pixels import CONVERSIONS, HIGH_BIT_MODES, OTHER_MODE
from .userdata import UserData, problem_lines

__all__ = ["data_report", "imbalance"]

ORIENTATIONS = {  # EXIF orientation -> what undoes it (2, 4, 5, 7 also mirror)
    2: "mirrored",
    3: "turned 180",
    4: "flipped",
    5: "mirrored and turned",
    6: "turned 90 clockwise",
    7: "mirrored and turned",
    8: "turned 90 anticlockwise",
}


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


def _high_bit(mode: str) -> bool:
    return mode in HIGH_BIT_MODES or mode.endswith(";16")


def _image_lines(data: UserData, limit: int | None) -> list[str]:
    sizes, info = data.info["size"], data.info
    widths, heights = np.array([s[0] for s in sizes]), np.array([s[1] for s in sizes])
    common = Counter(sizes).most_common(1)[0]
    lines = [
        f"image sizes (width x height, as displayed): {widths.min()}x{heights.min()} smallest, "
        f"{widths.max()}x{heights.max()} largest, most common {common[0][0]}x{common[0][1]} "
        f"({common[1]} images)",
        "colour modes, each read as 8-bit RGB:",
    ]
    lines += [
        f"  {mode:<8} {n:>7,}  {CONVERSIONS.get(mode, OTHER_MODE)}"
        for mode, n in Counter(info["mode"]).most_common()
    ]
    turned = Counter(o for o in info["orientation"] if o != 1)
    if turned:
        how = ", ".join(
            f"{ORIENTATIONS.get(o, f'tag {o}')}: {n}" for o, n in sorted(turned.items())
        )
        lines.append(f"turned upright by their EXIF orientation: {sum(turned.values())} ({how})")
    read = list(zip(data.items, info["mode"], info["conversion"], strict=True))
    high = [(p, f"{m}, {how or CONVERSIONS[m]}") for p, m, how in read if _high_bit(m)]
    fallback = [(p, f"{m}, {how}") for p, m, how in read if how and not _high_bit(m)]
    for title, listed in (
        ("high bit depth, scaled to 8 bits", high),
        ("read with a fallback", fallback),
    ):
        if listed:
            lines.append(f"{title}: {len(listed)}")
            lines += problem_lines(listed, limit)
    return lines


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


def data_report(
    data: UserData,
    tokenizer: Any = None,
    max_length: int | None = None,
    limit: int | None = 20,
    more_in: str | Path = "data.skipped",
) -> str:
    """A short text report: how columns were picked, counts per class and split, imbalance,
    image sizes, colour modes (each with its conversion to RGB), EXIF rotations and high-bit-depth
    conversions, or text lengths in tokens (with `tokenizer`), duplicates across splits, and
    what was skipped: the first `limit` of each list (None: all), the rest in `more_in`."""
    kind = "images" if data.kind == "image" else "texts"
    lines = [
        *data.notes,
        f"{data.source}: {len(data.items):,} {kind}, {data.num_classes} classes",
        *_class_table(data),
        f"imbalance (largest / smallest class in train): {imbalance(data):.1f}x",
    ]
    if data.kind == "image":
        lines += _image_lines(data, limit)
    elif tokenizer is not None:
        lines += _text_lines(data, tokenizer, max_length)
    lines.append(f"duplicates across splits: {duplicates_across_splits(data)}")
    lines.append(f"skipped: {len(data.skipped)}")
    lines += problem_lines(data.skipped, limit)
    if limit is not None and len(data.skipped) > limit:
        lines[-1] += f" (all listed in {more_in})"
    return "\n".join(lines)
