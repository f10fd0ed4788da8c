"""Section 5: the whole course, headless, timed per notebook (`coursekit course` underneath).

Targets in quick mode on a 2-core CPU: every notebook under 3 minutes, the course under 12. In
full mode on a GPU it reports the course's time (no target). `notebooks` picks a subset (e.g.
["00_setup"]) for a quick check of the harness. Every row has the kernel's peak RSS; in full mode
a notebook above the 10 GB RAM budget fails. `max_steps` (`--max-steps 2`) is the full-mode check
on a CPU: full-mode data sizes, every loop cut to that many steps or batches.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from coursekit.course import RAM_BUDGET_GB, run_course

NOTEBOOK_LIMIT_S = 180.0
COURSE_LIMIT_S = 720.0


def run(
    mode: str = "quick",
    notebooks: list[str] | None = None,
    root: Path | None = None,
    max_steps: int | None = None,
) -> dict:
    root = root or Path(__file__).resolve().parent.parent
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if notebooks:
        paths = [p for p in paths if p.stem in notebooks or p.name in notebooks]
        if not paths:
            raise ValueError(f"no notebook named {notebooks} under {root / 'notebooks'}")
    saved = {k: os.environ.get(k) for k in ("COURSEKIT_MODE", "COURSEKIT_PROGRESS")}
    try:
        with tempfile.TemporaryDirectory() as out:
            runs = run_course(paths, out_dir=out, mode=mode, max_steps=max_steps)
    finally:  # run_course sets these for its kernels; do not leak them into later sections
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    rows = [
        {
            "notebook": r.name,
            "status": r.status,
            "seconds": round(r.seconds, 1),
            "under_3_min": r.seconds < NOTEBOOK_LIMIT_S,
            "peak_rss_gb": None if r.peak_rss_gb is None else round(r.peak_rss_gb, 2),
            **({"error": r.error} if r.error else {}),
        }
        for r in runs
    ]
    total = sum(r.seconds for r in runs)
    complete = len(paths) == len(list((root / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    return {
        "mode": mode,
        "max_steps": max_steps,
        "ram_budget_gb": RAM_BUDGET_GB,
        "rows": rows,
        "total_seconds": round(total, 1),
        "complete_course": complete,
        "all_ok": all(r.status == "ok" for r in runs),
        "targets_met": (
            complete
            and all(r["under_3_min"] for r in rows)
            and total < COURSE_LIMIT_S
            and all(r.status == "ok" for r in runs)
        )
        if mode == "quick"
        else None,
    }
