"""The class's grade reports: grades.json, grades.csv and one feedback file per submission.

Written by the grader after every submission, atomically, so a crash or Ctrl-C in the middle of
a class loses nothing already graded.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .grade import GradeReport

__all__ = ["write_reports"]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_reports(reports: list[GradeReport], out_dir: Path) -> None:
    """grades.json (everything), grades.csv (one row per submission) and feedback/*.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_dir / "grades.json", json.dumps([asdict(r) for r in reports], indent=2))
    qids = list(dict.fromkeys(q.qid for r in reports for q in r.questions))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", "notebook", "status", *qids, "score", "max_score", "flags"])
    for r in reports:
        points = {q.qid: q.points for q in r.questions}
        writer.writerow(
            [
                r.student,
                r.notebook,
                r.status,
                *(points.get(q, "") for q in qids),
                r.score,
                r.max_score,
                "; ".join(r.flags),
            ]
        )
    _atomic_write(out_dir / "grades.csv", buf.getvalue())
    feedback = out_dir / "feedback"
    feedback.mkdir(exist_ok=True)
    for r in reports:
        lines = [f"# {r.notebook}: {r.score:g} / {r.max_score:g}", ""]
        if r.message:
            lines += [f"**{r.status}**: {r.message}", ""]
        for q in r.questions:
            mark = "✓" if q.status == "passed" else "✗"
            lines.append(
                f"- {mark} {q.qid} ({q.points:g}/{q.max_points:g}) {q.status}"
                + (f": {q.message}" if q.message and q.status != "passed" else "")
            )
        _atomic_write(
            feedback / f"{r.student}__{Path(r.notebook).stem}.md", "\n".join(lines) + "\n"
        )
