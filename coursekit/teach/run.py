"""Execute a submission's notebook in its kernel and collect what each check will need.

The notebook the grader runs is the instructor's lesson with the submission's answer cells put
in; at each check cell the kernel runs only the check's visible part. Just before a check cell,
the kernel's agent hands over the values of the names that check reads (`CheckPlan.names`), so
the checking process later judges the state a learner's own run would have had at that point.

Each cell has a time limit (`timeout`) and the whole submission another (`deadline`). When a
cell ignores the interrupt, the kernel (the whole sandbox) is killed, a fresh one is started,
the cells that had finished run again to rebuild the state (their outputs are not kept, the
values of their checks are handed over again), and the run goes on with the next cell. A kernel
that dies (out of memory, `os._exit`) is restarted the same way.
Used by `teach.grade`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .kernel import AgentError, CellRun, Kernel
from .plan import CheckPlan

__all__ = ["RunResult", "run_notebook"]


@dataclass
class RunResult:
    """What ran: each cell, each check's handed-over values (or why not), restarts, the end."""

    cells: dict[int, CellRun] = field(default_factory=dict)
    values: dict[str, tuple[dict, dict[str, bytes]]] = field(default_factory=dict)
    value_errors: dict[str, str] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)
    stopped: str = ""


def _hand_over(kernel: Kernel, plan: CheckPlan, result: RunResult, timeout: float) -> None:
    qid = plan.question.qid
    try:
        result.values[qid] = kernel.agent("export", {"names": plan.names}, timeout, qid)
        result.value_errors.pop(qid, None)
    except AgentError as err:
        result.values.pop(qid, None)
        result.value_errors[qid] = (
            f"the values for this check could not be handed over: {err.args[0]}"
        )


def run_notebook(
    nb: Any, kernel: Kernel, checks: dict[int, CheckPlan], timeout: float, deadline: float
) -> RunResult:
    """Run the code cells of `nb` in order; `checks` maps a check cell's index to its plan."""
    result, done = RunResult(), []
    kernel.start()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            result.stopped = "the submission used up its time limit"
            break
        if i in checks:
            _hand_over(kernel, checks[i], result, min(timeout, left))
        if kernel.broken:  # handing the values over cut the connection
            run = CellRun("hung", kernel.broken)
        else:
            run = kernel.execute(cell.source, min(timeout, left))
        cell.outputs, result.cells[i] = run.outputs, run
        if run.status in ("hung", "dead"):
            run.status = "timeout" if run.status == "hung" else "dead"
            result.restarts.append(f"cell {i}: {run.message}")
            kernel.kill()
            try:
                kernel.start()
            except Exception as err:  # noqa: BLE001 - reported, the class goes on
                result.stopped = f"the kernel could not be restarted: {err}"
                break
            if not _replay(nb, done, kernel, checks, result, timeout, deadline):
                result.stopped = "the state could not be rebuilt after a restart"
                break
        elif run.status != "timeout":
            done.append(i)
    return result


def _replay(nb, done, kernel, checks, result, timeout, deadline) -> bool:  # noqa: ANN001
    """Run again the cells that had finished, in a fresh kernel; their outputs are dropped."""
    for i in done:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if i in checks:
            _hand_over(kernel, checks[i], result, min(timeout, left))
        run = kernel.execute(nb.cells[i].source, min(timeout, left))
        if run.status in ("dead", "hung", "timeout"):
            return False
    return True
