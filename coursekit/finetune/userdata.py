"""What lesson 07's loaders produce: `UserData` (examples, labels, classes, split, what was
skipped) and `DataError`, the error for bad input that names the file and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DataError", "UserData"]


class DataError(ValueError):
    """Bad input data: the message names the file and says how to fix it."""


@dataclass
class UserData:
    """Examples, labels, class names and a stratified split of a learner's own data.

    kind: "image" (`items` are file paths) or "text" (`items` are strings).
    labels: int64 array, `classes[labels[i]]` is the name of example i's class.
    splits: {"train": positions, "val": ..., "test": ...} into `items`.
    skipped: (what, why) for every file or row that was left out.
    info: per-example facts for the report (image sizes and colour modes).
    """

    kind: str
    items: list[Any]
    labels: np.ndarray
    classes: list[str]
    source: str
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, list] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split_items(self, name: str) -> tuple[list[Any], np.ndarray]:
        """(items, labels) of one split."""
        idx = self.splits[name]
        return [self.items[i] for i in idx], self.labels[idx]
