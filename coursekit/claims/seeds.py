"""Several seeds, one number: the mean over seeds and an uncertainty that counts both noises.

A single training run is one draw: another seed (another head initialisation, another shuffle)
gives another accuracy. A lesson that states a phenomenon therefore trains each arm with several
seeds and compares the means. The standard error of such a mean has two parts:

- the **seed-to-seed spread**: the sample variance over seeds, divided by the number of seeds;
- the **test-set size**: every seed is scored on the same test examples, so averaging seeds does
  not shrink this part: p(1 - p) / n for an accuracy p on n examples (binomial), or, when the
  per-example results are known, the variance over examples of their seed-averaged score / n.

`over_seeds` adds the two (a slightly conservative combination), `paired` does the same for the
per-seed differences a - b of two methods trained with the same seeds and scored on the same test
set (sharper than comparing two independent means, because what the seeds share cancels).

    over_seeds([0.81, 0.79, 0.83], n_test=400)      -> Measure 0.810 ± 0.023 (3 seeds)
    paired([0.81, 0.79, 0.83], [0.75, 0.74, 0.78])  -> Measure 0.053 ± 0.003 (3 seeds)

A `Measure` goes wherever `claims.compare`, `expect` and `shows` take a number.
Used by every lesson that states a phenomenon (00-08) and by `experiments.aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import accuracy_se, fmt, mean_se

__all__ = ["Measure", "over_seeds", "paired"]


@dataclass(frozen=True)
class Measure:
    """A number measured over seeds: `mean`, the standard error `se` of that mean, the `values`."""

    mean: float
    se: float
    values: tuple[float, ...] = ()
    n_test: int | None = None

    @property
    def seeds(self) -> int:
        """How many seeds (repeats) the mean is over."""
        return len(self.values)

    def __str__(self) -> str:
        runs = f" ({self.seeds} seeds)" if self.seeds > 1 else ""
        return fmt(self.mean, self.se) + runs

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython: text, not the fields
        printer.text(str(self))


def _per_example(values: Sequence[Any]) -> np.ndarray | None:
    """Per-seed per-example scores as a (seeds, examples) array, or None for plain numbers."""
    if not values or np.ndim(values[0]) == 0:
        return None
    rows = [np.asarray(v, dtype=float).reshape(-1) for v in values]
    if len({len(r) for r in rows}) != 1:
        raise ValueError("per-example results must have one length (one test set) for every seed")
    return np.stack(rows)


def _combine(per_seed: np.ndarray, test_var: float) -> tuple[float, float]:
    mean, se_spread = mean_se(per_seed.tolist())
    return mean, math.sqrt(se_spread**2 + test_var)


def over_seeds(
    values: Sequence[Any], n_test: int | None = None, se_each: Sequence[float] | None = None
) -> Measure:
    """The mean over seeds of `values` and its standard error.

    values: one number per seed (an accuracy, a loss...), or one array per seed of per-example
        scores on the same test set (1/0 for right/wrong), which gives a sharper test-set part.
    n_test: the test-set size of per-seed accuracies: adds the binomial test-set part.
    se_each: each seed's own standard error (e.g. of a timing), added as the SE of their mean.
    """
    if len(values) == 0:
        raise ValueError("over_seeds needs at least one value")
    examples = _per_example(values)
    if examples is not None:
        per_seed, n = examples.mean(axis=1), examples.shape[1]
        test_var = float(np.var(examples.mean(axis=0), ddof=1)) / n if n > 1 else 0.0
        mean, se = _combine(per_seed, test_var)
        return Measure(mean, se, tuple(per_seed.tolist()), n)
    per_seed = np.asarray([float(v) for v in values])
    test_var = 0.0
    if n_test is not None:
        test_var += accuracy_se(min(max(float(per_seed.mean()), 0.0), 1.0), n_test) ** 2
    if se_each is not None:
        if len(se_each) != len(per_seed):
            raise ValueError(f"se_each has {len(se_each)} entries for {len(per_seed)} values")
        test_var += sum(float(s) ** 2 for s in se_each) / len(per_seed) ** 2
    mean, se = _combine(per_seed, test_var)
    return Measure(mean, se, tuple(per_seed.tolist()), n_test)


def paired(a: Sequence[Any], b: Sequence[Any], n_test: int | None = None) -> Measure:
    """The mean over seeds of a - b (seed by seed) and its standard error.

    a, b: one accuracy per seed each (same seeds, same order), or one array of per-example
        scores per seed (same test set): then the test-set part comes from the per-example
        differences, which is what makes a paired comparison sharp.
    n_test: with plain per-seed accuracies, adds each method's binomial test-set part (as if the
        two were independent: conservative, since they share the test set).
    """
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired needs as many values for a as for b, got {len(a)} and {len(b)}")
    ea, eb = _per_example(a), _per_example(b)
    if (ea is None) != (eb is None):
        raise ValueError("give both a and b as per-seed numbers, or both as per-example arrays")
    if ea is not None:
        if ea.shape != eb.shape:
            raise ValueError(f"per-example results differ in shape: {ea.shape} vs {eb.shape}")
        return over_seeds(list(ea - eb))
    diff = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    test_var = 0.0
    if n_test is not None:
        for side in (a, b):
            p = min(max(float(np.mean([float(v) for v in side])), 0.0), 1.0)
            test_var += accuracy_se(p, n_test) ** 2
    mean, se = _combine(np.asarray(diff), test_var)
    return Measure(mean, se, tuple(diff), n_test)
