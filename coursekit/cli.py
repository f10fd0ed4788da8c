"""The `coursekit` command: `coursekit doctor | course | build | grade | finetune | predict`.

Lesson 00 runs `coursekit doctor`; instructors use build / tag / grade (docs/instructors.md);
lesson 07 uses finetune / predict (and lesson 08's instruction data goes through them too).
"""

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
    p_course.add_argument(
        "notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb (learners' copies)"
    )
    p_course.add_argument("--mode", choices=("quick", "full"), default="quick")
    p_course.add_argument("--out", type=Path, default=Path("build/notebooks"))
    p_course.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p_course.add_argument(
        "--max-steps",
        type=int,
        help="a dry run: cut every training run to N steps and every evaluation to N batches (a "
        "CPU check of full-mode memory: data keep full sizes)",
    )
    p_course.add_argument(
        "--ram-budget-gb", type=float, default=10.0, help="fail a notebook whose peak RSS is above"
    )
    p_build = sub.add_parser("build", help="write the student or solutions copy of the lessons")
    p_build.add_argument("kind", choices=("student", "solutions"))
    p_build.add_argument("sources", nargs="?", type=Path, default=Path("notebooks/source"))
    p_build.add_argument("--out", type=Path, help="default: build/student or build/solutions")
    p_build.add_argument(
        "--solutions-data",
        type=Path,
        help="also write the worked solutions (JSON) here, for ck.exercises.solution "
        "(make notebooks: coursekit/exercises/solutions.json)",
    )
    p_build.add_argument(
        "--colab-dir", help="folder the Colab badges point at (default: --out); '' keeps them"
    )
    p_build.add_argument("--repo", help="OWNER/NAME of your published copy on GitHub")
    p_build.add_argument("--ref", help="the tag (or commit) learners install, e.g. v1.0.0")
    p_tag = sub.add_parser("tag", help="tag the exercises of source lessons (nbgrader metadata)")
    p_tag.add_argument("sources", nargs="?", type=Path, default=Path("notebooks/source"))
    p_grade = sub.add_parser("grade", help="run submissions against the hidden tests; report")
    p_grade.add_argument("submissions", nargs="*", type=Path, help="notebooks or folders")
    p_grade.add_argument(
        "--source", type=Path, default=Path("notebooks/source"), help="source lessons"
    )
    p_grade.add_argument("--out", type=Path, default=Path("build/grades"))
    p_grade.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p_grade.add_argument("--submission-timeout", type=int, default=3600, help="s per submission")
    p_grade.add_argument(
        "--memory-gb", type=float, default=6, help="memory of a sandbox and its children (0: none)"
    )
    p_grade.add_argument("--max-processes", type=int, default=512, help="per sandbox (0: none)")
    p_grade.add_argument("--cpus", type=float, default=0, help="cores per sandbox (0: no cap)")
    p_grade.add_argument("--max-output-mb", type=float, default=5, help="output per cell")
    p_grade.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run submissions without bubblewrap, as you, with your files (trusted code only)",
    )
    p_grade.add_argument("--verify", action="store_true", help="check --out against its manifest")
    _add_finetune_commands(sub)
    args = parser.parse_args(argv)

    if args.command == "doctor":
        from .doctor import doctor

        report = doctor(check_network=not args.offline)
        return 0 if report["ready"] else 1
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

        try:
            paths = build(args.kind, args.sources, args.out, args.colab_dir, args.repo, args.ref)
        except ValueError as err:
            print(f"coursekit build: {err}", file=sys.stderr)
            return 2
        if args.solutions_data is not None:
            from .teach.build import write_solution_data

            paths.append(write_solution_data(args.sources, args.solutions_data))
        for path in paths:
            print(f"wrote {path}")
        return 0
    if args.command == "tag":
        from .teach import lesson_of, read_notebook
        from .teach.build import lesson_paths, tag
        from .teach.lint import exercise_problems

        for name, qids in tag(args.sources).items():
            print(f"{name}: {len(qids)} exercises {', '.join(qids)}")
        problems = [
            f"{path.name}: {problem}"
            for path in lesson_paths(args.sources)
            for problem in exercise_problems(read_notebook(path), lesson_of(path))
        ]
        for problem in problems:  # tests/test_notebook_hygiene.py fails on these
            print(f"warning: {problem}", file=sys.stderr)
        return 0
    if args.command == "grade":
        return _grade(args)
    if args.command in ("finetune", "predict"):
        from .finetune.userdata import command_line_messages

        with command_line_messages():  # messages name --flags, not Python arguments
            return _run_finetune_command(args)
    return 2  # pragma: no cover - argparse enforces a command


def _add_finetune_commands(sub: argparse._SubParsersAction) -> None:
    """`coursekit finetune DATA --out DIR` and `coursekit predict DIR FILES...` (lesson 07)."""
    p_ft = sub.add_parser(
        "finetune",
        help="fine-tune on your image folder or CSV/TSV/JSONL file, or instruction data "
        "(JSONL with prompt/response or messages: lesson 08)",
    )
    p_ft.add_argument("data", help="a folder with one sub-folder per class, or a table of texts")
    p_ft.add_argument("--out", type=Path, required=True, help="folder for the model and report")
    p_ft.add_argument("--model", help="default: efficientnet_lite0 (images), minilm (texts)")
    p_ft.add_argument("--strategy", choices=("head", "unfreeze", "lora", "full"))
    p_ft.add_argument("--epochs", type=int)
    p_ft.add_argument("--lr", type=float)
    p_ft.add_argument("--batch-size", type=int)
    p_ft.add_argument("--image-size", type=int)
    p_ft.add_argument("--max-length", type=int, help="tokens per text")
    p_ft.add_argument("--train-per-class", type=int, help="at most this many per class")
    p_ft.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p_ft.add_argument("--weighted-loss", action=argparse.BooleanOptionalAction, default=None)
    p_ft.add_argument("--text-column")
    p_ft.add_argument("--label-column")
    p_ft.add_argument("--encoding", default="utf-8", help="of a text file (default utf-8)")
    p_ft.add_argument(
        "--skip-bad", action="store_true", help="leave out the unreadable images (all listed)"
    )
    p_ft.add_argument("--seed", type=int, default=0)
    p_pr = sub.add_parser(
        "predict", help="labels and probabilities (or generated answers) from a finetune folder"
    )
    p_pr.add_argument("model_dir", type=Path, help="the --out folder of `coursekit finetune`")
    p_pr.add_argument("inputs", nargs="+", help="image or text files, folders of them")
    p_pr.add_argument("--json", action="store_true", help="one JSON object per line")
    p_pr.add_argument(
        "--skip-bad",
        action="store_true",
        help="list unreadable inputs on stderr instead of as error lines in the output (exit "
        "status: 0 if every input was predicted, 1 if any could not be read)",
    )


def _run_finetune_command(args: argparse.Namespace) -> int:
    from .finetune import DataError, Predictor, finetune
    from .finetune.predict import print_predictions
    from .generative import command as llm

    try:
        if llm.is_instruction_command(args):  # instruction data (lesson 08)
            return llm.run(args)
        if args.command == "predict":
            out = Predictor(args.model_dir).predict(args.inputs, skip_bad=True)
            return print_predictions(out, args.json, args.skip_bad)
        result = finetune(
            args.data, args.out, model=args.model, strategy=args.strategy, epochs=args.epochs,
            lr=args.lr, batch_size=args.batch_size, augment=args.augment,
            weighted_loss=args.weighted_loss, image_size=args.image_size,
            max_length=args.max_length, train_per_class=args.train_per_class, seed=args.seed,
            text_column=args.text_column, label_column=args.label_column,
            encoding=args.encoding, skip_bad=args.skip_bad,
        )  # fmt: skip
    except (DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    m = result.metrics
    print(f"test accuracy {m['accuracy']:.3f} (95% CI {m['accuracy_ci'][0]:.3f}-"
          f"{m['accuracy_ci'][1]:.3f}); report: {result.files['report']}")  # fmt: skip
    return 0


def _grade(args: argparse.Namespace) -> int:
    from .teach import Limits, SandboxUnavailable, grade
    from .teach.reports import MANIFEST, verify_reports

    if args.verify:
        problems = verify_reports(args.out)
        print("\n".join(problems) or f"{args.out}: every report matches {MANIFEST}")
        return 1 if problems else 0
    if not args.submissions:
        print("coursekit grade: name the submissions (notebooks or folders)", file=sys.stderr)
        return 2
    limits = Limits(
        args.timeout,
        args.submission_timeout,
        args.memory_gb,
        args.max_output_mb,
        sandbox=not args.unsafe_no_sandbox,
        max_processes=args.max_processes,
        cpus=args.cpus,
    )
    try:
        reports = grade(args.submissions, args.source, args.out, args.timeout, limits)
    except SandboxUnavailable as err:
        print(f"coursekit grade: {err}", file=sys.stderr)
        return 2
    digest = (args.out / MANIFEST).read_bytes() if reports else b""
    print(
        f"reports in {args.out}/ (grades.json/.csv, gradebook.csv, feedback/, results/, executed/)"
    )
    if digest:
        import hashlib

        print(f"sha256 of {MANIFEST}: {hashlib.sha256(digest).hexdigest()} (keep it)")
    return 0 if reports else 1


if __name__ == "__main__":
    sys.exit(main())
