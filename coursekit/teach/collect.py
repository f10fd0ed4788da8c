"""Find what a class handed in: one submission per notebook, its student, and its lesson.

Folders as they come out of an LMS or a zip: one folder per student (`subs/alice/02_x.ipynb`) or
loose files (the file name is the student). `__MACOSX/` and hidden files are skipped; names
that are not valid UTF-8, very long or full of odd characters become safe, distinct report
names; the lesson is read from the notebook's metadata (the build writes it), else from the
file name, which may be Colab's "Copy of 03_head_replacement.ipynb" or a browser's "(1)" copy.
Everything is read into memory here, before any submission's code runs. Used by `teach.grade`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .notebooks import NotebookFormatError, read_notebook

__all__ = ["Submission", "collect", "lesson_of_name", "safe_name"]

MAX_NOTEBOOK_MB = 100
LESSON = re.compile(r"(?:^|[\s_-])(\d\d)_[^/]*\.ipynb$")


@dataclass
class Submission:
    """One handed-in notebook, read: student, path, the notebook (or why not), its lesson."""

    student: str
    path: Path
    nb: Any = None
    error: str = ""
    lesson: str | None = None
    source_name: str | None = None


def safe_name(raw: str, limit: int = 60) -> str:
    """A printable, file-name-safe version of `raw`; long names keep a hash to stay distinct."""
    text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    clean = re.sub(r"[^\w.@+-]+", "_", text).strip("._") or "student"
    if clean != text or len(clean) > limit:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        clean = f"{clean[: limit - 9]}-{digest}"
    return clean


def lesson_of_name(name: str) -> str | None:
    """The lesson of "03_head.ipynb", "Copy of 03_head.ipynb" or "03_head (1).ipynb"; else None."""
    name = re.sub(r"\s*\(\d+\)(?=\.ipynb$)", "", name)
    match = LESSON.search(name.removeprefix("Copy of "))
    return match.group(1) if match else None


def _skipped(rel: Path) -> bool:
    return any(p.startswith((".", "__MACOSX")) or p == ".ipynb_checkpoints" for p in rel.parts)


def _found(paths: list[Path]) -> list[tuple[str, Path]]:
    found = []
    for p in paths:
        if not p.is_dir():
            found.append((p.stem, p))
            continue
        for nb in sorted(p.rglob("*.ipynb")):
            rel = nb.relative_to(p)
            if not _skipped(rel) and nb.is_file():
                found.append((rel.parts[0] if len(rel.parts) > 1 else nb.stem, nb))
    return found


def _read(sub: Submission) -> None:
    try:
        if sub.path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
            raise NotebookFormatError(f"larger than {MAX_NOTEBOOK_MB} MB")
        sub.nb = read_notebook(sub.path)
    except (OSError, NotebookFormatError) as err:
        sub.error = str(err).encode("utf-8", "replace").decode("utf-8")
        return
    meta = sub.nb.metadata.get("coursekit", {})
    if isinstance(meta, dict) and isinstance(meta.get("lesson"), str):
        sub.lesson, sub.source_name = meta["lesson"], meta.get("source")


def collect(paths: list[Path]) -> list[Submission]:
    """Every submission under `paths`, read, with distinct safe student names."""
    subs, seen = [], set()
    for raw, path in _found(paths):
        sub = Submission(safe_name(raw), path)
        _read(sub)
        sub.lesson = sub.lesson or lesson_of_name(path.name)
        key, n = sub.source_name or sub.lesson or path.name, 1
        while (sub.student, key) in seen:  # two copies of one lesson: both kept, both reported
            n += 1
            sub.student = f"{safe_name(raw)}-{n}"
        seen.add((sub.student, key))
        subs.append(sub)
    return subs
