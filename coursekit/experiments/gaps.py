"""Reading a data-efficiency table over seeds: a method's accuracy, the gap between two methods,
and how that gap changes with more data, each a `claims.Measure` (mean ± standard error).

Every run of `experiments.data_efficiency` keeps `correct`, its right or wrong answer on each
test example. All methods and seeds are scored on the same test set, so two methods can be
compared example by example: how hard the test set happens to be weighs on both sides and
cancels, and the standard error counts what is left (the per-example differences, and the
spread from seed to seed; see `claims.over_seeds` and `claims.paired`). That is what lets three
seeds decide a difference of a few points. Lessons 02 and 03.

    mean_accuracy(rows, "probe", 5)                   the probe's accuracy at 5 per class
    gap(rows, "probe", "scratch", 5)                  probe minus scratch at 5 per class
    gap_change(rows, "probe", "scratch", 5, 100)      gap at 5 minus gap at 100 per class
    seed_table(rows)                                  one row per method and size, over seeds
    gap_sentence(rows, "probe", "scratch")            the gap at every size, in words
    show_transfer(rows, "probe", "scratch", 0.1)      lesson 02's phenomena, checked (claims.shows)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..claims import Measure, fmt, over_seeds

__all__ = ["gap", "gap_change", "gap_sentence", "mean_accuracy", "seed_table", "show_transfer"]

Rows = Sequence[Mapping[str, Any]]


def _correct(rows: Rows, method: str, shots: int) -> dict[int, np.ndarray]:
    """{seed: 0/1 per test example} of `method`'s runs with `shots` examples per class."""
    found = {
        int(r["seed"]): np.asarray(r["correct"], dtype=float)
        for r in rows
        if r["method"] == method and r["shots"] == shots
    }
    if not found:
        have = sorted({(str(r["method"]), int(r["shots"])) for r in rows})
        raise ValueError(f"no runs of {method!r} with {shots} examples per class; have {have}")
    return found


def _by_seed(*runs: dict[int, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    seeds = set(runs[0])
    if any(set(r) != seeds for r in runs):
        raise ValueError(
            f"the runs to pair have different seeds ({[sorted(r) for r in runs]}); "
            "run every method with the same seeds"
        )
    return [tuple(r[s] for r in runs) for s in sorted(seeds)]


def mean_accuracy(rows: Rows, method: str, shots: int) -> Measure:
    """`method`'s test accuracy with `shots` examples per class, over its seeds."""
    return over_seeds([c for (c,) in _by_seed(_correct(rows, method, shots))])


def gap(rows: Rows, a: str, b: str, shots: int) -> Measure:
    """Accuracy of `a` minus accuracy of `b` with `shots` examples per class, paired by seed
    (both trained on the same examples) and by test example."""
    pairs = _by_seed(_correct(rows, a, shots), _correct(rows, b, shots))
    return over_seeds([ca - cb for ca, cb in pairs])


def gap_change(rows: Rows, a: str, b: str, small: int, large: int) -> Measure:
    """How much the gap `a - b` shrinks from `small` to `large` examples per class:
    gap(small) - gap(large), paired by seed and test example (positive: the gap closes)."""
    runs = (_correct(rows, m, n) for n in (small, large) for m in (a, b))
    return over_seeds([(pa - pb) - (qa - qb) for pa, pb, qa, qb in _by_seed(*runs)])


def seed_table(rows: Rows) -> list[dict[str, Any]]:
    """One row per (method, examples per class) of a data-efficiency table, over its seeds:
    test accuracy as mean ± SE (`mean_accuracy`) and per seed, the fewest distinct classes any
    seed's run predicted (1 would mean a run that guesses one class for everything), and the
    mean optimizer steps and training seconds. For `experiments.to_markdown`."""
    keys = list(dict.fromkeys((r["method"], r["shots"]) for r in rows))
    out = []
    for method, shots in keys:
        runs = [r for r in rows if r["method"] == method and r["shots"] == shots]
        acc = mean_accuracy(rows, method, shots)
        out.append({
            "method": method,
            "per class": shots,
            "test accuracy": fmt(acc.mean, acc.se),
            "per seed": ", ".join(f"{v:.3f}" for v in acc.values),
            "classes predicted (fewest)": min(r["distinct_predictions"] for r in runs),
            "optimizer steps": round(float(np.mean([r["optimizer_steps"] for r in runs]))),
            "train seconds": float(np.mean([r["train_seconds"] for r in runs])),
        })  # fmt: skip
    return out


def gap_sentence(rows: Rows, a: str, b: str) -> str:
    """'<a> minus <b>: +0.132 ± 0.020 with 1 per class, ... (5 seeds)': the gap at every size
    of the table, for takeaways."""
    sizes = sorted({int(r["shots"]) for r in rows if r["method"] == a})
    gaps = [(n, gap(rows, a, b, n)) for n in sizes]
    parts = [f"{g.mean:+.3f} ± {g.se:.3f} with {n} per class" for n, g in gaps]
    return f"{a} minus {b}: {', '.join(parts)} ({gaps[0][1].seeds} seeds)"


def show_transfer(rows: Rows, pre: str, scratch: str, chance: float, task: str = "") -> list:
    """Lesson 02's phenomena on one data-efficiency table, each checked with `claims.shows`
    (a tie or the opposite raises, so a run that stops showing them fails):

    0. the from-scratch baseline learned: above `chance` (always guessing one class) beyond
       the noise, already at the smallest size;
    1. at the smallest size, `pre` beats `scratch` (the paired gap is above 0);
    2. the gap closes from the smallest to the largest size (`gap_change` above 0).

    Returns the verdicts of 1 and 2. The lesson's notebook and its slow test both call this.
    """
    from ..claims import shows

    sizes = sorted({int(r["shots"]) for r in rows if r["method"] == scratch})
    few, many = sizes[0], sizes[-1]
    at = f"{task}: " if task else ""
    learned = f"{at}the from-scratch baseline learned: above chance with {few} per class"
    shows(learned, mean_accuracy(rows, scratch, few), chance, names=(scratch, "chance"))
    beats = f"{at}with {few} per class, {pre} beats {scratch}"
    closes = f"{at}the gap closes from {few} to {many} per class"
    return [
        shows(beats, gap(rows, pre, scratch, few), names=(f"{pre} - {scratch}", "0")),
        shows(closes, gap_change(rows, pre, scratch, few, many), names=("shrink", "0")),
    ]
