"""Image folders as people keep them: each file decoded once, every problem found in one pass.

`load_data(folder)` reads a folder with one sub-folder per class (torchvision's `ImageFolder`
layout) through `load_image_folder`:

- files that are not images (`notes.txt`, `Thumbs.db`, `.DS_Store`, a hidden folder) are left
  out and listed with the reason;
- every image is decoded **once**, by threads on all the cores (Pillow's decoders release
  Python's lock, so threads decode in parallel). That one decode checks that the file opens,
  gives the facts of the data report (size as displayed, colour mode, EXIF orientation, how it
  became 8-bit RGB, see `pixels.py`), and, given the `image_size`, the resized uint8 copy that
  training reads: a run decodes each photo once, not once per epoch;
- every unreadable file is collected in that pass: the error lists them together (the first 20
  in the message, all of them in `DataError.problems`), and `skip_bad=True` leaves exactly those
  out, listed in `data.skipped`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from coursekit.runtime.progress import progress_bar

from .pixels import read_pixels
from .userdata import DataError, UserData, option, problem_lines

__all__ = [
    "IMAGE_SUFFIXES",
    "check_images",
    "hidden_or_system",
    "image_pixels",
    "load_image_folder",
    "not_an_image",
    "read_image",
    "take_pixels",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SYSTEM_FILES = {"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"}
CHECK_SIZE = 8  # pixels per side of a check that keeps no copy: JPEGs decode at 1/8 scale
NEEDS_A_PLUGIN = {".heic": "pillow-heif", ".heif": "pillow-heif", ".avif": "pillow-avif-plugin"}


def workers() -> int:
    """Threads for decoding: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _readable_suffixes() -> tuple[str, ...]:
    """IMAGE_SUFFIXES, plus HEIC/AVIF when a Pillow plugin that opens them is installed."""
    from PIL import Image

    known = Image.registered_extensions()
    extra = tuple(s for s in NEEDS_A_PLUGIN if known.get(s) in Image.OPEN)
    return IMAGE_SUFFIXES + extra


def hidden_or_system(path: Path, under: Path) -> str:
    """Why the file `path` (inside the folder `under`) is nobody's data: hidden, inside a hidden
    folder, or a file the operating system writes (Thumbs.db, desktop.ini); '' otherwise."""
    parts = path.relative_to(under).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return "a hidden file" if parts[-1].startswith(".") else "inside a hidden folder"
    if path.name.lower() in SYSTEM_FILES:
        return "a system file"
    return ""


def not_an_image(path: Path, under: Path) -> str:
    """Why the file `path` (inside the folder `under`) is no image to read, or '' if it is one."""
    junk = hidden_or_system(path, under)
    if junk:
        return f"{junk}, not an image" if junk == "a system file" else junk
    suffix = path.suffix.lower()
    if suffix in _readable_suffixes():
        return ""
    if suffix in NEEDS_A_PLUGIN:
        return (
            f"a {suffix[1:].upper()} photo: Pillow reads it only with the plugin "
            f"`{NEEDS_A_PLUGIN[suffix]}` (pip install {NEEDS_A_PLUGIN[suffix]}), or save it as JPEG"
        )
    return f"not an image ({', '.join(IMAGE_SUFFIXES)})"


def _check_one(path: str | Path, size: int | None) -> tuple[np.ndarray | None, dict | None, str]:
    """(pixels, facts with the content key, '') for an image that decodes, else (None, None,
    why). Any failure is the file's problem: one bad file must never stop the pass."""
    from PIL import UnidentifiedImageError

    try:
        raw = Path(path).read_bytes()
        pixels, facts = read_pixels(io.BytesIO(raw), size)
    except UnidentifiedImageError:
        what = "an empty file" if not raw else "not an image Pillow can identify"
        return None, None, f"cannot read this image ({what})"
    except Exception as err:  # noqa: BLE001 - Pillow's plugins raise many kinds
        return None, None, f"cannot read this image ({str(err) or type(err).__name__})"
    facts["key"] = hashlib.sha1(raw).hexdigest()
    return pixels, facts, ""


def check_images(
    paths: Sequence[str | Path], size: int | None = None, desc: str = "reading images"
) -> tuple[list[dict | None], list[str], np.ndarray | None]:
    """Decode every file once, in parallel: (facts or None, problem or '') per file, and with
    `size` the uint8 [N, size, size, 3] model inputs (zeros where a file failed). Without
    `size`, JPEGs are checked at their smallest decoding scale (the whole file is still read
    and decoded, so a damaged one fails just the same)."""
    out = np.zeros((len(paths), size, size, 3), np.uint8) if size is not None else None
    facts: list[dict | None] = [None] * len(paths)
    problems = [""] * len(paths)

    def one(i: int) -> None:
        pixels, facts[i], problems[i] = _check_one(paths[i], size or CHECK_SIZE)
        if out is not None and pixels is not None:
            out[i] = pixels

    bar = progress_bar(len(paths), desc=desc, leave=False, disable=len(paths) < 500)
    with ThreadPoolExecutor(min(workers(), max(1, len(paths)))) as pool:
        for _ in pool.map(one, range(len(paths))):
            bar.update()
    bar.close()
    return facts, problems, out


def read_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """One image file -> uint8 RGB array as people see it (`pixels.read_pixels`): upright,
    8-bit; with `size`, the centre square resized to size x size, as training and the exported
    model both expect. Raises DataError naming the file if it does not open."""
    pixels, _, problem = _check_one(path, size)
    if problem:
        raise DataError(
            f"{path}: {problem}. Delete or replace the file, or pass "
            f"{option('skip_bad', True)} to leave it out (it will be listed)."
        )
    return pixels


def image_pixels(paths: Sequence[str | Path], size: int) -> np.ndarray:
    """uint8 [N, size, size, 3] of the files, decoded in parallel; a DataError lists every file
    that does not open."""
    _, problems, pixels = check_images(paths, size)
    bad = [(str(p), why) for p, why in zip(paths, problems, strict=True) if why]
    if bad:
        raise _unreadable(bad, len(paths))
    return pixels


def take_pixels(data: UserData, size: int) -> np.ndarray:
    """The model inputs of every image in `data`: the copy its check kept (handed over, not
    kept twice), or decoded now."""
    kept = data.pixels.pop(size, None)
    return kept if kept is not None else image_pixels(data.items, size)


def _unreadable(bad: list[tuple[str, str]], total: int, where: str = "") -> DataError:
    n, them = len(bad), "them" if len(bad) > 1 else "it"
    leave = f"exactly these {n}" if n > 1 else "it"
    return DataError(
        "\n".join(
            [
                f"{where}{': ' if where else ''}{n} of {total} images cannot be read (all "
                f"{total} checked in one pass):",
                *problem_lines(bad),
                f"Delete or replace {them}, or pass {option('skip_bad', True)} to leave {leave} "
                "out (listed with the skipped files in the data report).",
            ]
        ),
        bad,
    )


def _scan(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Class folders (sorted) and what at the top level is not one."""
    class_dirs, skipped = [], []
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX":
            class_dirs.append(p)
        else:
            skipped.append((str(p), "a file, not a class folder" if p.is_file() else "hidden"))
    if len(class_dirs) < 2:
        raise DataError(
            f"{root}: found {len(class_dirs)} class folder(s); an image folder needs one "
            "sub-folder per class with at least two classes, e.g. data/cat/1.jpg, data/dog/2.jpg."
        )
    return class_dirs, [(w, "a hidden folder" if why == "hidden" else why) for w, why in skipped]


def load_image_folder(
    root: Path, skip_bad: bool = False, image_size: int | None = None
) -> UserData:
    """An `ImageFolder` tree -> UserData, checked in one parallel pass (see the module doc).
    With `image_size`, the resized copies the check made are kept in `data.pixels`."""
    class_dirs, skipped = _scan(root)
    paths, labels = [], []
    for label, folder in enumerate(class_dirs):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            why = not_an_image(path, folder)
            if why:
                skipped.append((str(path), why))
            else:
                paths.append(path)
                labels.append(label)
    facts, problems, pixels = check_images(paths, image_size, desc="checking images")
    bad = [(str(p), why) for p, why in zip(paths, problems, strict=True) if why]
    if bad and not skip_bad:
        raise _unreadable(bad, len(paths), str(root))
    keep = [i for i, why in enumerate(problems) if not why]
    found = np.bincount(np.asarray(labels, np.int64)[keep], minlength=len(class_dirs))
    for folder, n in zip(class_dirs, found, strict=True):
        if n == 0:
            raise DataError(
                f"{folder}: the class folder '{folder.name}' holds no readable images. Add "
                f"images to it ({', '.join(IMAGE_SUFFIXES)}) or remove the folder."
            )
    info: dict[str, list[Any]] = {
        k: [facts[i][k] for i in keep]
        for k in ("width", "height", "mode", "orientation", "conversion", "key")
    }
    info["size"] = list(zip(info.pop("width"), info.pop("height"), strict=True))
    return UserData(
        "image",
        [str(paths[i]) for i in keep],
        np.asarray(labels, np.int64)[keep],
        [p.name for p in class_dirs],
        str(root),
        skipped=skipped + bad,
        info=info,
        pixels={} if pixels is None else {image_size: pixels if not bad else pixels[keep]},
    )
