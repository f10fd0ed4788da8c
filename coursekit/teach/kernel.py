"""Execute a submission's cells in a kernel, with timeouts that hold and a guard before each check.

Each cell runs with a time limit (`timeout`), and the whole submission with another (`budget`).
When a cell runs out of time the kernel is interrupted; if it does not stop within a grace
period (a bare `except:` swallowing KeyboardInterrupt, code that ignores SIGINT) the kernel is
killed (the whole sandbox with it), a fresh one is started, the cells that had finished are run
again to rebuild the state (their outputs are not kept), and grading goes on with the next cell.
Output beyond `max_output` bytes per cell is dropped and says so. Used by `teach.grade`.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CellRun", "RunResult", "run_cells"]

GUARD_SOURCE = (Path(__file__).with_name("guard.py")).read_text(encoding="utf-8")
INSTALL = (
    "import sys as _s, types as _t\n"
    "_m = _t.ModuleType('_coursekit_guard')\n"
    "exec(compile({src!r}, '<coursekit-guard>', 'exec'), _m.__dict__)\n"
    "_s.modules['_coursekit_guard'] = _m\ndel _s, _t, _m"
)
GRACE_S = 10.0  # how long an interrupted cell may take to stop before the kernel is killed


@dataclass
class CellRun:
    """One cell: ok, error, timeout, dead (the kernel died) or not run."""

    status: str
    message: str = ""
    outputs: list = field(default_factory=list)
    user_expressions: dict = field(default_factory=dict)


@dataclass
class RunResult:
    """What ran: each cell's run, what the guard undid, and why the run stopped early."""

    cells: dict[int, CellRun] = field(default_factory=dict)
    undone: dict[int, list[str]] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)
    stopped: str = ""


def _collect(kc: Any, km: Any, msg_id: str, end: float, outputs: list, max_output: int) -> str:
    """Gather the cell's outputs until the kernel is idle again: 'idle', 'timeout' or 'dead'."""
    import nbformat

    size = sum(len(json.dumps(o)) for o in outputs)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return "timeout"
        if not km.is_alive():
            return "dead"
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
        out = nbformat.v4.output_from_msg(msg)
        size += len(json.dumps(out))
        if size > max_output:
            if not outputs or outputs[-1].get("text", "").find("[output truncated") < 0:
                note = f"\n[output truncated by the grader at {max_output:,} bytes]\n"
                outputs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
            continue
        if kind == "stream" and outputs and outputs[-1].get("name") == out.name:
            outputs[-1]["text"] += out.text
        else:
            outputs.append(out)


def _reply(kc: Any, msg_id: str, wait: float) -> dict:
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            msg = kc.get_shell_msg(timeout=max(0.1, end - time.monotonic()))
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]
    return {"status": "error", "ename": "NoReply", "evalue": "the kernel sent no reply"}


def execute(kc: Any, km: Any, code: str, timeout: float, max_output: int, **kw: Any) -> CellRun:
    """Run `code`; interrupt it at `timeout`, and report 'dead' if it will not stop."""
    msg_id = kc.execute(code, allow_stdin=False, stop_on_error=False, **kw)
    outputs: list = []
    state = _collect(kc, km, msg_id, time.monotonic() + timeout, outputs, max_output)
    if state == "dead":
        return CellRun("dead", "the kernel died (out of memory, os._exit, a signal ...)", outputs)
    if state == "timeout":
        km.interrupt_kernel()
        state = _collect(kc, km, msg_id, time.monotonic() + GRACE_S, outputs, max_output)
        acknowledged = state == "idle"
        message = f"the cell ran for more than {timeout:.0f} s and was interrupted"
        if not acknowledged:
            message += "; it ignored the interrupt, so the kernel was killed and restarted"
        return CellRun("timeout" if acknowledged else "hung", message, outputs)
    content = _reply(kc, msg_id, 30.0)
    if content.get("status") == "ok":
        return CellRun("ok", "", outputs, content.get("user_expressions", {}))
    text = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
    return CellRun("error", text[:500], outputs)


def _guard(kc: Any, km: Any, call: str, timeout: float = 60.0) -> CellRun:
    """Call the kernel-side guard through user_expressions (no transformers touch it)."""
    expr = f"__import__('sys').modules['_coursekit_guard'].{call}"
    run = execute(kc, km, "", min(60.0, timeout), 10**6, silent=True, store_history=False,
                  user_expressions={"g": expr})  # fmt: skip
    value = run.user_expressions.get("g", {})
    if run.status != "ok" or value.get("status") != "ok":
        return CellRun("error", f"{value.get('ename', run.status)}: {value.get('evalue', '')}")
    return CellRun("ok", ast.literal_eval(value["data"]["text/plain"]))


def _kill(km: Any, kc: Any) -> None:
    kc.stop_channels()
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    try:
        km.shutdown_kernel(now=True)
    except Exception:  # noqa: S110 - the process group is killed below either way
        pass
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _fresh(start_kernel: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
    km, kc = start_kernel()
    install = execute(kc, km, INSTALL.format(src=GUARD_SOURCE), 60.0, 10**6, silent=True,
                      store_history=False)  # fmt: skip
    started = _guard(kc, km, "start()")
    if install.status != "ok" or started.status != "ok":
        raise RuntimeError(
            f"the grader's guard could not start: {install.message}{started.message}"
        )
    return km, kc


def run_cells(
    nb: Any,
    roles: dict[int, str],
    start_kernel: Callable[[], tuple[Any, Any]],
    timeout: float,
    budget: float,
    max_output: int,
) -> RunResult:
    """Run the code cells of `nb` in order; roles[i] is 'answer' or 'check' for exercise cells."""
    result, done = RunResult(), []
    deadline = time.monotonic() + budget
    km, kc = _fresh(start_kernel)
    try:
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                result.stopped = f"the submission used up its time limit ({budget:.0f} s)"
                break
            run = _step(kc, km, i, roles.get(i, ""), cell.source, min(timeout, left), max_output)
            if run.status == "undone":
                result.undone[i] = run.outputs
                run = _step(kc, km, i, "ran guard", cell.source, min(timeout, left), max_output)
            cell.outputs, result.cells[i] = run.outputs, run
            if run.status == "dead":
                result.stopped = run.message
                break
            if run.status == "hung":
                run.status = "timeout"
                result.restarts.append(f"cell {i}: {run.message}")
                _kill(km, kc)
                try:
                    km, kc = _fresh(start_kernel)
                except Exception as err:  # noqa: BLE001 - reported, the class goes on
                    km = kc = None
                    result.stopped = f"the kernel could not be restarted: {err}"
                    break
                if not _replay(nb, done, roles, kc, km, timeout, deadline, max_output):
                    result.stopped = "the state could not be rebuilt after a restart"
                    break
            elif run.status != "timeout":
                done.append(i)
    finally:
        if km is not None:
            _kill(km, kc)
    return result


def _step(kc: Any, km: Any, i: int, role: str, code: str, timeout: float, cap: int) -> CellRun:
    """One cell, with the guard's bookkeeping before answers and its restoring before checks."""
    if role == "answer":
        _guard(kc, km, "before_answer()", timeout)
    if role == "check":
        guarded = _guard(kc, km, "before_check()", timeout)
        if guarded.status != "ok":
            message = (
                f"the grader could not restore the kernel before this check: {guarded.message}"
            )
            return CellRun("error", message)
        undone = json.loads(guarded.message)
        if undone:
            return CellRun("undone", "", undone)
    return execute(kc, km, code, timeout, cap)


def _replay(nb, done, roles, kc, km, timeout, deadline, cap) -> bool:  # noqa: ANN001
    """Run again the cells that had finished, in a fresh kernel; their outputs are dropped."""
    for i in done:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        run = _step(kc, km, i, roles.get(i, ""), nb.cells[i].source, min(timeout, left), cap)
        if run.status == "undone":
            run = _step(kc, km, i, "", nb.cells[i].source, min(timeout, left), cap)
        if run.status in ("dead", "hung", "timeout"):
            return False
    return True
