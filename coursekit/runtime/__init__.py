"""The runtime: where the course runs and what it may use there.

Everything here is plumbing a lesson needs before it trains anything: the run mode and its sizes,
the machine (device, precision, peak memory, seeds), the offline assets, files written atomically,
progress bars that work everywhere, and the two Colab concerns (where coursekit installs from;
checkpoints in Google Drive that survive a disconnect). Every lesson uses it through `ck.*`
(`ck.set_mode`, `ck.pick_device`, `ck.seed_everything`); lessons 05 and 06 resume their
sweeps through `ck.runtime.resumable`.

    config.py    run modes (quick/full) and the sizes each uses
    device.py    device choice, hardware description, precision policy, peak memory, seeding
    assets.py    where each offline asset lives, sha256 checks, install hints
    files.py     atomic_write: temp file, fsync, rename
    progress.py  progress bars for notebooks, terminals and CI logs
    colab.py     where coursekit installs from (repository and fixed ref), the Colab cells
    drive.py     surviving a Colab disconnect: checkpoints in Google Drive, resumed automatically
"""

from .assets import (
    ASSETS,
    Asset,
    AssetCorruptError,
    AssetMissingError,
    asset_path,
    asset_status,
    downloaded,
    sha256_of,
    verify_sha256,
)
from .colab import (
    KEEP,
    REF,
    REPOSITORY,
    WEIGHTS_PACKAGES,
    badge,
    badge_url,
    check_source,
    install_url,
    is_setup_cell,
    point_badges,
    point_links,
    repo_link,
    setup_cell,
)
from .config import MODES, Settings, get_mode, set_mode, settings, show_mode
from .device import (
    HardwareInfo,
    PeakMemory,
    PrecisionPolicy,
    adamw_kwargs,
    autocast,
    dataloader_kwargs,
    describe_hardware,
    on_colab,
    peak_memory,
    pick_device,
    precision_policy,
    prefer_channels_last,
    resolve_device,
    resolve_precision,
    seed_everything,
    warn_if_no_gpu,
)
from .drive import DRIVE_ROOT, MOUNT_POINT, checkpoint_folder, mount, resumable
from .files import atomic_write, temp_path
from .progress import in_notebook, progress_bar

__all__ = [
    "ASSETS",
    "Asset",
    "AssetCorruptError",
    "AssetMissingError",
    "DRIVE_ROOT",
    "HardwareInfo",
    "KEEP",
    "MODES",
    "MOUNT_POINT",
    "PeakMemory",
    "PrecisionPolicy",
    "REF",
    "REPOSITORY",
    "Settings",
    "WEIGHTS_PACKAGES",
    "adamw_kwargs",
    "asset_path",
    "asset_status",
    "atomic_write",
    "autocast",
    "badge",
    "badge_url",
    "check_source",
    "checkpoint_folder",
    "dataloader_kwargs",
    "describe_hardware",
    "downloaded",
    "get_mode",
    "in_notebook",
    "install_url",
    "is_setup_cell",
    "mount",
    "on_colab",
    "peak_memory",
    "pick_device",
    "point_badges",
    "point_links",
    "precision_policy",
    "prefer_channels_last",
    "progress_bar",
    "repo_link",
    "resolve_device",
    "resolve_precision",
    "resumable",
    "seed_everything",
    "set_mode",
    "settings",
    "setup_cell",
    "sha256_of",
    "show_mode",
    "temp_path",
    "verify_sha256",
    "warn_if_no_gpu",
]
