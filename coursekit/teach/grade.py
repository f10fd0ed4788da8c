"""Grade submissions: run each in a sandboxed kernel against the instructor's hidden tests.

For every submission the grader rebuilds the lesson from the instructor's source notebook and
takes **only the answer cells** from the submission (the last copy of a duplicated one). So
editing or deleting a check cell, its hidden tests or the lesson's other cells changes nothing.
Each submission's kernel runs in bubblewrap (`teach.sandbox`: no network, no view of the sources,
of the other submissions or of the reports, its own PID namespace, memory and output limits),
with a per-cell and a per-submission time limit (`teach.kernel`); before each check cell a guard
undoes what the answer did to the kernel and re-imports the checks (`teach.guard`). A check
passes only if its cell ran to the end (it must print a random token the submission never sees).
Errors, endless loops, dead kernels and malformed files are reported per question with a score
of zero for what failed; the other questions and the other students are still graded. Reports
(JSON, CSV, feedback, and a checksum manifest) are written by the grader after each submission.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write
from .collect import Submission, collect
from .kernel import run_cells
from .notebooks import Question, find_questions, lesson_of, read_notebook
from .reports import executed_path, write_reports
from .results import GradeReport, QuestionResult
from .sandbox import find_bwrap, kernel_starter

__all__ = ["Limits", "grade", "grade_submission"]

# Answer code that reaches for the kernel's or the grader's internals is flagged for a human look.
SUSPICIOUS = re.compile(
    r"get_ipython|input_transformers|ast_transformers|set_custom_exc|excepthook|settrace"
    r"|__builtins__|\bbuiltins\b|\b_ih\b|\bIn\[|\bOut\[|\.ipynb|grades\.(json|csv)"
    r"|coursekit\.teach|_coursekit_guard|exercises\.core|sys\.modules|\bCHECKS\b"
)


@dataclass
class Limits:
    """How long, how much memory and how much output a submission may use."""

    timeout: float = 600.0  # seconds per cell
    budget: float = 3600.0  # seconds per submission, restarts included
    memory_gb: float = 0.0  # virtual memory of the kernel (RLIMIT_AS); 0: no limit
    max_output_mb: float = 5.0  # per cell, in the executed copy; also the size of a file written
    sandbox: bool = True  # False only when the instructor passes --unsafe-no-sandbox


def _answer_cells(submission: Any) -> tuple[dict[str, Any], list[str]]:
    """The submission's answer cells by grade_id (the last copy wins), else by cell id."""
    found: dict[str, Any] = {}
    copies: dict[str, int] = {}
    for cell in submission.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if cell.get("cell_type") == "code" and meta.get("solution") and isinstance(grade_id, str):
            found[grade_id] = cell
            copies[grade_id] = copies.get(grade_id, 0) + 1
        if cell.get("id"):
            found.setdefault("id:" + cell["id"], cell)
    return found, [g for g, n in copies.items() if n > 1]


def _assemble(source: Any, answers: dict[str, Any], questions: list[Question], token: str) -> Any:
    """The notebook that is run: the source lesson with the submission's answers put in."""
    nb = copy.deepcopy(source)
    for q in questions:
        cell = nb.cells[q.answer_cell]
        theirs = answers.get(q.grade_id) or answers.get("id:" + cell.get("id", ""))
        cell.source = (
            str(theirs.source)
            if theirs is not None
            else f'raise RuntimeError("answer cell for {q.qid} is missing from the submission")'
        )
        check = nb.cells[q.check_cell]
        check.source = check.source.rstrip() + f"\nprint({token!r})"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _score(q: Question, cells: dict, nb: Any, token: str, stopped: str) -> tuple[str, str]:
    answer, check = cells.get(q.answer_cell), cells.get(q.check_cell)
    if check is None:
        return "not run", stopped or "the kernel stopped before this cell ran"
    printed = "".join(o.get("text", "") for o in check.outputs if o.get("name") == "stdout")
    status, message = check.status, check.message
    if status == "ok" and token not in printed:
        status, message = "failed", "the check cell did not run to its end"
    elif status == "error":
        status = "failed"
    if answer is not None and answer.status in ("error", "timeout") and status != "ok":
        status, message = answer.status, f"your answer cell: {answer.message}"
    if status != "ok" and "NotImplementedError: Exercise" in message:
        status, message = "unanswered", "the exercise's stub is still in place"
    return status, message


def _grade_loaded(sub: Submission, source: Path, source_nb: Any, limits: Limits,
                  hidden: list[Path]) -> tuple[GradeReport, Any]:  # fmt: skip
    questions = find_questions(source_nb, lesson_of(source))
    report = GradeReport(sub.student, source.name, "graded", 0.0, sum(q.points for q in questions))
    if sub.nb is None:
        report.status, report.message = "malformed", sub.error
        report.questions = [
            QuestionResult(q.qid, 0.0, q.points, "missing", "the submission could not be read")
            for q in questions
        ]
        return report, None
    answers, duplicated = _answer_cells(sub.nb)
    for q in questions:
        cell = answers.get(q.grade_id)
        if cell is not None and SUSPICIOUS.search(str(cell.source)):
            report.flags.append(f"{q.qid}: answer uses kernel/grader internals; review by hand")
        if q.grade_id in duplicated:
            report.flags.append(
                f"{q.qid}: the answer cell appears more than once; the last copy was graded"
            )
    token = "coursekit-check-" + secrets.token_hex(16)
    nb = _assemble(source_nb, answers, questions, token)
    roles = {q.answer_cell: "answer" for q in questions} | {
        q.check_cell: "check" for q in questions
    }
    root = Path(tempfile.mkdtemp(prefix="coursekit-grade-"))
    (root / "private").mkdir()
    t0 = time.perf_counter()
    try:
        starter = kernel_starter(
            root / "private", hidden, limits.memory_gb, limits.max_output_mb, limits.sandbox
        )
        run = run_cells(nb, roles, starter, limits.timeout, limits.budget,
                        int(limits.max_output_mb * 2**20))  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.seconds = time.perf_counter() - t0
    if run.stopped:
        report.status, report.message = "kernel died", run.stopped
    report.flags += [f"restarted: {r}" for r in run.restarts]
    for q in questions:
        status, message = _score(q, run.cells, nb, token, run.stopped)
        if q.check_cell in run.undone:
            report.flags.append(
                f"{q.qid}: before the check the grader undid: "
                + "; ".join(run.undone[q.check_cell])
            )
        if q.grade_id not in answers and status != "ok":
            status, message = "missing", "no answer cell for this question in the submission"
        passed = status == "ok"
        report.questions.append(QuestionResult(
            q.qid, q.points if passed else 0.0, q.points, "passed" if passed else status, message
        ))  # fmt: skip
    report.score = sum(r.points for r in report.questions)
    for cell in nb.cells:  # the executed copy for the instructor, without the token
        if cell.cell_type == "code":
            cell.source = cell.source.replace(f"\nprint({token!r})", "")
            for out in cell.outputs:
                if "text" in out:
                    out["text"] = out["text"].replace(token + "\n", "")
    return report, nb


def grade_submission(
    path: str | Path, source: str | Path, student: str | None = None, limits: Limits | None = None
) -> tuple[GradeReport, Any]:
    """Grade one submission against the source notebook; returns the report and the run notebook."""
    path, source = Path(path), Path(source)
    (sub,) = collect([path])
    sub.student = student or sub.student
    limits = limits or Limits()
    return _grade_loaded(
        sub, source, read_notebook(source), limits, [source.resolve(), path.resolve()]
    )


def _source_for(sub: Submission, sources: dict[str, tuple[Path, Any]]) -> Path | None:
    if sub.source_name in sources:
        return sources[sub.source_name][0]
    matching = [p for name, (p, _) in sources.items() if lesson_of(name) == sub.lesson]
    if len(matching) == 1:
        return matching[0]
    return next(iter(sources.values()))[0] if len(sources) == 1 and sub.lesson is None else None


def grade(
    submissions: list[str | Path] | str | Path,
    sources: str | Path = "notebooks",
    out_dir: str | Path = "build/grades",
    timeout: float = 600,
    limits: Limits | None = None,
) -> list[GradeReport]:
    """Grade every submission (files, or folders of them) and write the class reports.

    sources: the instructor's source notebooks (with hidden tests): a folder or one notebook.
    timeout: seconds per cell; training cells need minutes, so the default is 600.
    limits: the other limits (per submission, memory, output) and whether to sandbox; without
    bubblewrap `SandboxUnavailable` is raised unless `limits.sandbox` is False.
    """
    limits = limits or Limits(timeout=timeout)
    limits.timeout = timeout
    if limits.sandbox:
        find_bwrap()
    paths = [
        Path(p) for p in ([submissions] if isinstance(submissions, str | Path) else submissions)
    ]
    sources = Path(sources)
    source_paths = sorted(sources.glob("[0-9][0-9]_*.ipynb")) if sources.is_dir() else [sources]
    out = Path(out_dir)
    hidden = [p.resolve() for p in [sources, out, *paths]]
    loaded = {p.name: (p, read_notebook(p)) for p in source_paths}  # all read before any kernel
    subs = collect(paths)
    reports: list[GradeReport] = []
    for sub in subs:
        print(f"grading {sub.student}: {sub.path.name!r} ...", flush=True)
        report, nb = _grade_one(sub, loaded, limits, hidden)
        if nb is not None:
            import nbformat

            atomic_write(executed_path(out, report), lambda tmp, nb=nb: nbformat.write(nb, tmp))
        print(f"  {report.status}: {report.score:g}/{report.max_score:g}", flush=True)
        reports.append(report)
        write_reports(reports, out)
    return reports


def _grade_one(sub: Submission, loaded: dict, limits: Limits, hidden: list[Path]) -> tuple:
    """One submission's report; nothing a submission does escapes as an exception."""
    source = _source_for(sub, loaded)
    if source is None:
        message = "no source lesson matches its metadata or its name (e.g. 02_transfer.ipynb)"
        name = os.fsencode(sub.path.name).decode("utf-8", "replace")
        return GradeReport(sub.student, name, "unknown lesson", 0.0, 0.0, message=message), None
    try:
        return _grade_loaded(sub, source, loaded[source.name][1], limits, hidden)
    except Exception as err:  # one bad submission must not lose the others' results
        message = f"{type(err).__name__}: {err}"
        return GradeReport(
            sub.student, source.name, "grader error", 0.0, 0.0, message=message
        ), None
