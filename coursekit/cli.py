"""The `coursekit` command: `coursekit doctor`, `coursekit course`."""

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
    args = parser.parse_args(argv)

    if args.command == "doctor":
        from .checkup import doctor

        report = doctor(check_network=not args.offline)
        return 0 if report["torchvision_ops"] == "ok" else 1
    if args.command == "course":
        from .course import run_course

        runs = run_course(args.notebooks or None, args.out, args.mode, args.timeout)
        return 0 if all(r.status == "ok" for r in runs) else 1
    return 2  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":
    sys.exit(main())
