"""The `coursekit` command: `coursekit doctor | course | build | grade`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_doc = sub.add_parser("doctor", help="check versions, device, mode and offline assets")
    p_doc.add_argument("--offline", action="store_true", help="skip the network check")
    p_course = sub.add_parser("course", help="execute every notebook headless and time it")
    p_course.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    p_course.add_argument("--mode", choices=("quick", "full"), default="quick")
    p_course.add_argument("--out", type=Path, default=Path("build/notebooks"))
    p_course.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p_course.add_argument(
        "--max-steps",
        type=int,
        help="cut every training run to N steps and every data pass to N batches (a CPU check "
        "of full-mode memory: data keep full sizes)",
    )
    p_course.add_argument(
        "--ram-budget-gb", type=float, default=10.0, help="fail a notebook whose peak RSS is above"
    )
    p_build = sub.add_parser("build", help="write the student or solutions copy of the lessons")
    p_build.add_argument("kind", choices=("student", "solutions"))
    p_build.add_argument("sources", nargs="?", type=Path, default=Path("notebooks"))
    p_build.add_argument("--out", type=Path, help="default: build/student or build/solutions")
    p_build.add_argument(
        "--colab-dir", help="folder the Colab badges point at (default: --out); '' keeps them"
    )
    p_tag = sub.add_parser("tag", help="tag the exercises of source lessons (nbgrader metadata)")
    p_tag.add_argument("sources", nargs="?", type=Path, default=Path("notebooks"))
    p_grade = sub.add_parser("grade", help="run submissions against the hidden tests; report")
    p_grade.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders")
    p_grade.add_argument("--source", type=Path, default=Path("notebooks"), help="source lessons")
    p_grade.add_argument("--out", type=Path, default=Path("build/grades"))
    p_grade.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)

    if args.command == "doctor":
        from .checkup import doctor

        report = doctor(check_network=not args.offline)
        return 0 if report["torchvision_ops"] == "ok" else 1
    if args.command == "course":
        from .course import run_course

        runs = run_course(
            args.notebooks or None,
            args.out,
            args.mode,
            args.timeout,
            max_steps=args.max_steps,
            ram_budget_gb=args.ram_budget_gb,
        )
        return 0 if all(r.status == "ok" for r in runs) else 1
    if args.command == "build":
        from .teach import build

        for path in build(args.kind, args.sources, args.out, args.colab_dir):
            print(f"wrote {path}")
        return 0
    if args.command == "tag":
        from .teach.build import tag

        for name, qids in tag(args.sources).items():
            print(f"{name}: {len(qids)} exercises {', '.join(qids)}")
        return 0
    if args.command == "grade":
        from .teach import grade

        reports = grade(args.submissions, args.source, args.out, args.timeout)
        print(f"reports in {args.out}/ (grades.json, grades.csv, feedback/, executed/)")
        return 0 if reports else 1
    return 2  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":
    sys.exit(main())
