"""Grade submissions: run each in a sandboxed kernel, judge it in a separate checking process.

For every submission the grader rebuilds the lesson from the instructor's source notebook and
takes **only the answer cells** from the submission (the last copy of a duplicated one), so
editing or deleting a check cell, its hidden tests or the lesson's other cells changes nothing.

1. **Run** (`teach.run`): the notebook executes in a kernel inside bubblewrap
   (`teach.sandbox`: no network, no view of the sources, of the other submissions or of the
   reports; sized tmpfs; a cgroup for memory, processes and CPU), with a per-cell and a
   per-submission time limit. At each check cell the kernel runs only its visible part; just
   before it, the kernel hands over the values that check reads, by value (`teach.codec`).
2. **Judge** (`teach.verdict`): a separate checking process (`teach.checker`, sandboxed too)
   runs the self-checks and then the hidden tests on those values; the student's functions are
   called in the kernel with the checker's inputs, each call with its own time limit. The
   kernel never sees a hidden test and nothing it does can produce a verdict: it can only hand
   over values, which is what an answer is.

Errors, endless loops, dead kernels and malformed or refused files are reported per question
with a score of zero for what failed; the other questions and the other students are still
graded, and everything done for one student (including writing the executed copy and the
reports) happens inside that student's error handling. Reports (`teach.reports`) are written
after each submission.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cgroup import FALLBACK, probe
from .checking import CheckingProcess
from .collect import Caps, Submission, collect
from .kernel import Kernel, starter
from .notebooks import lesson_of, read_notebook
from .plan import LessonPlan, bound_names, plan_lesson
from .reports import write_executed, write_reports, write_submission_files
from .results import GradeReport, QuestionResult, clean_text
from .run import run_notebook
from .sandbox import Sizes, find_bwrap
from .verdict import judge, score

__all__ = ["CHECKS_FILE", "Limits", "grade", "grade_submission"]

CHECKS_FILE = "checks.py"  # a course's own self-checks, next to its source notebooks
# Answer text that names the kernel's or the grader's internals: shown to the instructor.
SUSPICIOUS = re.compile(
    r"get_ipython|input_transformers|ast_transformers|set_custom_exc|excepthook|settrace"
    r"|__builtins__|\bbuiltins\b|\b_ih\b|\bIn\[|\bOut\[|\.ipynb|meta_path|sys\.modules"
    r"|coursekit\.teach|zmq|jupyter_client|ipykernel|threading|ctypes|gc\.get_objects"
)


@dataclass
class Limits:
    """How long, how much memory, how many processes and how much output a submission may use."""

    timeout: float = 600.0  # seconds per cell, and per call of the student's code by a check
    budget: float = 3600.0  # seconds per submission, restarts and checks included
    memory_gb: float = 6.0  # the sandbox and all its children (cgroup); 0: no limit
    max_output_mb: float = 5.0  # output kept per cell, in the executed copy
    sandbox: bool = True  # False only when the instructor passes --unsafe-no-sandbox
    max_processes: int = 512  # processes and threads of the sandbox (cgroup pids.max)
    cpus: float = 0.0  # cores the sandbox may use (cgroup CPU quota); 0: no limit
    work_mb: float = 512.0  # the working folder (/tmp, HOME): a tmpfs of this size
    shm_mb: float = 256.0  # /dev/shm: a tmpfs of this size
    max_message_mb: float = 64.0  # the largest ZeroMQ message the grader accepts from a kernel
    max_value_mb: float = 1024.0  # values handed over for one check (tensors included)
    caps: Caps = Caps()  # submission files: bytes, cells, parse time

    def sizes(self, out: bool) -> Sizes:
        mb = 2**20
        return Sizes(
            work=int(self.work_mb * mb),
            shm=int(self.shm_mb * mb),
            out=int(self.max_value_mb * mb) + mb if out else 0,
            max_file=int(max(self.work_mb, self.max_value_mb) * mb),
            memory=int(self.memory_gb * 2**30),
            processes=self.max_processes,
            cpus=self.cpus,
        )


def _answer_cells(submission: Any) -> tuple[dict[str, Any], list[str]]:
    """The submission's answer cells by grade_id (the last copy wins), else by cell id."""
    found: dict[str, Any] = {}
    copies: dict[str, int] = {}
    for cell in submission.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        meta = meta if isinstance(meta, dict) else {}
        grade_id = meta.get("grade_id")
        if cell.get("cell_type") == "code" and meta.get("solution") and isinstance(grade_id, str):
            found[grade_id] = cell
            copies[grade_id] = copies.get(grade_id, 0) + 1
        if isinstance(cell.get("id"), str):
            found.setdefault("id:" + cell["id"], cell)
    return found, [g for g, n in copies.items() if n > 1]


def _assemble(source: Any, answers: dict[str, Any], plan: LessonPlan) -> Any:
    """The notebook the kernel runs: the lesson, the submission's answers, visible checks."""
    nb = copy.deepcopy(source)
    for check in plan.checks:
        q = check.question
        cell = nb.cells[q.answer_cell]
        theirs = answers.get(q.grade_id) or answers.get("id:" + cell.get("id", ""))
        cell.source = (
            clean_text(str(theirs.source), keep_escapes=True)
            if theirs is not None
            else f'raise RuntimeError("answer cell for {q.qid} is missing from the submission")'
        )
        nb.cells[q.check_cell].source = check.kernel_code
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _flags(plan: LessonPlan, answers: dict[str, Any], duplicated: list[str]) -> list[str]:
    """What the submission's text shows (the grader does not guess what the code did)."""
    flags = []
    context = {n for c in plan.checks for n in c.names} - {
        n for c in plan.checks for n in c.answer_names
    }
    for check in plan.checks:
        q, cell = check.question, answers.get(check.question.grade_id)
        if cell is None:
            continue
        text = str(cell.source)
        if SUSPICIOUS.search(text):
            flags.append(f"{q.qid}: the answer's text names kernel or grader internals")
        rebound = sorted((context - set(check.cell_names)) & set(bound_names(text)))
        if rebound:
            flags.append(f"{q.qid}: the answer rebinds {rebound}, which a check reads as context")
        if q.grade_id in duplicated:
            flags.append(
                f"{q.qid}: the answer cell appears more than once; the last copy was graded"
            )
    return flags


def _init(plan: LessonPlan, files: dict[str, Path]) -> dict:
    modules = {Path(name).stem: path.read_text(encoding="utf-8") for name, path in files.items()}
    return {"type": "init", "modules": modules, "imports": plan.imports, "defines": plan.defines}


def _executed(nb: Any, source: Any, plan: LessonPlan, parts: tuple, results: list) -> Any:
    """The run for the instructor: each check cell as written, with the checker's output."""
    import nbformat

    by_qid = {r.qid: r for r in results}
    for check in plan.checks:
        q = check.question
        cell = nb.cells[q.check_cell]
        cell.source = source.cells[q.check_cell].source
        text = "".join(p[q.qid].stdout for p in parts if q.qid in p)
        r = by_qid[q.qid]
        text += f"[grader] {q.qid}: {r.status} ({r.points:g}/{r.max_points:g})"
        text += f" {r.message}\n" + (f"{r.detail}\n" if r.detail else "")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=clean_text(text))]
    return nb


def _grade_loaded(
    sub: Submission, source: Path, source_nb: Any, plan: LessonPlan, limits: Limits,
    hidden: list[Path], files: dict[str, Path],
) -> tuple[GradeReport, Any]:  # fmt: skip
    questions = [c.question for c in plan.checks]
    report = GradeReport(sub.student, source.name, "graded", 0.0, sum(q.points for q in questions))
    if sub.nb is None:
        report.status = "refused" if sub.refused else "malformed"
        report.message = clean_text(sub.error)
        why = "the file was refused" if sub.refused else "the submission could not be read"
        report.questions = [QuestionResult(q.qid, 0.0, q.points, "missing", why) for q in questions]
        return report, None
    answers, duplicated = _answer_cells(sub.nb)
    report.flags += _flags(plan, answers, duplicated)
    nb = _assemble(source_nb, answers, plan)
    folder = Path(tempfile.mkdtemp(prefix="coursekit-grade-"))
    os.chmod(folder, 0o700)
    t0 = time.monotonic()
    deadline = t0 + limits.budget
    mb = 2**20
    kernel = Kernel(
        starter(
            folder,
            hidden,
            limits.sizes(out=True),
            int(limits.max_message_mb * mb),
            limits.sandbox,
            files,
        ),  # fmt: skip
        int(limits.max_output_mb * mb),
        int(limits.max_value_mb * mb),
    )
    checker = CheckingProcess(_init(plan, files), hidden, limits.sizes(out=False),
                              limits.sandbox, folder)  # fmt: skip
    try:
        checker.start()  # imports torch while the kernel runs
        checks = {c.question.check_cell: c for c in plan.checks}
        run = run_notebook(nb, kernel, checks, limits.timeout, deadline)
        parts = judge(plan, run, checker, kernel, limits.timeout, deadline)
        kernel.drain()
    finally:
        peak = (
            kernel.session.group.peak_memory() if kernel.session and kernel.session.group else None
        )
        kernel.kill()
        checker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    report.peak_memory_mb = round(peak / mb, 1) if peak else None
    if run.stopped:
        report.status, report.message = "kernel died", clean_text(run.stopped)
    report.flags += [f"restarted: {r}" for r in run.restarts]
    forged = set(kernel.forged.values())
    report.flags += [f"forged message: a second reply to a request for {q}" for q in sorted(forged)]
    report.questions = score(plan, answers, run, parts, forged)
    report.score = sum(r.points for r in report.questions)
    return report, _executed(nb, source_nb, plan, parts, report.questions)


def _source_for(sub: Submission, sources: dict[str, tuple]) -> Path | None:
    if sub.source_name in sources:
        return sources[sub.source_name][0]
    matching = [v[0] for name, v in sources.items() if lesson_of(name) == sub.lesson]
    if len(matching) == 1:
        return matching[0]
    return next(iter(sources.values()))[0] if len(sources) == 1 and sub.lesson is None else None


def _load_sources(sources: Path) -> tuple[dict[str, tuple], dict[str, Path]]:
    """Each source lesson read and planned, and the course's own checks module, if any."""
    folder = sources if sources.is_dir() else sources.parent
    paths = sorted(sources.glob("[0-9][0-9]_*.ipynb")) if sources.is_dir() else [sources]
    loaded = {}
    for p in paths:
        nb = read_notebook(p)
        loaded[p.name] = (p, nb, plan_lesson(nb, lesson_of(p), p.name))
    checks = folder / CHECKS_FILE
    return loaded, ({CHECKS_FILE: checks.resolve()} if checks.is_file() else {})


def _grade_one(sub: Submission, loaded: dict, files: dict, limits: Limits, hidden: list,
               out: Path) -> GradeReport:  # fmt: skip
    """One submission's report and files; nothing a submission does escapes as an exception."""
    source = _source_for(sub, loaded)
    name = clean_text(os.fsencode(sub.path.name).decode("utf-8", "replace"))
    if source is None:
        message = "no source lesson matches its metadata or its name (e.g. 02_transfer.ipynb)"
        report = GradeReport(sub.student, name, "unknown lesson", 0.0, 0.0, message=message)
    else:
        _, source_nb, plan = loaded[source.name]
        try:
            report, nb = _grade_loaded(sub, source, source_nb, plan, limits, hidden, files)
            if nb is not None:
                write_executed(out, report, nb)
        except Exception as err:  # noqa: BLE001 - one bad submission must not lose the others
            message = clean_text(f"{type(err).__name__}: {err}")[:1000]
            questions = [c.question for c in plan.checks]
            report = GradeReport(sub.student, source.name, "grader error", 0.0,
                                 sum(q.points for q in questions), message=message)  # fmt: skip
            report.questions = [
                QuestionResult(q.qid, 0.0, q.points, "not run", "the grader failed on this one")
                for q in questions
            ]
    try:
        write_submission_files(out, report)
    except Exception as err:  # noqa: BLE001
        report.flags.append(clean_text(f"its own report files could not be written: {err}"))
    return report


def grade(
    submissions: list[str | Path] | str | Path,
    sources: str | Path = "notebooks",
    out_dir: str | Path = "build/grades",
    timeout: float = 600,
    limits: Limits | None = None,
) -> list[GradeReport]:
    """Grade every submission (files, or folders of them) and write the class reports.

    sources: the instructor's source notebooks (with hidden tests): a folder or one notebook;
    a `checks.py` next to them holds the course's own self-checks (docs/instructors.md).
    timeout: seconds per cell; training cells need minutes, so the default is 600.
    limits: the other limits and whether to sandbox; without bubblewrap `SandboxUnavailable`
    is raised unless `limits.sandbox` is False.
    """
    limits = limits or Limits(timeout=timeout)
    limits.timeout = timeout
    if limits.sandbox:
        find_bwrap()
        why = probe()
        if why:
            print("note: " + FALLBACK.format(reason=why), flush=True)
    paths = [
        Path(p) for p in ([submissions] if isinstance(submissions, str | Path) else submissions)
    ]
    sources, out = Path(sources), Path(out_dir)
    hidden = [p.resolve() for p in [sources, out, *paths]]
    loaded, files = _load_sources(sources)  # all read before any kernel
    subs = collect(paths, limits.caps)
    reports: list[GradeReport] = []
    for sub in subs:
        print(f"grading {sub.student}: {clean_text(sub.path.name)!r} ...", flush=True)
        report = _grade_one(sub, loaded, files, limits, hidden, out)
        print(f"  {report.status}: {report.score:g}/{report.max_score:g}", flush=True)
        reports.append(report)
        try:
            write_reports(reports, out)
        except Exception as err:  # noqa: BLE001 - the per-submission files are written already
            print(f"  the class reports could not be written: {clean_text(err)}", flush=True)
    return reports


def grade_submission(
    path: str | Path, source: str | Path, student: str | None = None, limits: Limits | None = None
) -> tuple[GradeReport, Any]:
    """Grade one submission against one source notebook; returns the report and the run."""
    path, source = Path(path), Path(source)
    (sub,) = collect([path])
    sub.student = student or sub.student
    limits = limits or Limits()
    loaded, files = _load_sources(source)
    _, source_nb, plan = loaded[source.name]
    hidden = [source.resolve(), path.resolve()]
    return _grade_loaded(sub, source, source_nb, plan, limits, hidden, files)
