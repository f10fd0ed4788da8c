"""`coursekit doctor`: is this environment ready for the course, and if not, what to do.

It catches library drift and missing assets before a learner meets them mid-notebook: versions,
a torchvision operator that fails on a mismatched torch, the device and its precision policy, the
run mode, and every course asset as found offline, downloadable, or missing (with the command that
installs it).
"""

from __future__ import annotations

import importlib
import os
import platform
import socket
import threading

from .assets import ASSETS, asset_status
from .config import get_mode
from .device import describe_hardware, pick_device, precision_policy

__all__ = ["doctor", "network_available"]

_PACKAGES = (
    "coursekit",
    "torch",
    "torchvision",
    "transformers",
    "datasets",
    "peft",
    "safetensors",
    "numpy",
    "matplotlib",
    "ipywidgets",
    "tqdm",
)
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


def _version(name: str) -> str:
    try:
        return getattr(importlib.import_module(name), "__version__", "installed")
    except Exception as err:  # a broken install fails in many ways; report, don't crash
        return f"BROKEN ({type(err).__name__}: {str(err).splitlines()[0][:80]})"


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


def doctor(check_network: bool = True) -> dict:
    """Print a report of the environment and return it as a dict (for tests and notebooks)."""
    device = pick_device()
    hw = describe_hardware(device)
    online = network_available() if check_network else False
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "torchvision_ops": _torchvision_ok(),
        "device": str(hw),
        "precision": precision_policy(hw).name,
        "mode": get_mode(),
        "online": online,
        "assets": {},
    }
    for name, asset in ASSETS.items():
        status = asset_status(name)
        if status == "missing" and asset.online and online:
            status = "downloadable"
        report["assets"][name] = {
            "status": status,
            "install": asset.install,
            "description": asset.description,
        }

    print(f"coursekit doctor — Python {report['python']} on {report['platform']}")
    print("\nVersions:")
    for name, v in report["versions"].items():
        print(f"  {name:<13} {v}")
    print(f"  torchvision ops: {report['torchvision_ops']}")
    print(f"\nDevice:    {report['device']}")
    print(f"Precision: {report['precision']}")
    print(f"Mode:      {report['mode']}  (COURSEKIT_MODE=quick|full)")
    print(f"Network:   {'online' if online else 'offline (the course runs on packaged assets)'}")
    print("\nAssets:")
    for name, a in report["assets"].items():
        mark = {"found": "found offline", "downloadable": "downloadable"}.get(
            a["status"], "MISSING"
        )
        hint = "" if a["status"] == "found" else f"   -> {a['install']}"
        print(f"  {name:<22} {mark:<14} {a['description']}{hint}")
    for name, what in _ONLINE_ONLY.items():
        status = "downloadable" if online else "needs internet"
        print(f"  {name:<22} {status:<14} {what}")
    missing = [n for n, a in report["assets"].items() if a["status"] == "missing"]
    if missing or report["torchvision_ops"] != "ok":
        print("\nSome things need attention (see the arrows above).")
    else:
        print("\nAll course assets are available offline. You are ready.")
    return report
