"""Run the whole course headless: execute every notebook, keep the executed copies, time each.

This is what `make course` (and `coursekit course`) does. It is also how an instructor checks,
before class, that every notebook still runs with today's library versions.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NotebookRun", "format_table", "run_course", "run_notebook"]


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    status: str  # "ok" or "FAILED"
    seconds: float
    error: str = ""


def run_notebook(path: Path, out_dir: Path, timeout: int = 900) -> NotebookRun:
    """Execute `path` in a fresh kernel (cwd = its folder) and write the result to `out_dir`."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    t0 = time.perf_counter()
    status, error = "ok", ""
    try:
        client.execute()
    except Exception as err:  # keep going: one broken notebook must not hide the others
        status = "FAILED"
        error = str(err).strip().splitlines()[-1][:200] if str(err).strip() else repr(err)
        if not hasattr(err, "ename"):
            error = error or traceback.format_exc(limit=1)
    seconds = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    return NotebookRun(path.stem, status, seconds, error)


def format_table(runs: list[NotebookRun]) -> str:
    """A markdown table of per-notebook status and time, with the total."""
    lines = ["| notebook | status | seconds |", "|---|---|---:|"]
    for r in runs:
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} |")
    lines.append(
        f"| **total** | {sum(r.status == 'ok' for r in runs)}/{len(runs)} ok | "
        f"{sum(r.seconds for r in runs):.1f} |"
    )
    for r in runs:
        if r.error:
            lines.append(f"\n{r.name}: {r.error}")
    return "\n".join(lines)


def run_course(
    notebooks: list[Path] | None = None,
    out_dir: str | Path = "build/notebooks",
    mode: str = "quick",
    timeout: int = 900,
) -> list[NotebookRun]:
    """Execute the notebooks (default: notebooks/*.ipynb in order) in `mode`; print a table."""
    if notebooks is None:
        notebooks = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(
            "no notebooks found (looked for notebooks/NN_*.ipynb); run this "
            "from the repository root or name the notebooks."
        )
    os.environ["COURSEKIT_MODE"] = mode
    os.environ.setdefault("COURSEKIT_PROGRESS", "0")  # keep executed notebooks readable
    out = Path(out_dir)
    runs = []
    for path in notebooks:
        print(f"running {path} ({mode} mode) ...", flush=True)
        run = run_notebook(Path(path), out, timeout)
        print(f"  {run.status} in {run.seconds:.1f} s", flush=True)
        runs.append(run)
    table = format_table(runs)
    print("\n" + table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "course_report.md").write_text(table + "\n")
    return runs
