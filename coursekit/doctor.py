"""`coursekit doctor`: is this environment ready for the course, and if not, what to do.

It catches library drift and missing assets before a learner meets them mid-notebook (lesson 00
runs it first): each library's version against the lowest one the course supports (a broken or
too-old library is "not ready", with the command that fixes it), a torchvision operator that
fails on a mismatched torch, the device and its precision policy, the run mode, and every course
asset as found offline, downloaded (into the data folder), will download (online), or missing
(with the command that installs it). Locations can be moved with COURSEKIT_DATA and
COURSEKIT_FASHION_MNIST_DIR.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import socket
import threading
from pathlib import Path

from packaging.version import InvalidVersion, Version

from .datasets import data_dir
from .runtime.assets import ASSETS, asset_status, downloaded
from .runtime.config import get_mode
from .runtime.device import describe_hardware, on_colab, pick_device, precision_policy

__all__ = ["LIBRARIES", "doctor", "library_status", "network_available"]

# import name -> (pip name, lowest version the course supports; keep equal to pyproject.toml)
LIBRARIES = {
    "torch": ("torch", "2.4"),
    "torchvision": ("torchvision", "0.19"),
    "transformers": ("transformers", "4.41"),
    "datasets": ("datasets", "2.18"),
    "peft": ("peft", "0.10"),
    "accelerate": ("accelerate", "0.26"),
    "safetensors": ("safetensors", "0.4.1"),
    "numpy": ("numpy", "1.24"),
    "matplotlib": ("matplotlib", "3.7"),
    "ipywidgets": ("ipywidgets", "7.6"),
    "tqdm": ("tqdm", "4.66"),
    "gguf": ("gguf", "0.11"),  # lesson 08 reads SmolLM2's GGUF file (0.10 needs sentencepiece)
}
# Models that only exist online: shown so learners know what needs internet.
_ONLINE_ONLY = {
    "resnet18": "torchvision ImageNet weights",
    "mobilenet_v3_small": "torchvision ImageNet weights",
    "<any Hugging Face id>": "transformers Auto classes",
}


def network_available(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """True if `host` answers on port 443 within `timeout` s (False when HF_HUB_OFFLINE=1)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    t.start()
    t.join(timeout + 1)
    return bool(result and result[0])


def library_status(name: str) -> tuple[str, str | None]:
    """(version or what is wrong, the fix or None) for the library imported as `name`."""
    pip_name, minimum = LIBRARIES.get(name, (name, None))
    try:
        version = getattr(importlib.import_module(name), "__version__", "installed")
    except Exception as err:  # a broken install fails in many ways; report, don't crash
        reason = f"BROKEN ({type(err).__name__}: {str(err).splitlines()[0][:80]})"
        return reason, f'pip install --force-reinstall "{pip_name}>={minimum or 0}"'
    try:
        too_old = minimum is not None and Version(version) < Version(minimum)
    except InvalidVersion:
        too_old = False
    if too_old:
        return f"{version} TOO OLD (needs >= {minimum})", f'pip install -U "{pip_name}>={minimum}"'
    return version, None


def _torchvision_ok() -> str:
    try:
        import torch
        import torchvision

        boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
        torchvision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)
        return "ok"
    except Exception as err:
        return (
            f"FAILS ({str(err).splitlines()[0][:80]}): torch and torchvision do not match; "
            "reinstall a matching pair, e.g. pip install -c constraints.txt torch torchvision"
        )


def _asset_status(name: str, online: bool, data_root: Path) -> str:
    """found | downloaded | will download | missing."""
    status = asset_status(name)
    if status == "missing" and downloaded(name, data_root):
        return "downloaded"
    if status == "missing" and ASSETS[name].online and online:
        return "will download"
    return status


def doctor(check_network: bool = True) -> dict:
    """Print a report of the environment and return it as a dict (for tests and notebooks).

    `report["ready"]` is True when every library imports at a supported version, torch and
    torchvision work together, and every asset is found, downloaded or (online) will download.
    On Colab the network is always checked (`check_network=False` only skips it elsewhere).
    """
    device = pick_device()
    hw = describe_hardware(device)
    online = network_available() if check_network or on_colab() else False
    libraries = {name: library_status(name) for name in LIBRARIES}
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {"coursekit": _coursekit_version()}
        | {name: v for name, (v, _) in libraries.items()},
        "fixes": {name: fix for name, (_, fix) in libraries.items() if fix},
        "torchvision_ops": _torchvision_ok(),
        "device": str(hw),
        "precision": precision_policy(hw).name,
        "mode": get_mode(),
        "online": online,
        "assets": {},
    }
    data_root = data_dir()
    for name, asset in ASSETS.items():
        report["assets"][name] = {
            "status": _asset_status(name, online, data_root),
            "install": asset.install,
            "description": asset.description,
        }
    missing = [n for n, a in report["assets"].items() if a["status"] == "missing"]
    report["ready"] = not (missing or report["fixes"] or report["torchvision_ops"] != "ok")
    _print(report)
    return report


def _coursekit_version() -> str:
    try:
        return importlib.metadata.version("coursekit")
    except importlib.metadata.PackageNotFoundError:
        return "not installed (run from a checkout)"


def _print(report: dict) -> None:
    print(f"coursekit doctor — Python {report['python']} on {report['platform']}")
    print("\nVersions:")
    for name, v in report["versions"].items():
        fix = report["fixes"].get(name)
        print(f"  {name:<13} {v}" + (f"   -> {fix}" if fix else ""))
    print(f"  torchvision ops: {report['torchvision_ops']}")
    print(f"\nDevice:    {report['device']}")
    print(f"Precision: {report['precision']}")
    print(f"Mode:      {report['mode']}  (COURSEKIT_MODE=quick|full)")
    online = report["online"]
    print(f"Network:   {'online' if online else 'offline (the course runs on packaged assets)'}")
    print("\nAssets:")
    for name, a in report["assets"].items():
        mark = {"found": "found offline", "missing": "MISSING"}.get(a["status"], a["status"])
        hint = f"   -> {a['install']}" if a["status"] == "missing" else ""
        print(f"  {name:<22} {mark:<14} {a['description']}{hint}")
    for name, what in _ONLINE_ONLY.items():
        print(f"  {name:<22} {'downloadable' if online else 'needs internet':<14} {what}")
    if report["ready"]:
        print("\nEvery library and course asset is available. You are ready.")
    else:
        print("\nNOT READY: fix what the arrows above point at, then run doctor again.")
