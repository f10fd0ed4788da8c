"""Writing files you cannot lose: a temporary file, fsync, then an atomic rename.

Every file coursekit writes that a later run reads back (checkpoints, adapter files, cached
features, adapter configs) goes through `atomic_write`: the bytes go to a hidden temporary file
next to the target, are flushed to disk, and the temporary file is renamed over the target in
one step. An interrupt at any moment leaves either the old file or the new one, never half of
one. A save that was killed outright (SIGKILL, a crashed kernel) cannot clean up after itself,
so the next save of the same file removes the temporary files such a save left behind.
Used by `checkpoint` (lessons 00-06, every `fit` with `checkpoint_dir`), `lora` (lesson 05) and
`features` (lessons 02, 03, 06).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "temp_path"]


def temp_path(path: Path, pid: int | None = None) -> Path:
    """The temporary file a process writes before renaming it to `path`: `.NAME.tmp-PID`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid() if pid is None else pid}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (or cannot tell): leave its file alone
    return True


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files of `path` left by saves whose process no longer runs."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (directories cannot be opened on Windows: skipped there)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to write a temporary file, fsync it, and rename it to `path`.

    `write` gets the temporary path and writes the whole file there (e.g.
    `lambda tmp: save_file(tensors, str(tmp))` or `lambda tmp: tmp.write_text(text)`). If it
    raises (or the process is interrupted), `path` keeps its previous content and the temporary
    file is removed. The file gets the usual permissions (0o666 minus the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path
