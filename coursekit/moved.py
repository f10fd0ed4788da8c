"""Old module names that still work for one release, with a DeprecationWarning.

The flat modules of coursekit 0.1 are grouped into subpackages (`runtime/`, `measure/`,
`experiments/`). Code written against the old names (`ck.cost.measure_step`,
`from coursekit.device import pick_device`) keeps working: each old name is a stand-in module that
warns at every use and hands over the attribute from the module's new home. The stand-ins go in
the next release.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings

__all__ = ["MOVED", "MovedModule", "install"]

MOVED = {
    "config": "runtime.config",
    "device": "runtime.device",
    "assets": "runtime.assets",
    "files": "runtime.files",
    "progress": "runtime.progress",
    "drive": "runtime.drive",
    "colab": "runtime.colab",
    "cost": "measure.measured",
    "estimate": "measure.predicted",
    "lr_finder": "measure.lr_finder",
    "batch_size": "measure.batch_size",
    "methods": "experiments.methods",
    "probes": "experiments.probes",
    "baselines": "experiments.baselines",
    "gaps": "experiments.gaps",
    "forgetting": "experiments.forgetting",
}


class MovedModule(types.ModuleType):
    """Stands in for `coursekit.<old>`: every attribute read warns and comes from the new module."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old, f"Deprecated: moved to {new}.")
        self.__dict__["_new"] = new

    def __getattr__(self, name: str) -> object:
        new = self.__dict__["_new"]
        if name.startswith("__") and name != "__all__":
            raise AttributeError(name)
        warnings.warn(
            f"{self.__name__} moved to {new}; import it from there "
            f"(the old name goes in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)


def install(package: types.ModuleType) -> None:
    """Make every old name importable (`import coursekit.cost`) and reachable (`ck.cost`)."""
    for old, new in MOVED.items():
        stand_in = MovedModule(f"{package.__name__}.{old}", f"{package.__name__}.{new}")
        sys.modules.setdefault(stand_in.__name__, stand_in)
        setattr(package, old, sys.modules[stand_in.__name__])
