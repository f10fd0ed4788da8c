"""Standard errors of the numbers a run measures: an accuracy on n test examples, repeats.

A measured accuracy is an estimate. On `n` test examples its binomial standard error (SE) is
about sqrt(p(1 - p) / n): 0.035 for 70 % on 170 examples. Repeated measurements (timed steps,
seeds) have one too: the sample standard deviation over sqrt(number of repeats).
Part of `coursekit.claims`; seeds are combined in `claims.seeds`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["accuracy_se", "fmt", "interval", "mean_se", "ratio"]


def accuracy_se(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy `acc` measured on `n` examples.

    A perfect or zero score is moved half an example in from the edge, so 20/20 still has a
    non-zero SE (a score of 1.0 on 20 examples does not prove the true accuracy is 1.0).
    """
    if n <= 0:
        raise ValueError(f"n must be a positive number of test examples, got {n}")
    if not 0.0 <= acc <= 1.0:
        raise ValueError(f"accuracy must lie in [0, 1], got {acc}")
    p = min(max(acc, 0.5 / n), 1.0 - 0.5 / n)
    return math.sqrt(p * (1.0 - p) / n)


def interval(acc: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for an accuracy on `n` examples (95 % for z = 1.96)."""
    accuracy_se(acc, n)  # validates the arguments
    denom = 1.0 + z * z / n
    centre = (acc + z * z / (2 * n)) / denom
    half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean of repeated measurements (seeds, timed steps) and the standard error of that mean."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_se needs at least one value")
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var / len(xs))


def ratio(a: float, b: float, se_a: float = 0.0, se_b: float = 0.0) -> tuple[float, float]:
    """a / b and its standard error (first-order propagation of the two relative errors)."""
    if b == 0:
        raise ValueError("ratio: the denominator b is zero")
    r = a / b
    rel = math.hypot(se_a / a if a else 0.0, se_b / b)
    return r, abs(r) * rel


def fmt(value: float, se: float) -> str:
    """'0.912 ± 0.021' (3 decimals below 10), '40.5 ± 1.2' (4 significant figures below 1,000),
    '12,345 ± 67' above."""
    if abs(value) < 10:
        return f"{value:.3f} ± {se:.3f}"
    if abs(value) < 1000:
        return f"{value:.4g} ± {se:.2g}"
    return f"{value:,.0f} ± {se:,.0f}"
