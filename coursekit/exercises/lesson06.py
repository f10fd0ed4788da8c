"""Self-checks for lesson 06 (capstone): which strategy to ship (a decision within the noise),
drift by hand, optimizer memory."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..claims import accuracy_se
from ..forgetting import similarity_drift
from .core import Wrong, close, expect_number, expect_type, question

_EPS = 1e-9  # accuracies on the boundary count either way


def _names(rows: Sequence[dict]) -> list[str]:
    return [r["strategy"] for r in rows]


def _se(row: dict) -> float:
    if "accuracy_se" in row:
        return float(row["accuracy_se"])
    return accuracy_se(row["accuracy"], int(row["n_test"]))


def as_good_as_best(rows: Sequence[dict], z: float = 2.0) -> list[dict]:
    """The rows this run cannot tell from the most accurate one: the best accuracy minus theirs is
    at most `z` standard errors of the difference (the best row included)."""
    top = max(rows, key=lambda r: r["accuracy"])
    return [
        r
        for r in rows
        if top["accuracy"] - r["accuracy"] <= z * math.hypot(_se(top), _se(r)) + _EPS
    ]


@question("06.q1")
def _q1(answer: Any, *, rows: Sequence[dict]) -> str:
    expect_type(answer, str, "ship", "store the strategy's name, e.g. rows[0]['strategy'].")
    by = {r["strategy"]: r for r in rows}
    if answer not in by:
        raise Wrong(
            f"{answer!r} is not a strategy in `rows`.", f"the names are: {', '.join(_names(rows))}."
        )
    top = max(rows, key=lambda r: r["accuracy"])
    good = as_good_as_best(rows)
    mine = by[answer]
    if mine not in good:
        gap = top["accuracy"] - mine["accuracy"]
        raise Wrong(
            f"{answer!r} is {gap:.3f} below the best ({top['strategy']}), more than two standard "
            f"errors of the difference ({2 * math.hypot(_se(top), _se(mine)):.3f}).",
            "keep only the rows whose gap to the best is at most 2 * sqrt(se_best**2 + se**2).",
        )
    cheaper = [r for r in good if r["trainable"] < mine["trainable"]]
    if cheaper:
        if mine is top:
            raise Wrong(
                f"{answer!r} is the most accurate, but this run cannot tell it from cheaper ones.",
                "among the rows as good as the best, pick the one with the fewest trainable "
                "parameters.",
            )
        raise Wrong(
            f"another strategy as good as the best trains fewer than {mine['trainable']:,} "
            "parameters.",
            "compare the `trainable` column of the rows that are as good as the best.",
        )
    return (
        f"{answer} reaches {mine['accuracy']:.3f} ± {_se(mine):.3f} (best {top['accuracy']:.3f}, "
        f"a tie within noise) with {mine['trainable']:,} trainable parameters."
        if mine is not top
        else f"{answer} is the most accurate, and no strategy as good trains fewer parameters."
    )


@question("06.q2")
def _q2(
    answer: Callable[[torch.Tensor, torch.Tensor], float],
    *,
    before: torch.Tensor,
    after: torch.Tensor,
) -> str:
    if not callable(answer):
        raise Wrong("`my_drift` is not a function.", "define it with def my_drift(before, after):")
    expected = similarity_drift(before, after)
    got = expect_number(answer(before, after), "my_drift(before, after)", -1.0, 3.0)
    same = expect_number(answer(before, before), "my_drift(before, before)", -1.0, 3.0)
    if close(got, 1 - expected, rel=1e-4, abs_=1e-6) and not close(got, expected, rel=1e-4):
        raise Wrong(
            f"your value {got:.4f} looks like the correlation itself.",
            "drift is 1 minus the correlation.",
        )
    if abs(same) > 1e-6:
        raise Wrong(
            f"the drift of an embedding against itself should be 0, yours is {same:.3g}.",
            "identical similarities correlate perfectly: 1 - 1 = 0.",
        )
    if not close(got, expected, rel=1e-4, abs_=1e-6):
        raise Wrong(
            f"my_drift gives {got:.5f}; the drift of these embeddings differs from that.",
            "use cosine similarities (normalise each row first), leave out the diagonal "
            "(a text with itself), and correlate the two flattened sets with Pearson's r.",
        )
    return f"drift {got:.4f} between the pre-trained and the fine-tuned embeddings."


@question("06.q3")
def _q3(answer: Any, *, rows: Sequence[dict]) -> str:
    expect_type(answer, dict, "predicted_state", "a dict {strategy name: bytes}.")
    missing = set(_names(rows)) - set(answer)
    if missing:
        raise Wrong(f"no prediction for {sorted(missing)}.", "one entry per row of `rows`.")
    for r in rows:
        got = expect_number(answer[r["strategy"]], f"predicted_state[{r['strategy']!r}]", 0)
        measured = r["optimizer_state_bytes"]
        if got == measured:
            continue
        if got == 4 * r["trainable"]:
            raise Wrong(
                f"{r['strategy']}: {got:,.0f} bytes is one fp32 number per parameter.",
                "AdamW keeps two moments per trainable parameter.",
            )
        if got == 8 * r["total"]:
            raise Wrong(
                f"{r['strategy']}: {got:,.0f} counts every parameter, frozen ones too.",
                "frozen parameters get no gradient, so the optimizer keeps nothing for them.",
            )
        raise Wrong(
            f"{r['strategy']}: predicted {got:,.0f} bytes, which is not what its optimizer held.",
            "bytes = moments per parameter x bytes per fp32 number x trainable parameters.",
        )
    total = sum(r["optimizer_state_bytes"] for r in rows)
    return f"all {len(rows)} predictions match the measured state ({total / 1e6:.1f} MB in all)."
