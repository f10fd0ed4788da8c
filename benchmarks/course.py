"""Section 5: the whole course, headless, timed per notebook (`coursekit course` underneath).

The budget (issue 22), quick mode on an idle 2-core CPU, from a fresh clone: every notebook at
most 3 minutes (08, the generative lesson, at most 4), the whole course at most 15. "Fresh clone"
means cold caches: the run points `COURSEKIT_DATA` at a new empty folder (the feature caches and
the de-quantized chat model are rebuilt by the first notebook that needs them; every model and
dataset comes from an installed package, so nothing is downloaded). `cold=False` reuses the
caches, to time the notebooks alone.

A timing is only a budget figure when the machine was idle: every notebook's row records its
wall seconds, the CPU seconds of its kernel (user + system, children included) and how many
cores other processes kept busy meanwhile (`common.Contention`). When other processes used more
than `common.CONTENDED_CORES`, the run is marked `contended` and `targets_met` is None: a timing
under load says nothing about the budget, either way (re-measure on an idle machine).

In full mode on a GPU it reports the course's time (no target). `notebooks` picks a subset (e.g.
["00_setup"]) for a quick check of the harness. Every row has the kernel's peak RSS; in full mode
a notebook above the 10 GB RAM budget fails. `max_steps` (`--max-steps 2`) is the full-mode check
on a CPU: full-mode data sizes, every loop cut to that many steps or batches.
"""

from __future__ import annotations

import os
import resource
import tempfile
from contextlib import ExitStack
from pathlib import Path

from coursekit.course import RAM_BUDGET_GB, run_course

from .common import Contention

NOTEBOOK_LIMIT_S = 180.0
LIMIT_S = {"08": 240.0}  # lesson number -> its own limit (the generative lesson)
COURSE_LIMIT_S = 900.0
ENV = ("COURSEKIT_MODE", "COURSEKIT_PROGRESS", "COURSEKIT_DATA")


def limit_for(notebook: str) -> float:
    """The budget of one notebook, in seconds, by its stem (e.g. "08_instruction_tuning")."""
    return LIMIT_S.get(notebook[:2], NOTEBOOK_LIMIT_S)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_one(path: Path, out: str, mode: str, max_steps: int | None) -> dict:
    """Run one notebook in its own kernel: its row, with CPU seconds and the contention."""
    cpu0 = _children_cpu_seconds()
    with Contention() as contention:
        (r,) = run_course([path], out_dir=out, mode=mode, max_steps=max_steps)
    return {
        "notebook": r.name,
        "status": r.status,
        "seconds": round(r.seconds, 1),
        "cpu_seconds": round(_children_cpu_seconds() - cpu0, 1),  # the kernel, once reaped
        "limit_s": limit_for(r.name),
        "within_limit": r.seconds <= limit_for(r.name),
        "other_cores": contention.record()["other_cores"],
        "peak_rss_gb": None if r.peak_rss_gb is None else round(r.peak_rss_gb, 2),
        **({"error": r.error} if r.error else {}),
    }


def run(
    mode: str = "quick",
    notebooks: list[str] | None = None,
    root: Path | None = None,
    max_steps: int | None = None,
    cold: bool = True,
) -> dict:
    from .common import CONTENDED_CORES

    root = root or Path(__file__).resolve().parent.parent
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if notebooks:
        paths = [p for p in paths if p.stem in notebooks or p.name in notebooks]
        if not paths:
            raise ValueError(f"no notebook named {notebooks} under {root / 'notebooks'}")
    saved = {k: os.environ.get(k) for k in ENV}
    try:
        with ExitStack() as stack:
            out = stack.enter_context(tempfile.TemporaryDirectory())
            if cold:  # a fresh clone: empty caches, filled by the first notebook that needs them
                caches = stack.enter_context(tempfile.TemporaryDirectory(prefix="coursekit-cold-"))
                os.environ["COURSEKIT_DATA"] = caches
            rows = [_run_one(p, out, mode, max_steps) for p in paths]
    finally:  # run_course sets these for its kernels; do not leak them into later sections
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    total = sum(r["seconds"] for r in rows)
    complete = len(paths) == len(list((root / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    contended = any(r["other_cores"] > CONTENDED_CORES for r in rows)
    all_ok = all(r["status"] == "ok" for r in rows)
    met = complete and all_ok and all(r["within_limit"] for r in rows) and total <= COURSE_LIMIT_S
    return {
        "mode": mode,
        "max_steps": max_steps,
        "cold_caches": cold,
        "ram_budget_gb": RAM_BUDGET_GB,
        "rows": rows,
        "total_seconds": round(total, 1),
        "total_cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
        "course_limit_s": COURSE_LIMIT_S,
        "complete_course": complete,
        "all_ok": all_ok,
        "contended": contended,
        # a budget verdict only in quick mode, on an idle machine, with no loop cut short
        "targets_met": met if mode == "quick" and not contended and not max_steps else None,
    }
