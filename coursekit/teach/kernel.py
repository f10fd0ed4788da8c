"""A submission's kernel, seen from the grader: run a cell with a time limit, ask for values.

`Kernel` starts a Jupyter kernel (in the sandbox of `teach.sandbox`, or plainly with
`--unsafe-no-sandbox`), installs the agent (`teach.agent`) and talks to it over ZeroMQ with a
maximum message size, so a kernel cannot flood the grader's memory. A cell runs with a time
limit: at the limit the kernel is interrupted, and if it does not stop within a grace period
(a bare `except:` around a loop) the whole sandbox is killed and the caller restarts it. Output
beyond `max_output` bytes per cell is dropped and says so; every string is cleaned before it is
kept. Values come back through `agent()`: a JSON reply and safetensors files read from the
sandbox's hand-over folder without following links, within a byte budget. Used by `teach.run`.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import clean_output
from .sandbox import FEATURES, RUN, SOCKETS, WORKDIR, Sizes, find_bwrap, launcher, sandbox_root

__all__ = ["AgentError", "CellRun", "Kernel", "Session", "standalone", "starter"]

GRACE_S = 10.0  # how long an interrupted cell may take to stop before the kernel is killed
BLOB = re.compile(r"b\d{1,7}")
# A file of this folder run by path, with the standalone modules it uses (stdlib only).
LOAD = (
    "import importlib.util as _u, sys as _s\n"
    "for _n in {names!r}:\n"
    "    _p = _u.spec_from_file_location('_coursekit_' + _n, {folder!r} + '/' + _n + '.py')\n"
    "    _s.modules['_coursekit_' + _n] = _m = _u.module_from_spec(_p)\n"
    "    _p.loader.exec_module(_m)\n"
)
# ipykernel_launcher, started on a writable copy of the connection file: ipykernel before 6.2x
# (Colab's 6.17) rewrites the file it was given, and the grader's copy is bound read-only. The
# grader's feature cache, bound read-only at FEATURES, is linked file by file into the kernel's
# own cache folder: a lesson reuses the features the course already computed (each entry keyed
# by a hash of model, inputs and settings, and checksummed), and what it computes anew stays in
# its own tmpfs; the links cannot be written through.
LAUNCH = f"""\
import os, shutil, sys
del sys.path[0]
shutil.copy(sys.argv[1], {SOCKETS + "/kernel.json"!r})
shared, cache = {FEATURES!r}, os.path.join(os.environ['COURSEKIT_DATA'], 'features')
if os.path.isdir(shared):
    os.makedirs(cache, exist_ok=True)
    for name in os.listdir(shared):
        os.symlink(os.path.join(shared, name), os.path.join(cache, name))
from ipykernel import kernelapp
kernelapp.launch_new_instance(argv=['-f', {SOCKETS + "/kernel.json"!r}])
"""


def standalone(*names: str) -> str:
    """Code that loads `codec`, `frames` and then `names` of this folder as `_coursekit_<name>`
    modules, without importing coursekit (so neither the kernel nor the checker loads torch for
    it); the last one is left in `_m`."""
    folder = str(Path(__file__).parent)
    return LOAD.format(names=("codec", "frames", *names), folder=folder)


INSTALL = standalone("agent") + "del _u, _s, _p, _m, _n"
AGENT = "__import__('sys').modules['_coursekit_agent'].{fn}({payload!r})"


class AgentError(RuntimeError):
    """The kernel gave no usable answer (timeout, death, a malformed or oversized reply)."""


@dataclass
class CellRun:
    """One cell: ok, error, timeout, hung (ignored the interrupt), dead, or not run."""

    status: str
    message: str = ""
    outputs: list = field(default_factory=list)
    user_expressions: dict = field(default_factory=dict)


@dataclass
class Session:
    """A started kernel: its manager and client, where its values arrive, its cgroup."""

    km: Any
    kc: Any
    out_host: Path  # the hand-over folder as the grader reads it
    out_inside: str  # the same folder as the kernel writes it
    group: Any = None
    note: str = ""  # why there is no cgroup, if there is none
    memory: int = 0  # the sandbox's memory limit, bytes


def _manager_class() -> type:
    from jupyter_client import KernelManager

    class SandboxKernelManager(KernelManager):
        """Connects to the kernel's sockets through /proc/<pid>/root once bwrap has started."""

        folder: Path | None = None
        root: Path | None = None

        def _connect_control_socket(self) -> None:
            if self._control_socket is None and self.folder is not None:
                alive = lambda: self.provisioner.process.poll() is None  # noqa: E731
                self.root = sandbox_root(self.folder, alive=alive)
                self.ip = str(self.root) + SOCKETS + "/k"
            super()._connect_control_socket()

    return SandboxKernelManager


def _feature_cache(hidden: list[Path]) -> list[Path]:
    """The grader's feature cache (`datasets.data_dir() / "features"`) if it holds entries and
    lies outside every hidden path: shown read-only to each kernel (see LAUNCH)."""
    from ..datasets import data_dir
    from ..features.cache import cache_file

    folder = data_dir().resolve() / "features"
    if not folder.is_dir() or not any(folder.glob(cache_file(folder, "*").name)):
        return []
    inside = (folder == h or h in folder.parents for h in (Path(p).resolve() for p in hidden))
    return [] if any(inside) else [folder]


def starter(
    folder: Path,
    hidden: list[Path],
    sizes: Sizes,
    max_message: int,
    sandbox: bool = True,
    files: dict[str, Path] | None = None,
) -> Callable[[], Session]:
    """A function that starts a fresh kernel for one submission (files in `folder`, the grader's).

    files: {name: host file} to show read-only in the kernel's working folder (a course's
    `checks.py`). sandbox=False (`--unsafe-no-sandbox`) starts a plain kernel as the grader's user.
    """
    import subprocess

    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    shared = _feature_cache(hidden) if sandbox else []  # looked up once, for every restart

    def start() -> Session:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        run = Path(tempfile.mkdtemp(prefix="k-", dir=folder))
        (run / "conn").mkdir()
        group, note = None, ""
        if sandbox:
            command = [sys.executable, "-c", LAUNCH, "{connection_file}"]
            ro = [(run / "conn", str(run / "conn"))]
            ro += [(path, f"{WORKDIR}/{name}") for name, path in (files or {}).items()]
            ro += [(cache, FEATURES) for cache in shared]
            argv, group, note = launcher(find_bwrap(), hidden, sizes, command, run, ro=ro)
            spec = run / "spec" / "coursekit-sandbox"
            spec.mkdir(parents=True)
            (spec / "kernel.json").write_text(
                json.dumps(
                    {
                        "argv": argv,
                        "display_name": "sandbox",
                        "language": "python",
                        "interrupt_mode": "message",
                    }
                )  # fmt: skip
            )
            km = _manager_class()(
                kernel_name="coursekit-sandbox",
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(run / "spec")]),
                transport="ipc",
                ip=SOCKETS + "/k",
                connection_file=str(run / "conn" / "kernel.json"),
                context=_context(max_message),
            )
            km.folder = run
            try:
                km.start_kernel(**quiet)
            except BaseException:
                if group is not None:
                    group.remove()
                raise
            out_host, out_inside = km.root / RUN.lstrip("/"), RUN
        else:
            (run / "out").mkdir()
            for name, path in (files or {}).items():
                shutil.copy(path, run / name)
            km = KernelManager(kernel_name="python3", context=_context(max_message))
            km.start_kernel(cwd=str(run), **quiet)
            out_host = Path(out_inside := str(run / "out"))
        kc = km.client(context=km.context)  # the same message size limit
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        return Session(km, kc, out_host, out_inside, group, note, sizes.memory)

    return start


def _context(max_message: int) -> Any:
    """A ZeroMQ context whose sockets drop any message larger than `max_message` bytes."""
    import zmq

    ctx = zmq.Context()
    ctx.setsockopt(zmq.MAXMSGSIZE, int(max_message))
    return ctx


class Kernel:
    """One submission's kernel: cells, the agent's values, restarts."""

    def __init__(self, start: Callable[[], Session], max_output: int, max_bytes: int) -> None:
        self._start, self.max_output, self.max_bytes = start, max_output, max_bytes
        self.session: Session | None = None
        self.replied: dict[str, str] = {}  # msg_id -> what it was for (a question id, a cell)
        self.forged: dict[str, str] = {}  # the same, for requests that got a second reply
        self.label = ""  # what the next requests are for
        self.generation = 0
        self.broken = ""  # why the connection can no longer be trusted (the caller restarts)
        self._monitors: list = []

    def start(self) -> None:
        import zmq

        self.session = self._start()
        self.generation += 1
        self.broken = ""
        kc = self.session.kc
        self._monitors = [ch.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
                          for ch in (kc.iopub_channel, kc.shell_channel)]  # fmt: skip
        run = self.execute(INSTALL, 120.0, silent=True, store_history=False)
        if run.status != "ok":
            raise RuntimeError(f"the grader's agent could not start in the kernel: {run.message}")

    @property
    def alive(self) -> bool:
        return self.session is not None and self.session.km.is_alive()

    def _death(self) -> str:
        group = self.session.group
        if group is not None and group.events().get("oom_kill", 0):
            limit = f" (the sandbox may use {self.session.memory / 2**30:g} GB)"
            return "the kernel was killed: out of memory" + (limit if self.session.memory else "")
        return "the kernel died (out of memory, os._exit, a signal ...)"

    def _dropped(self) -> bool:
        """Whether ZeroMQ cut a connection (it does so on a message above the size limit)."""
        import zmq

        for monitor in self._monitors:
            try:
                monitor.recv_multipart(zmq.NOBLOCK)
                return True
            except zmq.Again:
                continue
        return False

    def execute(self, code: str, timeout: float, **kw: Any) -> CellRun:
        """Run `code`; interrupt it at `timeout`, and report 'hung' if it will not stop."""
        km, kc = self.session.km, self.session.kc
        msg_id = kc.execute(code, allow_stdin=False, stop_on_error=False, **kw)
        outputs: list = []
        state = self._collect(msg_id, time.monotonic() + timeout, outputs)
        if state == "dead":
            return CellRun("dead", self._death(), outputs)
        if state == "dropped":
            self.broken = (
                "it sent a message larger than the grader accepts, so its connection was cut "
                "and the kernel was restarted"
            )
            return CellRun("hung", self.broken, outputs)
        if state == "timeout":
            km.interrupt_kernel()
            state = self._collect(msg_id, time.monotonic() + GRACE_S, outputs)
            message = f"it ran for more than {timeout:.0f} s and was interrupted"
            if state != "idle":
                message += "; it ignored the interrupt, so the kernel was killed and restarted"
                self.broken = message
            return CellRun("timeout" if state == "idle" else "hung", message, outputs)
        content = self._reply(msg_id, 10.0)
        if content.get("ename") in ("NoReply", "Dropped") and not self.broken:
            self.broken = (
                "its reply was larger than the grader accepts; the kernel was restarted"
                if content["ename"] == "Dropped"
                else "it sent no reply to the grader's request; the kernel was restarted"
            )
        if self.broken:
            return CellRun("hung", self.broken, outputs)
        if content.get("status") == "ok":
            return CellRun("ok", "", outputs, content.get("user_expressions", {}))
        text = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
        return CellRun("error", clean_output(text)[:500], outputs)

    def _collect(self, msg_id: str, end: float, outputs: list) -> str:
        """Gather the request's outputs until the kernel is idle: 'idle', 'timeout' or 'dead'."""
        import nbformat

        kc, km = self.session.kc, self.session.km
        size = sum(len(json.dumps(o)) for o in outputs)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return "timeout"
            if not km.is_alive():
                return "dead"
            if self._dropped():
                return "dropped"
            try:
                msg = kc.get_iopub_msg(timeout=min(1.0, left))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                return "idle"
            if kind == "clear_output":
                outputs.clear()
            if kind not in ("stream", "display_data", "execute_result", "error"):
                continue
            out = clean_output(nbformat.v4.output_from_msg(msg))
            size += len(json.dumps(out))
            if size > self.max_output:
                if not outputs or outputs[-1].get("text", "").find("[output truncated") < 0:
                    note = f"\n[output truncated by the grader at {self.max_output:,} bytes]\n"
                    outputs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
                continue
            if kind == "stream" and outputs and outputs[-1].get("name") == out.name:
                outputs[-1]["text"] += out.text
            else:
                outputs.append(out)

    def _reply(self, msg_id: str, wait: float) -> dict:
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if self._dropped():
                return {"status": "error", "ename": "Dropped", "evalue": "connection cut"}
            try:
                msg = self.session.kc.get_shell_msg(timeout=min(1.0, end - time.monotonic()))
            except queue.Empty:
                continue
            parent = msg["parent_header"].get("msg_id")
            if parent in self.replied:  # a reply to a request that was already answered
                self.forged[parent] = self.replied[parent]
            if parent == msg_id:
                self.replied[msg_id] = self.label
                return msg["content"]
        return {"status": "error", "ename": "NoReply", "evalue": "the kernel sent no reply"}

    def agent(
        self, fn: str, payload: dict, timeout: float, label: str = ""
    ) -> tuple[dict, dict[str, bytes]]:
        """Call the agent's `fn` (export or op) for `label` (a question id): its JSON reply and
        the files it handed over."""
        self.label = label
        if not self.alive:
            raise AgentError("the kernel is no longer running")
        tag = secrets.token_hex(8)
        payload = {**payload, "dir": self.session.out_inside, "tag": tag,
                   "max_bytes": self.max_bytes}  # fmt: skip
        expr = AGENT.format(fn=fn, payload=json.dumps(payload))
        run = self.execute("", timeout, silent=True, store_history=False,
                           user_expressions={"r": expr})  # fmt: skip
        if run.status != "ok":
            raise AgentError(run.message or run.status, run.status)
        value = run.user_expressions.get("r", {})
        try:
            text = ast.literal_eval(value["data"]["text/plain"])
            body = json.loads(text)
            assert isinstance(body, dict) and isinstance(body.get("blobs"), dict)
        except Exception:  # noqa: BLE001 - anything the kernel sent instead of our reply
            if value.get("status") == "error":
                raise AgentError(f"{value.get('ename')}: {value.get('evalue')}"[:300]) from None
            raise AgentError("the kernel's reply could not be read") from None
        return body, self._read_blobs(body["blobs"], tag)

    def _read_blobs(self, sizes: dict, tag: str) -> dict[str, bytes]:
        """The files named in the reply, read without following links, within the byte budget."""
        if sum(v for v in sizes.values() if type(v) is int) > self.max_bytes:
            raise AgentError(f"the value is larger than {self.max_bytes / 2**20:.0f} MB")
        blobs = {}
        folder = os.open(self.session.out_host, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name, size in sizes.items():
                if not (isinstance(name, str) and BLOB.fullmatch(name) and type(size) is int):
                    raise AgentError("the kernel's reply names files it may not")
                blobs[name] = _read_file(folder, f"{tag}-{name}", size)
        finally:
            os.close(folder)
        return blobs

    def drain(self, wait: float = 0.5) -> None:
        """Read what is left on the shell channel: a late second reply is still caught."""
        if self.alive:
            self._reply("", wait)

    def kill(self) -> None:
        if self.session is None:
            return
        km, kc, group = self.session.km, self.session.kc, self.session.group
        for monitor in self._monitors:
            monitor.close(linger=0)
        self._monitors = []
        kc.stop_channels()
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        try:
            km.shutdown_kernel(now=True)
        except Exception:  # noqa: S110, BLE001 - the process group is killed below either way
            pass
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if group is not None:
            group.remove()
        km.context.destroy(linger=0)
        self.session = None


def _read_file(folder: int, name: str, size: int) -> bytes:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError as err:
        raise AgentError(f"a handed-over file is missing or not a file ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size or st.st_nlink != 1:
            raise AgentError("a handed-over file is not what the reply says")
        chunks, left = [], size
        while left > 0:
            chunk = os.read(fd, min(left, 2**24))
            if not chunk:
                raise AgentError("a handed-over file is shorter than the reply says")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
        try:
            os.unlink(name, dir_fd=folder)
        except OSError:
            pass
