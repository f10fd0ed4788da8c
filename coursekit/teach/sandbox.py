"""Run each submission's kernel in bubblewrap: read-only system, no network, no view of the class.

The grader never trusts a submission's code with its own process. Every kernel is started by
`bwrap` (bubblewrap, the sandbox Flatpak uses; Debian/Ubuntu package `bubblewrap`) with:

- a read-only view of the system (/usr, the Python installation and the packages on sys.path)
  and nothing else: not the source notebooks, not the other submissions, not the reports (a
  folder on sys.path that holds any of them contributes only its Python packages);
- a private folder that holds only the kernel's connection file and sockets (the grader keeps the
  notebook itself, hidden tests included), and a small tmpfs as working folder and HOME;
- no network (`--unshare-net`; the grader talks to the kernel over ZeroMQ's `ipc` transport, Unix
  sockets in the private folder), its own PID namespace (it cannot see or signal the grader, and
  every process it leaves behind dies with the sandbox), a cleared environment, a new session;
- limits through `prlimit`: virtual memory (RLIMIT_AS) and the size of any file it writes; the
  tmpfs holds at most the same size in all.

Used by the grader (`coursekit grade`); lessons never import it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "SandboxUnavailable",
    "bwrap_argv",
    "find_bwrap",
    "kernel_starter",
    "write_kernelspec",
]

KERNEL_NAME = "coursekit-sandbox"
WORKDIR = "/tmp/work"  # the kernel's working folder and HOME: a tmpfs of at most max_file_mb
# Variables a lesson may need; everything else in the grader's environment stays outside.
PASSED_ENV = ("COURSEKIT_", "OMP_", "MKL_", "CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE", "LANG", "TZ")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts")
ETC += ("passwd", "group", "nsswitch.conf", "hosts", "mime.types", "ssl")


class SandboxUnavailable(RuntimeError):
    """No usable bubblewrap on this machine: say so instead of running submissions unprotected."""


def find_bwrap() -> str:
    """The path of a working `bwrap`, or raise `SandboxUnavailable` saying how to get one."""
    import subprocess

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


def bwrap_argv(
    bwrap: str, private: Path, hidden: list[Path], memory_gb: float, max_file_mb: float
) -> list[str]:
    """The command that starts a kernel in the sandbox (`{connection_file}` is filled in later)."""
    hidden = [Path(h).resolve() for h in hidden]
    argv = ["prlimit", f"--fsize={int(max_file_mb * 2**20)}"]
    if memory_gb > 0:
        argv.append(f"--as={int(memory_gb * 2**30)}")
    argv += ["--", bwrap, "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000"]
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            argv += ["--ro-bind", str(top), str(top)]
    for name in ETC:
        if (Path("/etc") / name).exists():
            argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--ro-bind-try", "/sys", "/sys"]
    argv += ["--size", str(int(max_file_mb * 2**20)), "--tmpfs", "/tmp", "--dir", WORKDIR]
    for dev in sorted(Path("/dev").glob("nvidia*")):  # a GPU stays usable, nothing else of /dev
        argv += ["--dev-bind", str(dev), str(dev)]
    for path in _code_binds(hidden):
        argv += ["--ro-bind", str(path), str(path)]
    for path in hidden:  # in case one lies inside a bound system folder
        if any(_inside(path, Path(p)) for p in ("/usr", "/etc", "/sys")) and path.is_dir():
            argv += ["--tmpfs", str(path)]
    argv += ["--bind", str(private), str(private), "--chdir", WORKDIR]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "MPLBACKEND": "agg"}
    env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)})
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    for key, value in sorted(env.items()):
        argv += ["--setenv", key, value]
    return [*argv, sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def write_kernelspec(folder: Path, argv: list[str]) -> str:
    """A kernelspec whose command is `argv`; interrupts go as messages (no signal crosses bwrap)."""
    spec = folder / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": argv,
                "display_name": "coursekit sandbox",
                "language": "python",
                "interrupt_mode": "message",
            }
        )
    )
    return KERNEL_NAME


def kernel_starter(
    private: Path, hidden: list[Path], memory_gb: float, max_file_mb: float, sandbox: bool = True
) -> Callable[[], tuple[Any, Any]]:
    """A function that starts a fresh kernel (and client) for one submission.

    sandbox=False (`--unsafe-no-sandbox`) starts a plain kernel in `private`, as the grader's user.
    """
    import subprocess

    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    def start() -> tuple[Any, Any]:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if sandbox:
            argv = bwrap_argv(find_bwrap(), private, hidden, memory_gb, max_file_mb)
            specs = private.parent / "spec"
            km = KernelManager(
                kernel_name=write_kernelspec(specs, argv),
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
                transport="ipc",
                ip=str(private / "k"),
                connection_file=str(private / "kernel.json"),
            )
            km.start_kernel(**quiet)
        else:
            km = KernelManager(kernel_name="python3")
            km.start_kernel(cwd=str(private), **quiet)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        return km, kc

    return start
