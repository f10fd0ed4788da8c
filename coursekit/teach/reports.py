"""The class's grade reports: grades.json, grades.csv, feedback files and a checksum manifest.

Written by the grader after every submission, atomically, so a crash or Ctrl-C in the middle of
a class loses nothing already graded. `MANIFEST.sha256` lists the SHA-256 of every report file
(the format `sha256sum -c` reads); `verify_reports` (`coursekit grade --verify OUT`) says which
files changed since the grader wrote them. Keep a copy of the manifest (or its own checksum,
printed at the end of a run) somewhere the class cannot write, and compare against that copy.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path

from ..files import atomic_write
from .collect import safe_name
from .results import GradeReport

__all__ = ["MANIFEST", "executed_path", "verify_reports", "write_reports"]

MANIFEST = "MANIFEST.sha256"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", errors="replace"))


def _stem(report: GradeReport) -> str:
    return f"{safe_name(report.student)}__{safe_name(Path(report.notebook).stem)}"


def executed_path(out_dir: Path, report: GradeReport) -> Path:
    """Where the executed copy of a submission goes."""
    return Path(out_dir) / "executed" / f"{_stem(report)}.ipynb"


def _csv(reports: list[GradeReport]) -> str:
    qids = list(dict.fromkeys(q.qid for r in reports for q in r.questions))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", "notebook", "status", *qids, "score", "max_score", "flags"])
    for r in reports:
        points = {q.qid: q.points for q in r.questions}
        row = [r.student, r.notebook, r.status, *(points.get(q, "") for q in qids)]
        writer.writerow([*row, r.score, r.max_score, "; ".join(r.flags)])
    return buf.getvalue()


def _feedback(r: GradeReport) -> str:
    lines = [f"# {r.notebook}: {r.score:g} / {r.max_score:g}", ""]
    if r.message:
        lines += [f"**{r.status}**: {r.message}", ""]
    for q in r.questions:
        mark = "✓" if q.status == "passed" else "✗"
        lines.append(
            f"- {mark} {q.qid} ({q.points:g}/{q.max_points:g}) {q.status}"
            + (f": {q.message}" if q.message and q.status != "passed" else "")
        )
    return "\n".join(lines) + "\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_temp(path: Path) -> bool:
    """A write in progress (or one a killed grader left): `atomic_write`'s `.NAME.tmp-PID`."""
    return path.name.startswith(".") and path.name.rsplit("-", 1)[0].endswith(".tmp")


def _report_files(out_dir: Path) -> list[Path]:
    found = [out_dir / "grades.json", out_dir / "grades.csv"]
    for folder in ("feedback", "executed"):
        found += sorted((out_dir / folder).glob("*"))
    return [p for p in found if p.is_file() and not _is_temp(p)]


def write_reports(reports: list[GradeReport], out_dir: Path) -> str:
    """grades.json, grades.csv, feedback/*.md and MANIFEST.sha256; returns the manifest's hash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / "grades.json", json.dumps([asdict(r) for r in reports], indent=2))
    _write_text(out_dir / "grades.csv", _csv(reports))
    (out_dir / "feedback").mkdir(exist_ok=True)
    for r in reports:
        _write_text(out_dir / "feedback" / f"{_stem(r)}.md", _feedback(r))
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
