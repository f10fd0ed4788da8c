"""Surviving a Colab disconnect: checkpoints in Google Drive, resumed automatically.

A free Colab runtime disconnects when idle or after some hours, and everything outside Google
Drive is lost with it. `fit(..., checkpoint_dir=folder)` writes `last.safetensors` after every
epoch and resumes from it when called again with the same folder, so the only question is *which*
folder: `checkpoint_folder("04", "k8")` answers it. On Colab with Drive mounted it is a folder in
your Drive, so a disconnect costs at most one epoch; elsewhere it is `data/coursekit-checkpoints/`
next to the course. Lesson 00 shows the resume.

The lessons' long training cells (04's depth sweep and discriminative rates, 05's strategies,
06's sweep through `run_strategies(..., checkpoint_dir=)`) checkpoint into `resumable(lesson, run)`:
in full mode that folder (and on Colab it first mounts your Drive, asking your permission once),
in quick mode None, since a run of minutes on a CPU has nothing worth resuming. Run the cell
again after a disconnect and each run picks up where it stopped; a finished run is restored
instead of retrained.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..datasets import data_dir
from ..training.limits import active_dry_run
from .config import settings
from .device import on_colab

__all__ = ["DRIVE_ROOT", "MOUNT_POINT", "checkpoint_folder", "mount", "resumable"]

MOUNT_POINT = Path("/content/drive")
DRIVE_ROOT = MOUNT_POINT / "MyDrive"
_mount_tried = False


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


def mount() -> bool:
    """Mount Google Drive on Colab (once; Colab asks for your permission). True if mounted.

    Declining, or running outside Colab, is fine: checkpoints then stay on the runtime's disk
    and a disconnect loses them. Nothing is raised."""
    global _mount_tried
    if DRIVE_ROOT.is_dir():
        return True
    if not on_colab() or _mount_tried:
        return False
    _mount_tried = True
    print("Full mode on Colab: mounting your Google Drive so a disconnect costs at most one epoch.")
    try:
        from google.colab import drive

        drive.mount(str(MOUNT_POINT))
    except Exception as err:  # declined, or no Drive: train on, without surviving a disconnect
        print(f"Drive not mounted ({err}); checkpoints stay on this runtime and go with it.")
        return False
    return DRIVE_ROOT.is_dir()


def resumable(lesson: str, run: str) -> Path | None:
    """`fit`'s `checkpoint_dir` for a long training run of `lesson`: a folder in full mode (in
    your Drive on Colab), None in quick mode. `run` names the run (other characters than
    letters, digits and _ . = - become "-"), e.g. f"k{k}-lr{lr:.0e}".

    In a dry run (`training.limits`: the full-mode check on a CPU) runs are cut short, so they are
    checkpointed only into a folder set with `$COURSEKIT_CHECKPOINTS` (the course runner gives
    each check a fresh one): a cut run must never be resumed as a real one.
    """
    if settings().mode != "full":
        return None
    if active_dry_run() is not None and not os.environ.get("COURSEKIT_CHECKPOINTS"):
        return None
    mount()
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "-", run).strip("-")[:64] or "run"
    return checkpoint_folder(lesson, f"{settings().mode}-{slug}"[:64])
