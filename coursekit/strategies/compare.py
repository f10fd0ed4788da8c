"""Several seeds, one verdict: a sweep's rows (one per strategy and seed) summarised per strategy,
and compared pair by pair on the same seeds and test examples (`claims.paired`).
Lessons 05 and 06.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..claims import Measure, over_seeds, paired

__all__ = ["closer_to", "difference", "per_example", "summarize"]


def _runs(rows: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    runs = sorted((r for r in rows if r["strategy"] == name), key=lambda r: r["seed"])
    if not runs:
        known = sorted({r["strategy"] for r in rows})
        raise ValueError(f"no runs of {name!r}; the rows hold {known}")
    return runs


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per strategy (first-seen order): `accuracy` and `accuracy_se` of the mean over
    seeds (`claims.over_seeds` on the per-example results: seed spread plus test-set size),
    `measure` (that `claims.Measure`), `seeds`, `per_seed` (each seed's accuracy), and the mean
    over seeds of every other number (seconds, steps, peak_mb, ability...). Counts are the same
    for all seeds (trainable, total, optimizer_state_bytes). Rows with per-example `hits` (an
    ability measured by `forgetting.ForgettingProbe`) also get `ability_measure`."""
    out = []
    for name in dict.fromkeys(r["strategy"] for r in rows):
        runs = _runs(rows, name)
        measure = over_seeds([r["correct"] for r in runs])
        row: dict[str, Any] = {"strategy": name}
        for key, value in runs[0].items():
            if key in ("strategy", "seed", "correct", "hits", "history", "accuracy", "accuracy_se"):
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                mean = sum(r[key] for r in runs) / len(runs)
                row[key] = int(mean) if isinstance(value, int) and mean == int(mean) else mean
        row.update(accuracy=measure.mean, accuracy_se=measure.se, measure=measure,
                   seeds=len(runs), per_seed=[r["accuracy"] for r in runs])  # fmt: skip
        if "hits" in runs[0]:  # a held-out ability measured per seed (forgetting.ForgettingProbe)
            row["ability_measure"] = over_seeds([r["hits"] for r in runs])
        out.append(row)
    return out


def per_example(rows: Sequence[dict[str, Any]], name: str, key: str = "correct") -> list[Any]:
    """Strategy `name`'s 1/0 per test example, one array per seed (in seed order): the raw
    material of paired comparisons (`claims.paired`). `key="hits"`: per probe-task example."""
    runs = _runs(rows, name)
    if key not in runs[0]:
        raise ValueError(f"the runs of {name!r} have no {key!r}; they have {sorted(runs[0])}")
    return [r[key] for r in runs]


def difference(rows: Sequence[dict[str, Any]], a: str, b: str, key: str = "correct") -> Measure:
    """Accuracy of strategy `a` minus strategy `b`, paired seed by seed and test example by test
    example (`claims.paired`): what the seeds and the test set share cancels out. `key="hits"`
    compares a held-out ability (`forgetting.ForgettingProbe`) instead of test accuracy."""
    runs_a, runs_b = _runs(rows, a), _runs(rows, b)
    if [r["seed"] for r in runs_a] != [r["seed"] for r in runs_b]:
        raise ValueError(f"{a!r} and {b!r} were not run with the same seeds")
    return paired(per_example(rows, a, key), per_example(rows, b, key))


def closer_to(rows: Sequence[dict[str, Any]], name: str, near: str, far: str) -> Measure:
    """Is strategy `name` closer to `near` than to `far`? The paired measure of
    (name - far) - (near - name) = 2 name - near - far: positive when `name` gains more over
    `far` than it trails `near`, e.g. LoRA closer to full fine-tuning than to the head alone
    ("most of the gain"), the criterion lesson 05 states before its numbers."""
    mine, a, b = (per_example(rows, n) for n in (name, near, far))
    return paired([2 * m - x for m, x in zip(mine, a, strict=True)], b)
