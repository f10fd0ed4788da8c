"""Section 10: what grading one submission costs, against the grader this one replaced.

The submission is the solutions copy of lesson 03 in quick mode. The grader that judged inside
the student's kernel (`coursekit/teach` at commit `BASELINE`, its in-kernel guard included) and
today's grader (sandboxed kernel, values handed over, a separate checking process) grade it side
by side in this run, interleaved (old, new, old, new ...), each as its own process, on the same
lesson, the same library (the baseline's grader files are dropped into a copy of today's
coursekit) and the same machine. Reported: wall-clock and CPU seconds per submission (median
over repeats; CPU: what the whole machine spent during each grading, since the sandbox's kernels
run outside this process's tree of children; so the machine must be quiet, which is sampled
before and after and reported), the score each gave (today's grader must give full marks; the
baseline cannot judge every check today's lesson holds), and the ratios new / old, whose target
is at most 1.5. The baseline needs the repository's history (`git`); without it the section
says so.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import CONTENDED_CORES, busy_seconds

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "ff8bc93"  # the last commit whose grader judged inside the student's kernel
OLD_FILES = ("__init__", "grade", "kernel", "guard", "sandbox", "collect", "reports", "results")
TARGET = 1.5
LESSON = "03_head_replacement"
DRIVER = (
    "import sys\nfrom coursekit.teach import Limits, grade\n"
    "(r,) = grade([sys.argv[1]], sys.argv[2], sys.argv[3], 600, Limits(timeout=600))\n"
    "print('SCORE', r.score, r.max_score, r.status)\n"
)


def _baseline(folder: Path) -> Path:
    """A folder for PYTHONPATH: today's coursekit with the baseline's grader files in teach/."""
    copy = folder / "baseline"
    shutil.copytree(ROOT / "coursekit", copy / "coursekit",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    teach = copy / "coursekit" / "teach"
    for name in OLD_FILES:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE}:coursekit/teach/{name}.py"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"the baseline grader ({BASELINE}) is not in this checkout's history: "
                f"{done.stderr.strip()[:200]}"
            )
        (teach / f"{name}.py").write_text(done.stdout)
    return copy


def _smoke_lesson(folder: Path) -> Path:
    """A one-exercise lesson for --smoke (checks the harness in seconds, not a figure)."""
    import nbformat

    from coursekit.teach import tag_exercises

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("data = [1, 2, 3]"),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\ntotal = sum(data)\n### END SOLUTION"),
        nbformat.v4.new_code_cell(
            "assert total == 6\n### BEGIN HIDDEN TESTS\nassert type(total) is int\n"
            "### END HIDDEN TESTS"
        ),
    ]
    path = folder / "source" / "98_smoke.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(tag_exercises(nb), path)
    return path


def _quiet_cores(seconds: float = 5.0) -> float:
    """Cores the machine keeps busy while nothing of ours runs (sampled for `seconds`)."""
    busy0, t0 = busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    return (busy_seconds() - busy0) / (time.perf_counter() - t0)


def _grade_once(pythonpath: Path, submission: Path, source: Path, out: Path) -> dict:
    """One grading, as its own process: wall seconds, and the CPU seconds the whole machine
    spent meanwhile. The sandbox's kernels and checking processes run outside this process's
    tree of reaped children (their namespace is killed, not waited for), so the machine's busy
    time is what counts them; `run` checks that the machine is otherwise quiet."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "COURSEKIT_MODE": "quick"}
    cpu0, t0 = busy_seconds(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(submission), str(source), str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=out.parent,
    )
    seconds, cpu = time.perf_counter() - t0, busy_seconds() - cpu0
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("SCORE")), "")
    if not line:
        raise RuntimeError(f"the grader failed: {(done.stderr or done.stdout)[-500:]}")
    _, score, max_score, status = line.split(maxsplit=3)
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "cpu_seconds": cpu, "score": float(score),
            "max_score": float(max_score), "status": status}  # fmt: skip


def run(smoke: bool = False, repeats: int = 3) -> dict:
    from coursekit.teach import build

    quiet = [_quiet_cores(1.0 if smoke else 5.0)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = _smoke_lesson(tmp) if smoke else ROOT / "notebooks" / "source" / f"{LESSON}.ipynb"
        (submission,) = build("solutions", source, tmp / "solutions", "")
        contenders = {"in-kernel verdict (before)": _baseline(tmp), "checking process (now)": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in contenders}
        for i in range(1 if smoke else repeats):
            for name, path in contenders.items():
                runs[name].append(_grade_once(path, submission, source, tmp / f"out-{i}"))
    quiet.append(_quiet_cores(1.0 if smoke else 5.0))
    rows = [
        {
            "grader": name,
            "seconds": round(statistics.median(r["seconds"] for r in results), 1),
            "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in results), 1),
            "score": f"{results[0]['score']:g}/{results[0]['max_score']:g}",
            "repeats": len(results),
        }
        for name, results in runs.items()
    ]
    ratio = rows[1]["seconds"] / rows[0]["seconds"]
    cpu_ratio = rows[1]["cpu_seconds"] / rows[0]["cpu_seconds"]
    # Today's grader must give the solutions full marks; the baseline's score is reported (it
    # cannot judge every check today's lesson holds, which if anything shortens its time).
    full = all(r["score"] == r["max_score"] for r in runs["checking process (now)"])
    return {
        "lesson": "a one-exercise smoke lesson" if smoke else f"{LESSON} (quick mode)",
        "baseline": BASELINE,
        "rows": rows,
        "ratio": round(ratio, 2),
        "cpu_ratio": round(cpu_ratio, 2),
        "target": TARGET,
        "met": max(ratio, cpu_ratio) <= TARGET and full,
        "full_marks": full,
        # others' load, sampled before and after the gradings (during them, every busy core
        # is counted as theirs): replaces the harness's own estimate, which counts the kernels
        "conditions": {
            "other_cores": round(max(quiet), 2),
            "contended": max(quiet) > CONTENDED_CORES,
            "quiet_samples": quiet,
        },
    }
