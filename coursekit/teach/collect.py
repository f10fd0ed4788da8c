"""Find what a class handed in: one submission per notebook, its student, and its lesson.

Folders as they come out of an LMS or a zip: one folder per student (`subs/alice/02_x.ipynb`) or
loose files (the file name is the student). `__MACOSX/` and hidden files are skipped; names
that are not valid UTF-8, very long or full of odd characters become safe, distinct report
names; the lesson is read from the notebook's metadata (the build writes it), else from the
file name, which may be Colab's "Copy of 03_head_replacement.ipynb" or a browser's "(1)" copy.

Nothing a submission's files do can reach past them: a symbolic link, a hard link (a second name
for a file elsewhere) and anything that is not a regular file (a FIFO, a device) is refused with
its reason, never opened or followed (links inside a student's folder are not walked into
either). A file is read through one descriptor opened without following links, at most
`Caps.bytes` bytes; it is parsed in a separate short-lived process with a time and memory limit,
and refused beyond `Caps.cells` cells. Why a file was refused never quotes its contents.
Everything is read here, before any submission's code runs. Used by `teach.grade`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Caps", "Submission", "collect", "lesson_of_name", "safe_name"]

LESSON = re.compile(r"(?:^|[\s_-])(\d\d)_[^/]*\.ipynb$")
PARSER = r"""
import json, sys, resource
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
try:
    nb = json.loads(sys.stdin.buffer.read())
except (ValueError, RecursionError) as err:
    at = f" (line {err.lineno}, column {err.colno})" if hasattr(err, "lineno") else ""
    print("not valid JSON" + at)
    sys.exit()
cells = nb.get("cells") if isinstance(nb, dict) else None
if not isinstance(cells, list):
    print("not a notebook (no list of cells)")
elif len(cells) > int(sys.argv[1]):
    print(f"{len(cells):,} cells, more than the {int(sys.argv[1]):,} allowed")
else:
    print("ok")
"""


@dataclass(frozen=True)
class Caps:
    """What a submission file may be before it is even parsed."""

    bytes: int = 50 * 2**20
    cells: int = 5000
    parse_seconds: float = 30.0
    parse_memory: int = 4 * 2**30


@dataclass
class Submission:
    """One handed-in notebook, read: student, path, the notebook (or why not), its lesson."""

    student: str
    path: Path
    nb: Any = None
    error: str = ""
    refused: bool = False  # a link or special file: never opened
    lesson: str | None = None
    source_name: str | None = None


def _raw_bytes(raw: str) -> bytes:
    """A name's bytes: a file name's undecodable bytes back as they were, other surrogates kept."""
    try:
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return raw.encode("utf-8", "surrogatepass")


def safe_name(raw: str, limit: int = 60) -> str:
    """A printable, file-name-safe version of `raw`; long names keep a hash to stay distinct."""
    text = _raw_bytes(raw).decode("utf-8", "replace")
    clean = re.sub(r"[^\w.@+-]+", "_", text).strip("._") or "student"
    if clean != text or len(clean) > limit:
        digest = hashlib.sha256(_raw_bytes(raw)).hexdigest()[:8]
        clean = f"{clean[: limit - 9]}-{digest}"
    return clean


def lesson_of_name(name: str) -> str | None:
    """The lesson of "03_head.ipynb", "Copy of 03_head.ipynb" or "03_head (1).ipynb"; else None."""
    name = re.sub(r"\s*\(\d+\)(?=\.ipynb$)", "", name)
    match = LESSON.search(name.removeprefix("Copy of "))
    return match.group(1) if match else None


def _skipped(name: str) -> bool:
    return name.startswith((".", "__MACOSX")) or name == ".ipynb_checkpoints"


def _refusal(st: os.stat_result) -> str:
    """Why a file of this kind is not read ('' if it is a plain file)."""
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link, not a file: links are never followed; hand in the notebook itself"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a folder, FIFO, socket or device)"
    if st.st_nlink > 1:
        return "a hard link (the same file has another name elsewhere); hand in a copy"
    return ""


def _walk(folder: Path, student: str | None, found: list) -> None:
    """Notebooks under `folder`, without entering linked folders; links are listed to refuse."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if _skipped(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            _walk(path, student or entry.name, found)
        elif entry.name.endswith(".ipynb"):
            found.append((student or path.stem, path))


def _found(paths: list[Path]) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            _walk(p, None, found)
        else:
            found.append((p.stem, p))
    return found


def _read_bytes(path: Path, caps: Caps) -> bytes:
    """The file's bytes through one descriptor that follows no link; OSError/ValueError why not."""
    reason = _refusal(os.lstat(path))
    if reason:
        raise PermissionError(reason)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        reason = _refusal(st)
        if reason:
            raise PermissionError(reason)
        if st.st_size > caps.bytes:
            raise ValueError(f"larger than {caps.bytes / 2**20:.0f} MB")
        data = os.read(fd, caps.bytes + 1)
        while len(data) <= caps.bytes:
            more = os.read(fd, caps.bytes + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > caps.bytes:
            raise ValueError(f"larger than {caps.bytes / 2**20:.0f} MB")
        return data
    finally:
        os.close(fd)


def parse(data: bytes, caps: Caps) -> Any:
    """A validated notebook (outputs dropped) from `data`; ValueError says why not.

    A short-lived child process (standard library only, limited in time and memory) parses the
    JSON and counts the cells first, so a file built to be slow or huge to read costs the grader
    at most `caps.parse_seconds`; only then is it parsed and validated here.
    """
    import warnings

    import nbformat
    from nbformat.v4.rwbase import rejoin_lines

    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", PARSER, str(caps.cells), str(caps.parse_memory)],
            input=data,
            capture_output=True,
            timeout=caps.parse_seconds,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(f"took more than {caps.parse_seconds:.0f} s to read") from None
    verdict = done.stdout.decode("utf-8", "replace").strip()
    if verdict != "ok":
        raise ValueError(verdict or "could not be read (the reader ran out of memory)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.from_dict(json.loads(data))
            if nb.get("nbformat") != 4:
                nb = nbformat.convert(nb, 4)
            nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - the path of the problem, never the contents
        where = " > ".join(str(p) for p in list(getattr(err, "absolute_path", []))[:6])
        at = f" (at {where})" if where else ""
        raise ValueError("does not follow the notebook format" + at) from None
    nb = rejoin_lines(nb)
    for cell in nb.cells:
        cell.pop("outputs", None)
        cell.pop("attachments", None)
    return nb


def _read(sub: Submission, caps: Caps) -> None:
    try:
        sub.nb = parse(_read_bytes(sub.path, caps), caps)
    except PermissionError as err:
        sub.error, sub.refused = str(err), True
        return
    except (OSError, ValueError) as err:
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        sub.error = (
            f"not a valid Jupyter notebook ({detail}). Re-download it from Jupyter "
            "(File > Download) instead of renaming or editing the JSON."
        )
        return
    meta = sub.nb.metadata.get("coursekit", {})
    if isinstance(meta, dict) and isinstance(meta.get("lesson"), str):
        sub.lesson = meta["lesson"][:20]
        if isinstance(meta.get("source"), str):
            sub.source_name = meta["source"][:200]


def collect(paths: list[Path], caps: Caps | None = None) -> list[Submission]:
    """Every submission under `paths`, read (or refused), with distinct safe student names."""
    caps = caps or Caps()
    subs, seen = [], set()
    for raw, path in _found([Path(p) for p in paths]):
        sub = Submission(safe_name(raw), path)
        _read(sub, caps)
        sub.lesson = sub.lesson or lesson_of_name(path.name)
        key, n = sub.source_name or sub.lesson or path.name, 1
        while (sub.student, key) in seen:  # two copies of one lesson: both kept, both reported
            n += 1
            sub.student = f"{safe_name(raw)}-{n}"
        seen.add((sub.student, key))
        subs.append(sub)
    return subs
