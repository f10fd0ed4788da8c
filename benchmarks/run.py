"""One command for the whole benchmark suite: `python -m benchmarks.run`.

    python -m benchmarks.run                      # every section (CPU: ~10 min + the course)
    python -m benchmarks.run --only loops,data    # some sections (merged into the same results)
    python -m benchmarks.run --smoke              # tiny sizes, seconds per section (tests use it)
    python -m benchmarks.run --only course --notebooks 00_setup   # check one notebook
    python -m benchmarks.run --doc docs/performance.md            # also refresh the doc's tables
    python -m benchmarks.run --render --doc docs/performance.md   # re-render saved results only

Sections: loops, caching, strategies, data, gpu, course, grading (the grader, before and now:
needs bubblewrap and the repository's history), text (on a CPU only with --only), photos, sft.
Results go to benchmarks/results/<device>[-smoke].json and .md; a run with --only keeps the other
sections already in that JSON, so sections can be (re)measured one at a time. Each section records
when it ran and how busy the machine was (other processes' CPU use): contended figures are marked.
"""

from __future__ import annotations

import os

# Be a good neighbour on a shared machine: idle OpenMP threads sleep instead of spinning (this
# must be set before torch starts its thread pool). Recorded in the results.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from . import (  # noqa: E402
    caching,
    common,
    datapath,
    gpu,
    grading,
    loops,
    report,
    sft,
    strategy_costs,
    text_full,
)
from . import course as course_section  # noqa: E402
from . import own_photos as photos_section  # noqa: E402

SECTIONS = (
    "loops",
    "caching",
    "strategies",
    "data",
    "gpu",
    "course",
    "grading",
    "text",
    "photos",
    "sft",
)
CPU_SKIPS = ("text",)  # about 30 min on a 2-core CPU: run it with --only text
RESULTS = Path(__file__).resolve().parent / "results"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--only",
        default=None,
        help=f"comma list of {SECTIONS} (default: all; on a CPU all but text)",
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness only")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the best available)")
    p.add_argument("--out", default=str(RESULTS), help="folder for the .json and .md results")
    p.add_argument("--name", default=None, help="results file name (default: <device>[-smoke])")
    p.add_argument("--compile", action="store_true", help="gpu section: also time torch.compile")
    p.add_argument("--course-mode", default=None, help="quick or full (default: full on CUDA)")
    p.add_argument("--notebooks", default=None, help="course section: comma list, e.g. 00_setup")
    p.add_argument(
        "--max-steps", type=int, default=None, help="course section: cut every loop (CPU check)"
    )
    p.add_argument(
        "--warm-caches",
        action="store_true",
        help="course section: reuse $COURSEKIT_DATA (default: cold caches, as a fresh clone)",
    )
    p.add_argument("--doc", default=None, help="also refresh the tables of this markdown doc")
    p.add_argument(
        "--render", action="store_true", help="measure nothing: re-render the existing results"
    )
    args = p.parse_args(argv)
    if args.only is None:
        on_gpu = args.device != "cpu" and torch.cuda.is_available()
        args.only = ",".join(s for s in SECTIONS if on_gpu or s not in CPU_SKIPS)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def _section(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    s = common.sizes(args.smoke)
    if name == "loops":
        return loops.run(s, device)
    if name == "caching":
        return caching.run(s, device)
    if name == "strategies":
        return strategy_costs.run(s, device)
    if name == "data":
        return datapath.run(s, device)
    if name == "gpu":
        return gpu.run(s, device, with_compile=args.compile)
    if name == "text":
        return text_full.run(device, smoke=args.smoke)
    if name == "photos":
        return photos_section.run(s, device)
    if name == "sft":
        return sft.run(device, smoke=args.smoke)
    if name == "grading":
        return grading.run(smoke=args.smoke)
    mode = args.course_mode or ("full" if device.type == "cuda" else "quick")
    notebooks = args.notebooks.split(",") if args.notebooks else None
    if args.smoke and notebooks is None:
        notebooks = ["00_setup"]
    return course_section.run(mode, notebooks, max_steps=args.max_steps, cold=not args.warm_caches)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    from coursekit.runtime.device import pick_device

    device = pick_device(args.device)
    name = args.name or f"{device.type}{'-smoke' if args.smoke else ''}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    results = {
        "machine": common.machine(),
        "smoke": args.smoke,
        "command": "python -m benchmarks.run "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "sections": previous.get("sections", {}) if previous.get("smoke") == args.smoke else {},
    }
    if args.render:
        if not previous:
            raise SystemExit(f"--render: no results at {json_path} yet; run the benchmark first")
        results = previous
    for section in [s for s in SECTIONS if s in args.only and not args.render]:
        print(f"== {section} ...", flush=True)
        with common.Contention() as c:
            try:
                data = _section(section, args, device)
            except Exception as err:  # one failing section must not lose the others' figures
                traceback.print_exc()
                data = {"error": f"{type(err).__name__}: {err}"}
        # a section that knows its conditions better (grading: its kernels) overrides the estimate
        data["conditions"] = {**c.record(), **data.get("conditions", {})}
        data["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["sections"][section] = data
        json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"   {section}: {c.seconds:.1f} s, other processes {c.other_cores:.2f} cores")
    md = report.render(results)
    (out / f"{name}.md").write_text(md)
    if args.doc:
        report.update_doc(args.doc, results)
    print(f"\nwrote {json_path} and {out / f'{name}.md'}\n")
    print(md)
    return results


if __name__ == "__main__":
    main()
