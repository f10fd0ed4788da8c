"""A claim is code: check a sentence about a run against the run's own numbers, with its noise.

A measured accuracy is an estimate. On `n` test examples its binomial standard error (SE) is
about sqrt(p(1 - p) / n): 0.035 for 70 % on 170 examples, so two methods 0.03 apart on that test
set are indistinguishable. A timing or a seed-to-seed spread has a standard error too: the sample
standard deviation over sqrt(number of repeats). This module turns those into verdicts:

    accuracy_se(0.9, 200)             -> 0.021                      (binomial SE)
    interval(0.9, 200)                -> (0.851, 0.934)             (95 % Wilson interval)
    mean_se([1.2, 1.3, 1.1])          -> (1.2, 0.058)               (mean and SE of repeats)
    compare("lora", 0.88, "full", 0.94, n_a=50, n_b=50)             -> Verdict (no printing)
    expect("pre-trained beats scratch", 0.91, 0.62, n_a=200, n_b=200)

`expect` is how a lesson states a qualitative result. The difference a - b counts as real when it
exceeds `z` standard errors of the difference (z = 2 by default, about 95 %):
    supported     the run shows it: prints "✓ <claim> - <numbers>" and returns the Verdict;
    tie           within noise: prints "tie within noise: <claim> cannot be decided by this run"
                  with what a bigger run would change, and returns the Verdict (no error);
    contradicted  the run shows the opposite: raises ClaimContradicted naming claim and numbers,
                  so a notebook whose prose is wrong fails under nbval.
Under `$COURSEKIT_MAX_STEPS` (the full-mode memory check on a CPU, `coursekit course --max-steps`)
every run is cut short and its numbers mean nothing, so `expect` judges nothing: it prints
"not checked: $COURSEKIT_MAX_STEPS=N cut the run short ..." and returns a Verdict with status
"not checked" (bad arguments still raise).
So a lesson phrases an `expect`ed sentence as an expectation ("pre-training should win") and lets
the printed verdict say what this run shows. Comparing two accuracies on the same test set with
independent SEs is conservative (a paired test would be sharper), which suits a course.

Used by every lesson that compares numbers: 02 (pre-trained vs scratch, probe vs fine-tuning),
03 (heads), 04 (freezing), 05 (LoRA vs full), 06 (strategies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .config import max_steps

__all__ = [
    "ClaimContradicted",
    "Verdict",
    "accuracy_se",
    "compare",
    "expect",
    "fmt",
    "interval",
    "mean_se",
    "ratio",
]

Number = float | int | Sequence[float]
RELATIONS = (">", "<", "~=")
DEFAULT_HINT = "a larger test set or more seeds (full mode) would shrink the ± and could decide it"


class ClaimContradicted(AssertionError):
    """The run's numbers show the opposite of a claim, beyond the noise margin."""


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


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing a with b: `winner` is a name, or None for a tie within noise."""

    name_a: str
    a: float
    se_a: float
    name_b: str
    b: float
    se_b: float
    diff: float
    se_diff: float
    margin: float
    winner: str | None
    # "supported", "tie", "not checked" (a step-capped run) for expect; "decided"/"tie" for compare
    status: str
    text: str

    @property
    def z(self) -> float:
        """The difference in standard errors (inf when both numbers are exact and differ)."""
        if self.se_diff == 0:
            return 0.0 if self.diff == 0 else math.copysign(math.inf, self.diff)
        return self.diff / self.se_diff

    def __str__(self) -> str:
        return self.text


def _estimate(x: Number, se: float | None, n: int | None, which: str) -> tuple[float, float]:
    if isinstance(x, Sequence):
        return mean_se(x)
    if se is not None:
        if se < 0:
            raise ValueError(f"se_{which} must be >= 0, got {se}")
        return float(x), float(se)
    if n is not None:
        return float(x), accuracy_se(float(x), n)
    raise ValueError(
        f"give the uncertainty of {which}: se_{which}=... (a standard error), n_{which}=... "
        f"(test-set size of an accuracy), or a list of repeated measurements"
    )


def _numbers(name_a, a, se_a, name_b, b, se_b, diff, se_diff) -> str:
    zs = "exact" if se_diff == 0 else f"{abs(diff) / se_diff:.1f} SE"
    return f"{name_a} {fmt(a, se_a)} vs {name_b} {fmt(b, se_b)}: difference {diff:+.3f} ({zs})"


def compare(
    name_a: str,
    a: Number,
    name_b: str,
    b: Number,
    *,
    se_a: float | None = None,
    se_b: float | None = None,
    n_a: int | None = None,
    n_b: int | None = None,
    margin: float | None = None,
    z: float = 2.0,
) -> Verdict:
    """Which of a and b is larger, beyond `z` standard errors of the difference (or `margin`)."""
    va, sa = _estimate(a, se_a, n_a, "a")
    vb, sb = _estimate(b, se_b, n_b, "b")
    diff, se_diff = va - vb, math.hypot(sa, sb)
    m = z * se_diff if margin is None else float(margin)
    nums = _numbers(name_a, va, sa, name_b, vb, sb, diff, se_diff)
    if abs(diff) > m:
        winner = name_a if diff > 0 else name_b
        text = f"{nums}: {winner} is higher beyond the noise margin {m:.3f}"
        status = "decided"
    else:
        winner, status = None, "tie"
        text = f"{nums}: tie within noise (margin {m:.3f})"
    return Verdict(name_a, va, sa, name_b, vb, sb, diff, se_diff, m, winner, status, text)


def expect(
    claim: str,
    a: Number,
    b: Number,
    *,
    relation: str = ">",
    se_a: float | None = None,
    se_b: float | None = None,
    n_a: int | None = None,
    n_b: int | None = None,
    margin: float | None = None,
    z: float = 2.0,
    names: tuple[str, str] = ("a", "b"),
    hint: str = DEFAULT_HINT,
    quiet: bool = False,
) -> Verdict:
    """Check `claim` ("a > b", "a < b" or "a ~= b") against the run; raise if contradicted.

    `a`, `b`: numbers with `se_*` or `n_*` (accuracy on n test examples), or lists of repeats.
    `margin`: the difference that counts as real; default `z` standard errors of the difference.
    For "~=" the claim holds while |a - b| <= margin and is contradicted beyond it.
    """
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    v = compare(names[0], a, names[1], b, se_a=se_a, se_b=se_b, n_a=n_a, n_b=n_b,
                margin=margin, z=z)  # fmt: skip
    nums = _numbers(v.name_a, v.a, v.se_a, v.name_b, v.b, v.se_b, v.diff, v.se_diff)
    nums += f", noise margin {v.margin:.3f}"
    signed = {">": v.diff, "<": -v.diff}.get(relation)
    if relation == "~=":
        status = "supported" if abs(v.diff) <= v.margin else "contradicted"
    elif signed > v.margin:
        status = "supported"
    elif signed < -v.margin:
        status = "contradicted"
    else:
        status = "tie"
    if max_steps() is not None:  # a memory check: the numbers come from runs cut short
        status = "not checked"
    if status == "contradicted":
        raise ClaimContradicted(f"the run contradicts the claim {claim!r}: {nums}")
    if status == "supported":
        text = f"✓ {claim} — {nums}"
    elif status == "not checked":
        text = (f"not checked: $COURSEKIT_MAX_STEPS={max_steps()} cut the run short, so "
                f"{claim!r} is not judged ({nums})")  # fmt: skip
    else:
        text = f"tie within noise: {claim!r} cannot be decided by this run ({nums}); {hint}"
    winner = v.winner if status == "supported" and relation != "~=" else None
    verdict = Verdict(v.name_a, v.a, v.se_a, v.name_b, v.b, v.se_b, v.diff, v.se_diff,
                      v.margin, winner, status, text)  # fmt: skip
    if not quiet:
        print(text)
    return verdict
