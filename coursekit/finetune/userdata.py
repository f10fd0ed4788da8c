"""What lesson 07's loaders produce: `UserData` (examples, labels, classes, split, what was
skipped) and `DataError`, the error for bad input that names the file and the fix.

A fix often means passing an argument, which a learner spells `skip_bad=True` in Python and
`--skip-bad` on the command line: messages name it with `option(...)`, and the `coursekit`
command turns on the command-line spelling with `command_line_messages()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DataError", "UserData", "command_line_messages", "option"]

_ON_COMMAND_LINE: ContextVar[bool] = ContextVar("coursekit_command_line", default=False)


@contextmanager
def command_line_messages() -> Iterator[None]:
    """Inside: `option(...)` names command-line flags instead of Python arguments."""
    token = _ON_COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _ON_COMMAND_LINE.reset(token)


def option(name: str, value: Any = ...) -> str:
    """How the user passes argument `name`: `skip_bad=True` or `text_column='review'` in Python,
    `--skip-bad` or `--text-column review` on the command line (`...`: any value)."""
    if _ON_COMMAND_LINE.get():
        flag = "--" + name.replace("_", "-")
        if value is True:
            return flag
        return f"{flag} {'NAME' if value is ... else value}"
    return f"{name}={'...' if value is ... else repr(value)}"


class DataError(ValueError):
    """Bad input data: the message names the file and says how to fix it.

    problems: every (file, what is wrong) that one pass over the data found, when there are
    several (the message shows the first 20)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])

    def listed_in(self, path: Path) -> DataError:
        """The same error, its full list of problems written to `path` and named in the message."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{what}\t{why}\n" for what, why in self.problems), "utf-8")
        return DataError(f"{self}\nAll {len(self.problems)} are listed in {path}.", self.problems)


def problem_lines(problems: list[tuple[str, str]], limit: int | None = 20) -> list[str]:
    """'  file: what is wrong' for the first `limit` problems, then how many more there are."""
    shown = problems if limit is None else problems[:limit]
    lines = [f"  {what}: {why}" for what, why in shown]
    if len(problems) > len(shown):
        lines.append(f"  ... and {len(problems) - len(shown)} more")
    return lines


@dataclass
class UserData:
    """Examples, labels, class names and a stratified split of a learner's own data.

    kind: "image" (`items` are file paths) or "text" (`items` are strings).
    labels: int64 array, `classes[labels[i]]` is the name of example i's class.
    splits: {"train": positions, "val": ..., "test": ...} into `items`.
    skipped: (what, why) for every file or row that was left out.
    info: per-example facts for the report (image sizes, colour modes, EXIF orientations,
        conversions; the content key that finds duplicates).
    notes: what loading decided for you (columns picked by their content), said in the report.
    pixels: {size: uint8 [N, size, size, 3]}: the images as the model reads them, kept by the
        check that decoded them (so training does not decode them again).
    """

    kind: str
    items: list[Any]
    labels: np.ndarray
    classes: list[str]
    source: str
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, list] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pixels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split_items(self, name: str) -> tuple[list[Any], np.ndarray]:
        """(items, labels) of one split."""
        idx = self.splits[name]
        return [self.items[i] for i in idx], self.labels[idx]
