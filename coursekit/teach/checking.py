"""The grader's side of the checking process: start it, send it checks, broker its requests.

`CheckingProcess` starts `python -m coursekit.teach.checker` in its own sandbox (and cgroup),
sends it the course's checks and, for each part of each question, the check code and the values
the kernel handed over. While a part runs, each request of the checker (call a student's
function, read an attribute of an object kept in the kernel) is carried to the kernel's agent
with its own time limit (`Kernel.agent`), and the answer carried back. The checker's own time
is limited too: a part that runs longer is stopped, the process restarted for the next part.
Used by `teach.grade`.
"""

from __future__ import annotations

import base64
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .frames import read_frame, write_frame
from .kernel import AgentError, Kernel, standalone
from .sandbox import Sizes, find_bwrap, launcher

__all__ = ["CheckingProcess", "PartResult"]

MAX_REQUESTS = 100_000  # requests of one check to the kernel (an endless remote iterator stops)


@dataclass
class PartResult:
    """How one part (visible or hidden) of one question's check ended."""

    status: str  # ok | failed | error | unanswered | timeout
    message: str = ""
    detail: str = ""
    stdout: str = ""
    remote: str = ""  # the type of error the student's code raised, if that ended it
    line: int | None = None
    calls: list[str] = field(default_factory=list)


class _Pipe:
    """Reads frames from the checker's stdout, with a deadline that stops a stuck checker."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.fd, self.buffer = proc, proc.stdout.fileno(), b""

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 2**20)
            if not chunk:
                return b""
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    deadline: float = 0.0


class CheckingProcess:
    """One submission's checking process, restarted when a part had to be stopped."""

    def __init__(
        self, init: dict, hidden: list[Path], sizes: Sizes, sandbox: bool, folder: Path
    ) -> None:
        self.init, self.hidden, self.sizes, self.sandbox = init, hidden, sizes, sandbox
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.group: Any = None
        self.note = ""
        self.holds: set[str] = set()  # questions whose values the current process holds
        self.ready = False
        self.peak = 0

    def start(self) -> None:
        command = [sys.executable, "-c", standalone("checker") + "_m.main()"]
        run = Path(tempfile.mkdtemp(prefix="c-", dir=self.folder))
        if self.sandbox:
            argv, self.group, self.note = launcher(find_bwrap(), self.hidden, self.sizes,
                                                   command, run)  # fmt: skip
        else:
            argv = command
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=run)  # fmt: skip
        self.pipe = _Pipe(self.proc)
        self.holds, self.ready = set(), False
        self._send(self.init)

    def _send(self, header: dict, blobs: dict[str, bytes] | None = None) -> None:
        write_frame(self.proc.stdin, header, blobs)

    def _wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        self.pipe.deadline = time.monotonic() + timeout
        header, _ = read_frame(self.pipe)
        if header.get("type") != "ready":
            raise RuntimeError(f"the checking process could not start: {header.get('message')}")
        self.ready = True

    def run(
        self,
        qid: str,
        part: str,
        code: str,
        values: tuple[dict, dict[str, bytes]] | None,
        assigned: list[str],
        kernel: Kernel,
        timeout: float,
        names: list[str] = (),
        until: float = float("inf"),
    ) -> PartResult:
        """Run one part; `values` (the export's JSON body and files) if this process lacks them,
        of which only `names` (what the check reads) are passed on: a kernel that hands over more
        (a forged reply naming `ck`) cannot replace what the checking process imports itself."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            self._wait_ready(max(timeout, 120.0))
            header = {"type": "run", "qid": qid, "part": part, "code": code, "assigned": assigned}
            blobs = None
            if qid not in self.holds and values is not None:
                body, blobs = values
                given, errors = body.get("values"), body.get("errors")
                given, errors = (v if isinstance(v, dict) else {} for v in (given, errors))
                header["values"] = {k: v for k, v in given.items() if k in names}
                header["errors"] = {k: v for k, v in errors.items() if k in names}
                self.holds.add(qid)
            self._send(header, blobs)
            return self._serve(kernel, timeout, qid, until)
        except (TimeoutError, EOFError, BrokenPipeError, OSError, ValueError) as err:
            self.stop()
            if isinstance(err, TimeoutError):
                return PartResult("timeout", f"the check ran for more than {timeout:.0f} s")
            return PartResult("error", f"the checking process stopped ({type(err).__name__})")

    def _serve(self, kernel: Kernel, timeout: float, qid: str, until: float) -> PartResult:
        """Carry the checker's requests until it is done: its own time is limited to `timeout`
        (time spent in the kernel aside), every request to `timeout`, the whole to `until`."""
        calls: list[str] = []
        spent = 0.0
        start = time.monotonic()
        while True:
            self.pipe.deadline = min(start + spent + timeout, until)
            header, blobs = read_frame(self.pipe)
            if header.get("type") == "done":
                return PartResult(header.get("status", "error"), header.get("message", ""),
                                  header.get("detail", ""), header.get("stdout", ""),
                                  header.get("remote", ""), header.get("line"), calls)  # fmt: skip
            if header.get("type") != "request":
                raise ValueError("unexpected frame")
            t0 = time.monotonic()
            calls.append(str(header.get("op")))
            if len(calls) > MAX_REQUESTS or t0 >= until:
                raise TimeoutError
            reply, files = self._carry(header, blobs, kernel, min(timeout, until - t0), qid)
            spent += time.monotonic() - t0
            self._send(reply, files)

    def _carry(self, header: dict, blobs: dict, kernel: Kernel, timeout: float, qid: str) -> tuple:
        """Have the kernel do what the checker asked; the answer (or the error) by value."""
        request = {k: header[k] for k in ("op", "id", "args", "kwargs")}
        request["blobs"] = {k: base64.b64encode(v).decode("ascii") for k, v in blobs.items()}
        try:
            body, files = kernel.agent("op", request, timeout, qid)
        except AgentError as err:
            kind = "Timeout" if err.args[1:] and err.args[1] in ("timeout", "hung") else "NoAnswer"
            if err.args[1:] and err.args[1] == "hung":
                kernel.kill()  # it ignored the interrupt; nothing more can be asked of it
            return {"type": "reply", "error": {"type": kind, "message": str(err.args[0])}}, {}
        if "error" in body:
            return {"type": "reply", "error": body["error"]}, {}
        return {"type": "reply", "value": body.get("value")}, files

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self.group is not None:
            self.peak = max(self.peak, self.group.peak_memory() or 0)
            self.group.remove()
            self.group = None
        self.proc = None
