"""Reading freezing recipes' results: accuracy over seeds, paired differences, the choice of a
learning rate on validation, a table (lesson 04). Every comparison is over the same seeds and the
same test examples (`claims.paired`), the sharper test when runs share seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..claims import Measure, fmt, over_seeds, paired
from ..training.history import History
from ..training.limits import active_dry_run
from .recipes import RecipeRun

__all__ = [
    "accuracy",
    "ahead",
    "best_by_validation",
    "difference",
    "histories",
    "summary",
    "table",
    "val_accuracy",
]


def accuracy(runs: Sequence[RecipeRun]) -> Measure:
    """Mean test accuracy over the seeds, its SE combining seed spread and test-set size."""
    return over_seeds([r.correct.numpy() for r in runs])


def difference(a: Sequence[RecipeRun], b: Sequence[RecipeRun]) -> Measure:
    """Test accuracy of a minus b, seed by seed on the same test examples (`claims.paired`)."""
    if [r.seed for r in a] != [r.seed for r in b]:
        raise ValueError("compare runs with the same seeds, in the same order")
    return paired([r.correct.numpy() for r in a], [r.correct.numpy() for r in b])


def val_accuracy(runs: Sequence[RecipeRun], epoch: int) -> Measure:
    """Validation accuracy after `epoch` (1, 2, ...) over the seeds, its SE combining the seed
    spread and the validation-set size; a run that diverged before that epoch counts 0."""
    values = [_val_at(r, epoch) for r in runs]
    return over_seeds(values, n_test=runs[0].val_examples)


def _val_at(run: RecipeRun, epoch: int) -> float:
    """A dry run (`training.limits`) cuts every run short: its last epoch stands in."""
    curve = run.history.metric("val_accuracy")
    if curve and epoch > len(curve) and active_dry_run() is not None:
        return curve[-1]
    if epoch < 1 or (epoch > len(curve) and not run.diverged):
        raise ValueError(f"no validation accuracy after epoch {epoch}: the run has {len(curve)}")
    return curve[epoch - 1] if epoch <= len(curve) else 0.0


def ahead(
    a: Sequence[RecipeRun], b: Sequence[RecipeRun], names: tuple[str, str], epoch: int | None = None
) -> str:
    """Which of two recipes is ahead beyond 2 SE (`names[0]` or `names[1]`), or "tie": on the
    test set after training (paired, example by example), or on validation after `epoch`."""
    if epoch is None:
        diff = difference(a, b)
    else:
        diff = paired([_val_at(r, epoch) for r in a], [_val_at(r, epoch) for r in b],
                      n_test=a[0].val_examples)  # fmt: skip
    return names[0] if diff.mean > 2 * diff.se else names[1] if diff.mean < -2 * diff.se else "tie"


def histories(results: Mapping[str, Sequence[RecipeRun]]) -> dict[str, list[History]]:
    """{name: [History per seed]}, what `viz.plot_runs` draws."""
    return {name: [r.history for r in runs] for name, runs in results.items()}


def best_by_validation(results: Mapping[str, Sequence[RecipeRun]]) -> str:
    """The name whose last-epoch validation accuracy, averaged over seeds, is highest (ties:
    lower validation loss). The test set plays no part in the choice."""

    def score(name: str) -> tuple[float, float]:
        last = [r.history.last for r in results[name]]
        acc = sum(e.get("val_accuracy", 0.0) for e in last) / len(last)
        return acc, -sum(e.get("val_loss", float("inf")) for e in last) / len(last)

    return max(results, key=score)


def summary(results: Mapping[str, Sequence[RecipeRun]]) -> list[dict]:
    """One row per recipe: test accuracy per seed and over seeds, steps, trainable parameters,
    training seconds per step."""
    rows = []
    for name, runs in results.items():
        acc = accuracy(runs)
        steps = sum(r.steps for r in runs)
        rows.append({
            "recipe": name,
            "test_accuracy": acc.mean,
            "accuracy_se": acc.se,
            "per_seed": [round(r.accuracy, 3) for r in runs],
            "steps": runs[0].steps,
            "trainable": runs[0].trainable,
            "ms_per_step": 1000 * sum(r.seconds for r in runs) / max(steps, 1),
            "diverged": sum(r.diverged for r in runs),
        })  # fmt: skip
    return rows


def table(results: Mapping[str, Sequence[RecipeRun]]) -> str:
    """`summary` as a plain-text table, one line per recipe."""
    lines = [
        f"{'recipe':<18} {'test accuracy':>22}  {'per seed':<21} {'steps':>5} "
        f"{'trainable':>10} {'ms/step':>8}"
    ]
    for r in summary(results):
        acc = f"{fmt(r['test_accuracy'], r['accuracy_se'])} ({len(r['per_seed'])} seeds)"
        seeds = ", ".join(f"{a:.3f}" for a in r["per_seed"])
        lines.append(
            f"{r['recipe']:<18} {acc:>22}  {seeds:<21} {r['steps']:>5} {r['trainable']:>10,} "
            f"{r['ms_per_step']:>8.1f}" + (f"  ({r['diverged']} diverged)" if r["diverged"] else "")
        )
    return "\n".join(lines)
