"""Run untrusted code in bubblewrap: read-only system, no network, sized tmpfs, a cgroup of its own.

The grader never trusts a submission's code with its own process. The student's kernel, and
separately the checking process that judges it (`teach.checker`), are started by `bwrap`
(bubblewrap, the sandbox Flatpak uses; Debian/Ubuntu package `bubblewrap`) with:

- a read-only view of the system (/usr, the Python installation and the packages on sys.path)
  and nothing else: not the source notebooks, not the other submissions, not the reports (a
  folder on sys.path that holds any of them contributes only its Python packages); no `/sys`
  (a GPU machine gets the few /sys folders the driver reads) and a `/proc` of its own;
- writable places that are each a sized tmpfs, the rest read-only (`--remount-ro /`): the working
  folder and HOME (`/tmp`), `/dev/shm`, the folder of the kernel's sockets (`/run/ck`) and the
  folder the kernel hands values over in (`/run/ck-out`);
- no network (`--unshare-net`): the grader reaches the kernel's ZeroMQ `ipc` sockets through
  `/proc/<sandbox pid>/root/run/ck`, the connection file (key included) is bound read-only;
- its own user, PID, IPC and mount namespaces (it cannot see or signal the grader, and every
  process it leaves behind dies with the sandbox), a cleared environment, a new session;
- a cgroup (`teach.cgroup`) for the memory, processes and CPU of the sandbox and all its
  children; where cgroups are unavailable, RLIMIT_AS per process (and a note saying so).

Used by the grader (`coursekit grade`); lessons never import it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .cgroup import Cgroup, CgroupUnavailable, create

__all__ = [
    "RUN",
    "SOCKETS",
    "SandboxUnavailable",
    "Sizes",
    "bwrap_argv",
    "find_bwrap",
    "launcher",
    "sandbox_root",
]

WORKDIR = "/tmp/work"  # the kernel's working folder and HOME
SOCKETS = "/run/ck"  # the kernel's ZeroMQ sockets
RUN = "/run/ck-out"  # values the kernel hands over (teach.agent writes, the grader reads)
FEATURES = "/run/ck-features"  # the grader's feature cache, read-only (see kernel.LAUNCH)
# Variables a lesson may need; everything else in the grader's environment stays outside.
PASSED_ENV = ("COURSEKIT_", "OMP_", "MKL_", "CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE", "LANG", "TZ")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts")
ETC += ("passwd", "group", "nsswitch.conf", "hosts", "mime.types", "ssl")
GPU_SYS = ("/sys/bus/pci", "/sys/devices", "/sys/module/nvidia", "/sys/class/drm")
# The launcher: enter the cgroup(s), open bwrap's info file as fd 3, then exec the command.
ENTER = 'info="$1"; shift; while [ "$1" != "--" ]; do echo $$ > "$1" || exit 97; shift; done; '
ENTER += 'shift; exec 3>"$info"; exec "$@"'


class SandboxUnavailable(RuntimeError):
    """No usable bubblewrap on this machine: say so instead of running submissions unprotected."""


@dataclass
class Sizes:
    """Sizes of the writable places (bytes) and the limits of one sandbox."""

    work: int = 64 * 2**20  # /tmp (working folder and HOME)
    shm: int = 64 * 2**20  # /dev/shm
    out: int = 0  # /run/ck-out, values handed over (0: not mounted)
    sockets: int = 2**20  # /run/ck, sockets only
    max_file: int = 64 * 2**20  # any one file (RLIMIT_FSIZE)
    memory: int = 0  # bytes for the sandbox and all its children (0: no limit)
    processes: int = 0  # processes and threads (0: no limit)
    cpus: float = 0.0  # cores (0: no limit)


def find_bwrap() -> str:
    """The path of a working `bwrap`, or raise `SandboxUnavailable` saying how to get one."""
    path = shutil.which("bwrap")
    if path is None or not sys.platform.startswith("linux"):
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so submissions cannot be sandboxed. Install it "
            "(Debian/Ubuntu: apt-get install bubblewrap) or run the grader inside a Linux "
            "container; --unsafe-no-sandbox runs student code as you, with your files (not for "
            "a class you do not know)."
        )
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-all", "--unshare-user", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bwrap cannot create namespaces here ({probe.stderr.strip()[:200]}); enable "
            "unprivileged user namespaces or run the grader in a container that allows them."
        )
    return path


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _code_binds(hidden: list[Path]) -> list[Path]:
    """What Python needs: its installation and each sys.path folder, minus the hidden paths."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    roots |= {Path(p).resolve() for p in sys.path if p and Path(p).is_dir()}
    roots.add(Path(__file__).resolve().parents[1])  # coursekit itself, also when editable
    binds: set[Path] = set()
    for root in roots:
        if not any(_inside(h, root) for h in hidden):
            binds.add(root)
            continue
        for child in root.iterdir():  # a repository root on sys.path: its packages only
            is_package = child.is_dir() and (child / "__init__.py").exists()
            if (is_package or child.suffix == ".py") and not any(
                _inside(h, child) or _inside(child, h) for h in hidden
            ):
                binds.add(child.resolve())
    return sorted(b for b in binds if not any(b != o and _inside(b, o) for o in binds))


def _system(argv: list[str]) -> None:
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            argv += ["--ro-bind", str(top), str(top)]
    for name in ETC:
        if (Path("/etc") / name).exists():
            argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]


def _tmpfs(argv: list[str], size: int, where: str) -> None:
    argv += ["--size", str(max(size, 4096)), "--tmpfs", where]


def bwrap_argv(
    bwrap: str,
    hidden: list[Path],
    sizes: Sizes,
    command: list[str],
    ro: list[tuple[Path, str]] = (),
    info_fd: int | None = None,
) -> list[str]:
    """The bwrap command that runs `command` in a sandbox (`ro`: (host path, path inside) binds;
    `info_fd`: where bwrap writes its child's pid, as JSON)."""
    hidden = [Path(h).resolve() for h in hidden]
    argv = [bwrap, *(["--info-fd", str(info_fd)] if info_fd is not None else [])]
    argv += ["--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000"]
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]
    _system(argv)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    _tmpfs(argv, sizes.shm, "/dev/shm")
    gpus = sorted(Path("/dev").glob("nvidia*"))
    for dev in gpus:  # a GPU stays usable, nothing else of /dev
        argv += ["--dev-bind", str(dev), str(dev)]
    argv += ["--remount-ro", "/dev"]
    for folder in GPU_SYS if gpus else ():
        argv += ["--ro-bind-try", folder, folder]
    _tmpfs(argv, sizes.work, "/tmp")
    argv += ["--dir", WORKDIR]
    _tmpfs(argv, sizes.sockets, SOCKETS)
    if sizes.out:
        _tmpfs(argv, sizes.out, RUN)
    for path in _code_binds(hidden):
        argv += ["--ro-bind", str(path), str(path)]
    for path in hidden:  # in case one lies inside a bound system folder
        if any(_inside(path, Path(p)) for p in ("/usr", "/etc")) and path.is_dir():
            argv += ["--tmpfs", str(path)]
    for host, inside in ro:
        argv += ["--ro-bind", str(host), inside]
    argv += ["--remount-ro", "/", "--chdir", WORKDIR]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "MPLBACKEND": "agg"}
    env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)})
    env["COURSEKIT_DATA"] = WORKDIR + "/data"  # caches: in the sized working folder
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    for key, value in sorted(env.items()):
        argv += ["--setenv", key, value]
    return [*argv, *command]


def launcher(
    bwrap: str,
    hidden: list[Path],
    sizes: Sizes,
    command: list[str],
    folder: Path,
    ro: list[tuple[Path, str]] = (),
) -> tuple[list[str], Cgroup | None, str]:
    """The full command for one sandbox: enter its cgroup, set per-process limits, run bwrap.

    Returns (argv, the cgroup or None, why there is none). bwrap writes its child's pid to
    `folder/info.json` (see `sandbox_root`).
    """
    group, why = None, ""
    try:
        group = create(
            f"coursekit-{os.getpid()}-{time.monotonic_ns()}",
            sizes.memory,
            sizes.processes,
            sizes.cpus,
        )
    except CgroupUnavailable as err:
        why = str(err)
    limits = ["prlimit", f"--fsize={sizes.max_file}", "--core=0"]
    if group is None and sizes.memory:  # address space: a torch process reserves much more
        limits.append(f"--as={sizes.memory + 8 * 2**30}")
    argv = [*limits, "--", *bwrap_argv(bwrap, hidden, sizes, command, ro, info_fd=3)]
    procs = group.procs_files() if group else []
    return ["sh", "-c", ENTER, "sh", str(folder / "info.json"), *procs, "--", *argv], group, why


def sandbox_root(folder: Path, wait: float = 30.0, alive=lambda: True) -> Path:  # noqa: ANN001
    """`/proc/<pid>/root`: the sandbox's file system as the grader sees it, once bwrap started."""
    info = folder / "info.json"
    end = time.monotonic() + wait
    while time.monotonic() < end and alive():
        try:
            pid = json.loads(info.read_text())["child-pid"]
            root = Path(f"/proc/{int(pid)}/root")
            if (root / SOCKETS.lstrip("/")).is_dir():
                return root
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    raise RuntimeError("the sandbox did not start (bwrap wrote no child pid)")
