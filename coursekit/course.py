"""Run the whole course headless: execute every notebook, keep the executed copies, time each.

This is what `make course` (and `coursekit course`) does. It is also how an instructor checks,
before class, that every notebook still runs with today's library versions.

Each run records the kernel's peak resident memory (RSS): the host RAM the notebook needed. A
notebook above `ram_budget_gb` (10 GB: a free Colab runtime has about 12.7 GB) fails. With
`max_steps` (`coursekit course --mode full --max-steps 2`) each kernel starts in a dry run
(`training.limits`, installed by a start-up line before the first cell): every training run stops
after that many optimizer steps and every prediction pass after that many batches, while the data
keep their full-mode sizes and shapes: a CPU checks that full mode fits in memory without the
hours of training it would otherwise take to find out.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = [
    "RAM_BUDGET_GB",
    "NotebookRun",
    "format_table",
    "kernel_arguments",
    "run_course",
    "run_notebook",
]

RAM_BUDGET_GB = 10.0


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    status: str  # "ok", "FAILED", "OVER RAM" or "OVER RAM and FAILED"
    seconds: float
    error: str = ""
    peak_rss_gb: float | None = None  # the kernel's (and its children's) peak resident memory


class _PeakRSS:
    """Samples a process tree's resident memory in a thread; `peak` is the largest total seen.

    On Linux the kernel's own high-water mark (VmHWM in /proc) is read as well, so a peak
    between two samples of the kernel process is not missed.
    """

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self.pid = interval, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            total = proc.memory_info().rss
            for child in proc.children(recursive=True):
                total += child.memory_info().rss
            hwm = Path(f"/proc/{self.pid}/status")
            if hwm.exists():
                line = next(x for x in hwm.read_text().splitlines() if x.startswith("VmHWM"))
                total = max(total, int(line.split()[1]) * 1024)
            self.peak = max(self.peak, total)
        except (psutil.Error, OSError, StopIteration):
            pass  # the kernel is starting or gone

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.pid is not None:
                self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self.pid is not None:
            self.sample()
        self._stop.set()
        self._thread.join()


def kernel_arguments(max_steps: int | None) -> list[str]:
    """The kernel's command-line arguments: under `max_steps`, a start-up line that installs the
    dry run (`training.limits.install_dry_run`) before the notebook's first cell."""
    if max_steps is None:
        return []
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    line = f"from coursekit.training.limits import install_dry_run; install_dry_run({max_steps})"
    return [f"--IPKernelApp.exec_lines={line}"]


def run_notebook(
    path: Path,
    out_dir: Path,
    timeout: int = 900,
    ram_budget_gb: float = RAM_BUDGET_GB,
    max_steps: int | None = None,
) -> NotebookRun:
    """Execute `path` in a fresh kernel (cwd = its folder) and write the result to `out_dir`.

    The kernel's peak RSS is measured; above `ram_budget_gb` the run's status is "OVER RAM" (or
    "OVER RAM and FAILED" when a cell raised too; the error then starts with the peak).
    `max_steps`: the kernel runs as a dry run of that many steps (see the module docstring).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    rss = _PeakRSS()

    def found_kernel(**_: object) -> None:  # nbclient hook: the kernel has started
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        rss.pid = getattr(process, "pid", None)

    def measure(**_: object) -> None:  # after every cell, while the kernel is alive
        rss.sample()

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=kernel_arguments(max_steps),
        resources={"metadata": {"path": str(path.parent)}},
        on_notebook_start=found_kernel,
        on_cell_executed=measure,
    )
    t0 = time.perf_counter()
    status, error = "ok", ""
    rss.start()
    try:
        client.execute()
    except Exception as err:  # keep going: one broken notebook must not hide the others
        status = "FAILED"
        error = str(err).strip().splitlines()[-1][:200] if str(err).strip() else repr(err)
        if not hasattr(err, "ename"):
            error = error or traceback.format_exc(limit=1)
    seconds = time.perf_counter() - t0
    rss.stop()
    peak = rss.peak / 1e9 if rss.peak else None
    if peak is not None and peak > ram_budget_gb:  # over budget, whether it finished or not
        over = f"peak RSS {peak:.2f} GB > budget {ram_budget_gb:g} GB"
        failed = status == "FAILED"
        status = "OVER RAM and FAILED" if failed else "OVER RAM"
        error = f"{over}; {error}" if failed else over
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    return NotebookRun(path.stem, status, seconds, error, peak)


def format_table(runs: list[NotebookRun]) -> str:
    """A markdown table of per-notebook status and time, with the total."""
    lines = ["| notebook | status | seconds | peak RSS (GB) |", "|---|---|---:|---:|"]
    for r in runs:
        rss = "n/a" if r.peak_rss_gb is None else f"{r.peak_rss_gb:.2f}"
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {rss} |")
    peaks = [r.peak_rss_gb for r in runs if r.peak_rss_gb is not None]
    lines.append(
        f"| **total** | {sum(r.status == 'ok' for r in runs)}/{len(runs)} ok | "
        f"{sum(r.seconds for r in runs):.1f} | {max(peaks, default=0):.2f} (max) |"
    )
    for r in runs:
        if r.error:
            lines.append(f"\n{r.name}: {r.error}")
    return "\n".join(lines)


@contextmanager
def _fresh_checkpoint_folder() -> Iterator[None]:
    """`$COURSEKIT_CHECKPOINTS` set to a new temporary folder for one notebook, then restored: a
    run cut short by `max_steps` is never resumed by a real one (runtime/drive.py)."""
    before = os.environ.get("COURSEKIT_CHECKPOINTS")
    with tempfile.TemporaryDirectory(prefix="coursekit-checkpoints-") as folder:
        os.environ["COURSEKIT_CHECKPOINTS"] = folder
        try:
            yield
        finally:
            os.environ.pop("COURSEKIT_CHECKPOINTS")
            if before is not None:
                os.environ["COURSEKIT_CHECKPOINTS"] = before


def run_course(
    notebooks: list[Path] | None = None,
    out_dir: str | Path = "build/notebooks",
    mode: str = "quick",
    timeout: int = 900,
    max_steps: int | None = None,
    ram_budget_gb: float = RAM_BUDGET_GB,
) -> list[NotebookRun]:
    """Execute the notebooks (default: notebooks/*.ipynb in order) in `mode`; print a table.

    `max_steps` runs every kernel as a dry run of that many steps (see the module docstring).
    """
    if notebooks is None:
        notebooks = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(
            "no notebooks found (looked for notebooks/NN_*.ipynb); run this "
            "from the repository root or name the notebooks."
        )
    kernel_arguments(max_steps)  # a bad max_steps fails before any notebook runs
    os.environ["COURSEKIT_MODE"] = mode
    os.environ.setdefault("COURSEKIT_PROGRESS", "0")  # keep executed notebooks readable
    out = Path(out_dir)
    runs = []
    for path in notebooks:
        cut = f", max {max_steps} steps per loop" if max_steps else ""
        print(f"running {path} ({mode} mode{cut}) ...", flush=True)
        with _fresh_checkpoint_folder() if max_steps is not None else nullcontext():
            run = run_notebook(Path(path), out, timeout, ram_budget_gb, max_steps=max_steps)
        rss = "" if run.peak_rss_gb is None else f", peak RSS {run.peak_rss_gb:.2f} GB"
        print(f"  {run.status} in {run.seconds:.1f} s{rss}", flush=True)
        runs.append(run)
    table = format_table(runs)
    print("\n" + table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "course_report.md").write_text(table + "\n")
    return runs
