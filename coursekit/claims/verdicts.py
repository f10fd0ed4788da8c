"""Verdicts: a sentence about a run checked against the run's own numbers, with its noise.

    compare("lora", 0.88, "full", 0.94, n_a=50, n_b=50)             -> Verdict (no printing)
    expect("pre-trained beats scratch", 0.91, 0.62, n_a=200, n_b=200)
    shows("unfreezing 3 blocks beats the head alone", paired(deeper, head, n_test=400))

The difference a - b counts as real when it exceeds `z` standard errors of the difference (z = 2
by default, about 95 %). `expect` states a qualitative result that the run may or may not decide:
    supported     the run shows it: prints "✓ <claim> - <numbers>" and returns the Verdict;
    tie           within noise: prints "tie within noise: <claim> cannot be decided by this run"
                  with what a bigger run would change, and returns the Verdict (no error);
    contradicted  the run shows the opposite: raises ClaimContradicted naming claim and numbers,
                  so a notebook whose prose is wrong fails under nbval.
`shows` states a lesson's **phenomenon**, what the lesson is about: only "supported" passes; a
tie raises PhenomenonNotShown, so CI fails when a change makes a lesson stop showing its subject.
In a dry run (`training.limits`: the full-mode memory check on a CPU, `coursekit course
--max-steps`) every training run is cut short and its numbers mean nothing, so nothing is judged:
the verdict says "not checked: ..." (bad arguments still raise).
Comparing two accuracies on the same test set with independent SEs is conservative (`paired`
over seeds is sharper), which suits a course. Part of `coursekit.claims`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..training.limits import active_dry_run
from .errors import accuracy_se, fmt, mean_se
from .seeds import Measure

__all__ = ["ClaimContradicted", "PhenomenonNotShown", "Verdict", "compare", "expect", "shows"]

Number = float | int | Sequence[float] | Measure
RELATIONS = (">", "<", "~=")
DEFAULT_HINT = "a larger test set or more seeds (full mode) would shrink the ± and could decide it"


class ClaimContradicted(AssertionError):
    """The run's numbers show the opposite of a claim, beyond the noise margin."""


class PhenomenonNotShown(AssertionError):
    """A lesson's phenomenon is not shown by the run: a tie within the noise margin."""


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

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython: the sentence
        printer.text(self.text)


def _estimate(x: Number, se: float | None, n: int | None, which: str) -> tuple[float, float]:
    if isinstance(x, Measure):
        return x.mean, x.se
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
        f"(test-set size of an accuracy), a list of repeated measurements, or a claims.Measure"
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
    cut = active_dry_run()  # a memory check: the numbers come from runs cut short
    if cut is not None:
        status = "not checked"
    if status == "contradicted":
        raise ClaimContradicted(f"the run contradicts the claim {claim!r}: {nums}")
    if status == "supported":
        text = f"✓ {claim} — {nums}"
    elif status == "not checked":
        text = f"not checked: {cut} cut the runs short, so {claim!r} is not judged ({nums})"
    else:
        text = f"tie within noise: {claim!r} cannot be decided by this run ({nums}); {hint}"
    winner = v.winner if status == "supported" and relation != "~=" else None
    verdict = Verdict(v.name_a, v.a, v.se_a, v.name_b, v.b, v.se_b, v.diff, v.se_diff,
                      v.margin, winner, status, text)  # fmt: skip
    if not quiet:
        print(text)
    return verdict


def shows(
    claim: str,
    a: Number,
    b: Number = 0.0,
    *,
    relation: str = ">",
    se_a: float | None = None,
    se_b: float | None = None,
    n_a: int | None = None,
    n_b: int | None = None,
    margin: float | None = None,
    z: float = 2.0,
    names: tuple[str, str] = ("a", "b"),
) -> Verdict:
    """A lesson's phenomenon `claim` ("a > b" or "a < b"), which the run must show.

    Like `expect`, but a tie within the noise raises `PhenomenonNotShown`: the lesson exists to
    show this, so a run that cannot is an error to fix (more seeds or steps, a better-designed
    experiment), not a sentence to print. With one argument, `a` is a difference (e.g.
    `paired(...)`) compared with 0; a plain number `b` without `se_b`/`n_b` is an exact threshold
    (zero, chance level).
    """
    if relation not in (">", "<"):
        raise ValueError(f"a phenomenon has a direction: '>' or '<', got {relation!r}")
    if isinstance(b, int | float) and se_b is None and n_b is None:
        se_b = 0.0
    v = expect(claim, a, b, relation=relation, se_a=se_a, se_b=se_b, n_a=n_a, n_b=n_b,
               margin=margin, z=z, names=names, quiet=True)  # fmt: skip
    if v.status == "tie":
        nums = _numbers(v.name_a, v.a, v.se_a, v.name_b, v.b, v.se_b, v.diff, v.se_diff)
        raise PhenomenonNotShown(
            f"this run does not show {claim!r}: {nums}, inside the noise margin {v.margin:.3f}. "
            "The lesson's experiment needs more seeds, steps or data to show it."
        )
    print(v.text)
    return v
