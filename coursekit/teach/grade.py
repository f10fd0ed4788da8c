"""Grade submissions: run each in a fresh kernel against the instructor's hidden tests.

For every submission the grader rebuilds the lesson from the instructor's source notebook and
takes **only the answer cells** from the submission. So editing or deleting a check cell, its
hidden tests or the lesson's other cells changes nothing. Each submission runs in a fresh
kernel, in an empty temporary folder, with a per-cell timeout suited to training (minutes); a
check passes only if its cell ran to the end (it must print a random token the submission never
sees). Errors, endless loops, dead kernels and malformed files are reported per question with a
score of zero for what failed; the other questions and the other students are still graded.
Reports (JSON, CSV, per-student feedback) are written by the grader, after each submission.
"""

from __future__ import annotations

import copy
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .notebooks import Question, find_questions, lesson_of, read_notebook
from .reports import write_reports

__all__ = ["GradeReport", "QuestionResult", "grade", "grade_submission", "write_reports"]

# Answer code that reaches for the kernel's or the grader's internals is flagged for a human look.
SUSPICIOUS = re.compile(
    r"get_ipython|input_transformers|set_custom_exc|excepthook|__builtins__|\bbuiltins\b"
    r"|\b_ih\b|\bIn\[|\bOut\[|\.ipynb|grades\.(json|csv)|coursekit\.teach|exercises\.core"
)


@dataclass
class QuestionResult:
    """One question: passed, failed, error, timeout, unanswered, missing or not run."""

    qid: str
    points: float
    max_points: float
    status: str
    message: str = ""


@dataclass
class GradeReport:
    """One submission's grade, per question."""

    student: str
    notebook: str
    status: str  # graded | malformed | unknown lesson | kernel died | grader error
    score: float
    max_score: float
    questions: list[QuestionResult] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    flags: list[str] = field(default_factory=list)


def _error_text(reply: dict[str, Any] | None) -> tuple[str, str]:
    if reply is None:
        return "not run", "the kernel stopped before this cell ran"
    content = reply.get("content", {})
    if content.get("status") == "ok":
        return "ok", ""
    ename, evalue = content.get("ename", "Error"), str(content.get("evalue", ""))
    if ename == "CellTimeout":
        return "timeout", evalue
    return "error", f"{ename}: {evalue}"[:500]


def _answer_cells(submission: Any) -> dict[str, Any]:
    """The submission's answer cells by grade_id (nbgrader metadata), falling back to cell id."""
    found: dict[str, Any] = {}
    for cell in submission.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
            found.setdefault(meta["grade_id"], cell)
        if cell.get("id"):
            found.setdefault("id:" + cell["id"], cell)
    return found


def _assemble(source: Any, answers: dict[str, Any], questions: list[Question], token: str) -> Any:
    """The notebook that is run: the source lesson with the submission's answers put in."""
    nb = copy.deepcopy(source)
    for q in questions:
        cell = nb.cells[q.answer_cell]
        theirs = answers.get(q.grade_id) or answers.get("id:" + cell.get("id", ""))
        cell.source = (
            theirs.source
            if theirs is not None
            else f'raise RuntimeError("answer cell for {q.qid} is missing from the submission")'
        )
        check = nb.cells[q.check_cell]
        check.source = check.source.rstrip() + f"\nprint({token!r})"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _run(nb: Any, workdir: Path, timeout: int) -> tuple[dict[int, dict], str]:
    """Execute `nb` in a fresh kernel in `workdir`; the execute reply of every cell that ran."""
    from nbclient import NotebookClient

    replies: dict[int, dict] = {}
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeout",
            "evalue": f"the cell ran for more than {timeout} s and was interrupted",
            "traceback": [],
        },
        resources={"metadata": {"path": str(workdir)}},
        on_cell_executed=lambda cell, cell_index, execute_reply: replies.__setitem__(
            cell_index, execute_reply
        ),
    )
    try:
        client.execute(cwd=str(workdir))
    except Exception as err:  # a dead kernel ends this submission, never the grader
        return replies, f"{type(err).__name__}: {str(err).strip()[:300]}"
    return replies, ""


def grade_submission(
    path: str | Path, source: str | Path, student: str | None = None, timeout: int = 600
) -> tuple[GradeReport, Any]:
    """Grade one submission against the source notebook; returns the report and the run notebook."""
    path, source = Path(path), Path(source)
    source_nb = read_notebook(source)
    questions = find_questions(source_nb, lesson_of(source))
    max_score = sum(q.points for q in questions)
    report = GradeReport(student or path.stem, source.name, "graded", 0.0, max_score)
    try:
        submission = read_notebook(path)
    except Exception as err:
        report.status, report.message = "malformed", str(err)
        report.questions = [
            QuestionResult(q.qid, 0.0, q.points, "missing", "the submission could not be read")
            for q in questions
        ]
        return report, None

    answers = _answer_cells(submission)
    for q in questions:
        cell = answers.get(q.grade_id)
        if cell is not None and SUSPICIOUS.search(cell.source):
            report.flags.append(f"{q.qid}: answer uses kernel/grader internals; review by hand")

    token = "coursekit-check-" + secrets.token_hex(16)
    nb = _assemble(source_nb, answers, questions, token)
    workdir = Path(tempfile.mkdtemp(prefix="coursekit-grade-"))
    t0 = time.perf_counter()
    try:
        replies, crash = _run(nb, workdir, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.seconds = time.perf_counter() - t0
    if crash:
        report.status, report.message = "kernel died", crash

    for q in questions:
        answer_status, answer_error = _error_text(replies.get(q.answer_cell))
        status, message = _error_text(replies.get(q.check_cell))
        printed = "".join(
            o.get("text", "") for o in nb.cells[q.check_cell].outputs if o.get("name") == "stdout"
        )
        if status == "ok" and token not in printed:
            status, message = "failed", "the check cell did not run to its end"
        elif status == "error":
            status = "failed"
        if answer_status in ("error", "timeout") and status != "ok":
            status, message = answer_status, f"your answer cell: {answer_error}"
        if status != "ok" and "NotImplementedError: Exercise" in message:
            status, message = "unanswered", "the exercise's stub is still in place"
        if q.grade_id not in answers and status != "ok":
            status, message = "missing", "no answer cell for this question in the submission"
        passed = status == "ok"
        report.questions.append(
            QuestionResult(
                q.qid,
                q.points if passed else 0.0,
                q.points,
                "passed" if passed else status,
                message,
            )
        )
    report.score = sum(r.points for r in report.questions)
    for cell in nb.cells:  # the executed copy for the instructor, without the token
        if cell.cell_type == "code":
            cell.source = cell.source.replace(f"\nprint({token!r})", "")
            for out in cell.outputs:
                if "text" in out:
                    out["text"] = out["text"].replace(token + "\n", "")
    return report, nb


def _submissions(paths: list[Path]) -> list[tuple[str, Path]]:
    """(student, path) pairs: a folder per student (`subs/alice/02_x.ipynb`) or files by name."""
    found = []
    for p in paths:
        if p.is_dir():
            for nb in sorted(p.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb.parts:
                    continue
                rel = nb.relative_to(p)
                found.append((rel.parts[0] if len(rel.parts) > 1 else nb.stem, nb))
        else:
            found.append((p.stem, p))
    return found


def _source_for(path: Path, sources: list[Path]) -> Path | None:
    try:
        lesson = lesson_of(path)
    except ValueError:
        return sources[0] if len(sources) == 1 else None
    return next((s for s in sources if lesson_of(s) == lesson), None)


def grade(
    submissions: list[str | Path] | str | Path,
    sources: str | Path = "notebooks",
    out_dir: str | Path = "build/grades",
    timeout: int = 600,
) -> list[GradeReport]:
    """Grade every submission (files, or folders of them) and write the class reports.

    sources: the instructor's source notebooks (with hidden tests): a folder or one notebook.
    timeout: seconds per cell; training cells need minutes, so the default is 600.
    """
    import nbformat

    if isinstance(submissions, str | Path):
        submissions = [submissions]
    sources = Path(sources)
    source_paths = sorted(sources.glob("[0-9][0-9]_*.ipynb")) if sources.is_dir() else [sources]
    out = Path(out_dir)
    (out / "executed").mkdir(parents=True, exist_ok=True)
    reports: list[GradeReport] = []
    for student, path in _submissions([Path(p) for p in submissions]):
        source = _source_for(path, source_paths)
        print(f"grading {student}: {path.name} ...", flush=True)
        if source is None:
            report = GradeReport(
                student,
                path.name,
                "unknown lesson",
                0.0,
                0.0,
                message="name submissions like the lesson, e.g. 02_transfer.ipynb",
            )
            nb = None
        else:
            try:
                report, nb = grade_submission(path, source, student, timeout)
            except Exception as err:  # one bad submission must not lose the others' results
                report = GradeReport(
                    student,
                    source.name,
                    "grader error",
                    0.0,
                    0.0,
                    message=f"{type(err).__name__}: {err}",
                )
                nb = None
        if nb is not None:
            nbformat.write(nb, out / "executed" / f"{student}__{source.name}")
        print(f"  {report.status}: {report.score:g}/{report.max_score:g}", flush=True)
        reports.append(report)
        write_reports(reports, out)
    return reports
