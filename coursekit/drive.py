"""Surviving a Colab disconnect: checkpoints in Google Drive, resumed automatically.

A free Colab runtime disconnects when idle or after some hours, and everything outside Google
Drive is lost with it. `fit(..., checkpoint_dir=folder)` writes `last.safetensors` after every
epoch and resumes from it when called again with the same folder, so the only question is *which*
folder: `checkpoint_folder("04", "k8")` answers it. On Colab with Drive mounted
(`from google.colab import drive; drive.mount("/content/drive")`) it is a folder in your Drive,
so a disconnect costs at most one epoch; elsewhere it is `data/checkpoints/` next to the course.
Lesson 00 shows the resume; any lesson's `fit` takes the folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .datasets import data_dir
from .device import on_colab

__all__ = ["DRIVE_ROOT", "checkpoint_folder"]

DRIVE_ROOT = Path("/content/drive/MyDrive")


def checkpoint_folder(lesson: str, run: str = "run", *, create: bool = True) -> Path:
    """The folder for one training run's checkpoints: `<root>/coursekit-checkpoints/<lesson>/<run>`.

    `<root>` is `$COURSEKIT_CHECKPOINTS` if set; else your Google Drive on Colab when it is
    mounted; else `data_dir()` (the course's data folder). The same (lesson, run) always gives
    the same folder, which is what lets `fit` find its checkpoint again after a restart.
    """
    for label, value in (("lesson", lesson), ("run", run)):
        if not re.fullmatch(r"[A-Za-z0-9_.=-]{1,64}", value):
            raise ValueError(
                f"{label} {value!r} must be 1-64 letters, digits or _ . = - (it names a folder)"
            )
    env = os.environ.get("COURSEKIT_CHECKPOINTS")
    if env:
        root = Path(env).expanduser()
    elif on_colab() and DRIVE_ROOT.is_dir():
        root = DRIVE_ROOT
    else:
        root = data_dir()
    folder = root / "coursekit-checkpoints" / lesson / run
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
