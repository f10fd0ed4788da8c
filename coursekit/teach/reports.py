"""The class's grade reports: for the instructor, for the learners, for Gradescope and for an LMS.

Per submission, written inside that submission's error handling:
- `feedback/<student>__<lesson>.md`: what to send back to the learner (no hidden tests);
- `results/<student>__<lesson>.json`: Gradescope's autograder `results.json` for it (`score`,
  `execution_time`, `output`, and per question a test with `name`, `number`, `score`,
  `max_score`, `status`, `output`, `visibility`), written also when the submission crashed;
- `executed/<student>__<lesson>.ipynb`: the run, with the checker's verdicts (instructor only:
  its check cells hold the hidden tests).

For the class, after every submission: `grades.json` (everything, instructor details included),
`grades.csv` (one row per submission), `gradebook.csv` (one row per student: per-question
points and the total, the shape LMS gradebooks import) and `MANIFEST.sha256`.

Written atomically, so a crash or Ctrl-C in the middle of a class loses nothing already graded.
`MANIFEST.sha256` lists the SHA-256 of every report file (the format `sha256sum -c` reads);
`verify_reports` (`coursekit grade --verify OUT`) says which files changed since the grader
wrote them. Keep a copy of the manifest (or its own checksum, printed at the end of a run)
somewhere the class cannot write, and compare against that copy. Every string is cleaned of
surrogates and control characters before it is written (`results.clean_text`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..runtime.files import atomic_write
from .collect import safe_name
from .results import GradeReport, clean_text

__all__ = [
    "MANIFEST",
    "executed_path",
    "gradescope_results",
    "verify_reports",
    "write_executed",
    "write_reports",
    "write_submission_files",
]

MANIFEST = "MANIFEST.sha256"
FOLDERS = ("feedback", "executed", "results")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = text.encode("utf-8", "replace").decode("utf-8")
    atomic_write(path, lambda tmp: tmp.write_text(clean, encoding="utf-8"))


def _stem(report: GradeReport) -> str:
    return f"{safe_name(report.student)}__{safe_name(Path(report.notebook).stem)}"


def executed_path(out_dir: Path, report: GradeReport) -> Path:
    """Where the executed copy of a submission goes."""
    return Path(out_dir) / "executed" / f"{_stem(report)}.ipynb"


def write_executed(out_dir: Path, report: GradeReport, nb: Any) -> None:
    import nbformat

    path = executed_path(out_dir, report)
    _write_text(path, nbformat.writes(nb))


def _feedback(r: GradeReport) -> str:
    lines = [f"# {clean_text(r.notebook)}: {r.score:g} / {r.max_score:g}", ""]
    if r.message:
        lines += [f"**{r.status}**: {clean_text(r.message)}", ""]
    for q in r.questions:
        mark = "✓" if q.status == "passed" else "✗"
        lines.append(
            f"- {mark} {q.qid} ({q.points:g}/{q.max_points:g}) {q.status}"
            + (f": {clean_text(q.message)}" if q.message and q.status != "passed" else "")
        )
    return "\n".join(lines) + "\n"


def gradescope_results(r: GradeReport) -> dict:
    """Gradescope's results.json for one submission (its "Autograder Specifications")."""
    tests = [
        {
            "name": q.qid,
            "number": str(i),
            "score": q.points,
            "max_score": q.max_points,
            "status": "passed" if q.status == "passed" else "failed",
            "output": clean_text(f"{q.status}: {q.message}" if q.message else q.status),
            "visibility": "visible",
        }
        for i, q in enumerate(r.questions, 1)
    ]
    output = f"{clean_text(r.notebook)}: {r.status}"
    if r.message:
        output += f": {clean_text(r.message)}"
    return {
        "score": r.score,
        "execution_time": round(r.seconds),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def write_submission_files(out_dir: Path, report: GradeReport) -> None:
    """The learner's feedback and Gradescope's results.json for one submission."""
    stem = _stem(report)
    _write_text(out_dir / "feedback" / f"{stem}.md", _feedback(report))
    _write_text(out_dir / "results" / f"{stem}.json",
                json.dumps(gradescope_results(report), indent=2))  # fmt: skip


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([clean_text(v) if isinstance(v, str) else v for v in row])
    return buf.getvalue()


def _grades_csv(reports: list[GradeReport]) -> str:
    qids = list(dict.fromkeys(q.qid for r in reports for q in r.questions))
    rows: list[list[Any]] = [
        ["student", "notebook", "status", *qids, "score", "max_score", "flags"]
    ]
    for r in reports:
        points = {q.qid: q.points for q in r.questions}
        row = [r.student, r.notebook, r.status, *(points.get(q, "") for q in qids)]
        rows.append([*row, r.score, r.max_score, "; ".join(r.flags)])
    return _csv(rows)


def _gradebook_csv(reports: list[GradeReport]) -> str:
    """One row per student: every question's points (empty if not handed in), and the total."""
    qids = sorted(dict.fromkeys(q.qid for r in reports for q in r.questions))
    students: dict[str, dict[str, float]] = {}
    for r in reports:
        students.setdefault(r.student, {}).update({q.qid: q.points for q in r.questions})
    rows: list[list[Any]] = [["student", *qids, "total"]]
    for student, points in students.items():
        rows.append([student, *(points.get(q, "") for q in qids), sum(points.values())])
    return _csv(rows)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_temp(path: Path) -> bool:
    """A write in progress (or one a killed grader left): `atomic_write`'s `.NAME.tmp-PID`."""
    return path.name.startswith(".") and path.name.rsplit("-", 1)[0].endswith(".tmp")


def _report_files(out_dir: Path) -> list[Path]:
    found = [out_dir / n for n in ("grades.json", "grades.csv", "gradebook.csv")]
    for folder in FOLDERS:
        found += sorted((out_dir / folder).glob("*"))
    return [p for p in found if p.is_file() and not _is_temp(p)]


def write_reports(reports: list[GradeReport], out_dir: Path) -> str:
    """grades.json, grades.csv, gradebook.csv and MANIFEST.sha256; returns the manifest's hash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / "grades.json", json.dumps([asdict(r) for r in reports], indent=2))
    _write_text(out_dir / "grades.csv", _grades_csv(reports))
    _write_text(out_dir / "gradebook.csv", _gradebook_csv(reports))
    lines = [f"{_sha256(p)}  {p.relative_to(out_dir).as_posix()}" for p in _report_files(out_dir)]
    _write_text(out_dir / MANIFEST, "\n".join(lines) + "\n")
    return _sha256(out_dir / MANIFEST)


def verify_reports(out_dir: str | Path) -> list[str]:
    """The report files that changed, appeared or vanished since the grader wrote the manifest."""
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return [f"{MANIFEST} is missing"]
    listed = dict(
        reversed(line.split("  ", 1)) for line in manifest.read_text().splitlines() if line
    )
    problems = [
        f"{name}: changed" if (out_dir / name).exists() else f"{name}: missing"
        for name, digest in listed.items()
        if not (out_dir / name).exists() or _sha256(out_dir / name) != digest
    ]
    on_disk = {p.relative_to(out_dir).as_posix() for p in _report_files(out_dir)}
    return problems + [
        f"{name}: not written by the grader" for name in sorted(on_disk - set(listed))
    ]
