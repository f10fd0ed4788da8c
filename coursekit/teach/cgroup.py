"""Limits that hold for a sandbox and every process it starts: memory, processes and CPU.

A per-process limit (`ulimit`, RLIMIT_AS) is escaped by starting children: each child gets the
whole limit again. A control group (cgroup) counts a process and all its descendants together,
so the grader puts each sandbox (the student's kernel, and separately the checking process)
into a cgroup of its own, before bubblewrap starts:

- **cgroup v2** (current Linux distributions): `memory.max` (resident memory and the sandbox's
  tmpfs files together; `memory.swap.max` 0), `pids.max` (processes and threads), `cpu.max`,
  in a child of the grader's own cgroup when that one delegates the controllers, else under
  the hierarchy's root when the grader runs as root there (a VM, a container started with
  `--cgroupns=host`);
- **cgroup v1** (older systems, some VMs): the same limits in the `memory`, `pids` and `cpu`
  hierarchies (`memory.limit_in_bytes`, `pids.max`, `cpu.cfs_quota_us`).

`create()` raises `CgroupUnavailable` saying why when neither works (no permission, a read-only
`/sys/fs/cgroup` in a container); the grader then says so once and falls back to per-process
limits (`FALLBACK`). A cgroup also lets the grader kill everything a sandbox left behind and
read its peak memory. Used by `teach.sandbox`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FALLBACK", "Cgroup", "CgroupUnavailable", "create", "probe"]

FALLBACK = (
    "cgroups are not available here ({reason}), so memory is limited per process "
    "(RLIMIT_AS: address space, which children escape) and the number of processes and the "
    "CPU are not limited. To enforce the limits for each sandbox and all its children, run the "
    "grader as root on a machine (or VM) with a writable cgroup v2 or v1 hierarchy, or in a "
    "container started with --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw."
)
PERIOD_US = 100_000


class CgroupUnavailable(RuntimeError):
    """No cgroup can be created for a sandbox here; the message says why."""


@dataclass
class Cgroup:
    """One sandbox's cgroup: a folder per hierarchy used (v2: one; v1: memory, pids, cpu)."""

    version: int
    folders: dict[str, Path] = field(default_factory=dict)  # controller (or "v2") -> folder

    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to enter this cgroup (children follow)."""
        return [str(f / "cgroup.procs") for f in dict.fromkeys(self.folders.values())]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in dict.fromkeys(self.folders.values()):
            try:
                found |= {int(p) for p in (f / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def kill(self, wait: float = 5.0) -> None:
        """Kill every process in the cgroup (whatever it forked), and wait until they are gone."""
        kill_file = self.folders.get("v2", Path("/nonexistent")) / "cgroup.kill"
        end = time.monotonic() + wait
        while True:
            pids = self.pids()
            if not pids or time.monotonic() > end:
                return
            if kill_file.exists():
                _write(kill_file, "1")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup's folders."""
        self.kill()
        for f in dict.fromkeys(self.folders.values()):
            for _ in range(50):
                try:
                    f.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)

    def peak_memory(self) -> int | None:
        """The most memory the cgroup held at once (bytes), where the kernel records it."""
        folder = self.folders.get("v2") or self.folders.get("memory")
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((folder / name).read_text().split()[0])
            except (OSError, ValueError, IndexError, TypeError):
                continue
        return None

    def events(self) -> dict[str, int]:
        """Counters of limits hit: {"oom_kill": n, "pids_max": n} where available."""
        out = {}
        for controller, name, key in (
            ("v2", "memory.events", "oom_kill"),
            ("memory", "memory.oom_control", "oom_kill"),
            ("v2", "pids.events", "max"),
            ("pids", "pids.events", "max"),
        ):
            folder = self.folders.get(controller)
            if folder is None:
                continue
            try:
                for line in (folder / name).read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == key:
                        label = "oom_kill" if key == "oom_kill" else "pids_max"
                        out[label] = out.get(label, 0) + int(parts[1])
            except (OSError, ValueError):
                continue
        return out


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of the cgroup hierarchies mounted here."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fstype, _, options = (after.split() + ["", "", ""])[:3]
        if fstype in ("cgroup", "cgroup2"):
            found.append((before.split()[4], fstype, set(options.split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """The grader's own cgroup per hierarchy: {"v2": "/a/b"} and {"memory": "/x", ...}."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            paths["v2"] = path
        for c in controllers.split(","):
            if c:
                paths[c] = path
    return paths


def _v2_parent(mount: Path, own: str) -> Path:
    """A cgroup v2 folder that hands memory and pids down to new children."""
    candidates = [mount / own.lstrip("/"), mount]
    for parent in dict.fromkeys(candidates):
        control = parent / "cgroup.subtree_control"
        try:
            enabled = set(control.read_text().split())
            missing = {"memory", "pids"} - enabled
            if missing:
                wanted = {"memory", "pids", "cpu"} & set(
                    (parent / "cgroup.controllers").read_text().split()
                )
                _write(control, " ".join(f"+{c}" for c in sorted(wanted)))
            if {"memory", "pids"} <= set(control.read_text().split()):
                return parent
        except OSError:
            continue
    raise CgroupUnavailable(
        "cgroup v2 does not delegate the memory and pids controllers to this process"
    )


def _create_v2(mount: Path, own: str, name: str) -> Cgroup:
    folder = _v2_parent(mount, own) / name
    folder.mkdir()
    return Cgroup(2, {"v2": folder})


def _create_v1(mounts: list[tuple[str, str, set[str]]], own: dict[str, str], name: str) -> Cgroup:
    group = Cgroup(1)
    for controller in ("memory", "pids", "cpu"):
        mount = next((Path(m) for m, t, o in mounts if t == "cgroup" and controller in o), None)
        if mount is None:
            if controller == "cpu":
                continue
            raise CgroupUnavailable(f"no cgroup v1 {controller} hierarchy is mounted")
        folder = mount / own.get(controller, "/").lstrip("/") / name
        folder.mkdir()
        group.folders[controller] = folder
    return group


def create(name: str, memory_bytes: int, max_processes: int, cpus: float = 0.0) -> Cgroup:
    """A new cgroup with these limits (0: that limit unset); `CgroupUnavailable` says why not."""
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as err:
        raise CgroupUnavailable(f"cannot read this process's cgroups: {err}") from None
    v2 = next((Path(m) for m, t, o in mounts if t == "cgroup2"), None)
    group = None
    errors = []
    if v2 is not None and (v2 / "cgroup.controllers").exists():
        try:
            group = _create_v2(v2, own.get("v2", "/"), name)
        except (CgroupUnavailable, OSError) as err:
            errors.append(f"v2: {err}")
    if group is None and any(t == "cgroup" for _, t, _ in mounts):
        try:
            group = _create_v1(mounts, own, name)
        except (CgroupUnavailable, OSError) as err:
            errors.append(f"v1: {err}")
    if group is None:
        raise CgroupUnavailable("; ".join(errors) or "no cgroup hierarchy is mounted")
    try:
        _limit(group, memory_bytes, max_processes, cpus)
    except OSError as err:
        group.remove()
        raise CgroupUnavailable(f"cannot set the limits: {err}") from None
    return group


def _limit(group: Cgroup, memory_bytes: int, max_processes: int, cpus: float) -> None:
    quota = int(cpus * PERIOD_US)
    if group.version == 2:
        f = group.folders["v2"]
        if memory_bytes:
            _write(f / "memory.max", str(memory_bytes))
            if (f / "memory.swap.max").exists():
                _write(f / "memory.swap.max", "0")
        if max_processes:
            _write(f / "pids.max", str(max_processes))
        if quota and (f / "cpu.max").exists():
            _write(f / "cpu.max", f"{quota} {PERIOD_US}")
        return
    if memory_bytes:
        _write(group.folders["memory"] / "memory.limit_in_bytes", str(memory_bytes))
        swap = group.folders["memory"] / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                _write(swap, str(memory_bytes))
            except OSError:
                pass
    if max_processes:
        _write(group.folders["pids"] / "pids.max", str(max_processes))
    if quota and "cpu" in group.folders:
        _write(group.folders["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
        _write(group.folders["cpu"] / "cpu.cfs_quota_us", str(quota))


def probe() -> str | None:
    """None when cgroups work here; else why not (the grader prints `FALLBACK` with it)."""
    try:
        create(f"coursekit-probe-{os.getpid()}", 2**30, 64).remove()
    except CgroupUnavailable as err:
        return str(err)
    return None
