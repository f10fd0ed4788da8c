"""Self-checks for lesson 06 (capstone): choosing a strategy, drift by hand, optimizer memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..forgetting import similarity_drift
from .core import Wrong, close, expect_number, expect_type, question

_TOLERANCE = 0.02  # "within 0.02 of the best accuracy", as the exercise says
_EPS = 1e-9  # accuracies on the boundary count either way


def _names(rows: Sequence[dict]) -> list[str]:
    return [r["strategy"] for r in rows]


@question("06.q1")
def _q1(answer: Any, *, rows: Sequence[dict]) -> str:
    expect_type(answer, str, "good_enough", "store the strategy's name, e.g. rows[0]['strategy'].")
    by = {r["strategy"]: r for r in rows}
    if answer not in by:
        raise Wrong(
            f"{answer!r} is not a strategy in `rows`.", f"the names are: {', '.join(_names(rows))}."
        )
    top = max(r["accuracy"] for r in rows)
    mine = by[answer]
    if mine["accuracy"] < top - _TOLERANCE - _EPS:
        raise Wrong(
            f"{answer!r} reached {mine['accuracy']:.3f}, more than {_TOLERANCE} below the best "
            f"accuracy ({top:.3f}).",
            "first keep only the rows whose accuracy is at least the best minus 0.02.",
        )
    cheaper = [
        r
        for r in rows
        if r["accuracy"] >= top - _TOLERANCE + _EPS and r["trainable"] < mine["trainable"]
    ]
    if cheaper:
        if mine["accuracy"] == top:
            raise Wrong(
                f"{answer!r} is the most accurate, but not the cheapest that is good enough.",
                "among the rows within 0.02 of the best, pick the one with the fewest trainable "
                "parameters.",
            )
        raise Wrong(
            f"another strategy within {_TOLERANCE} of the best trains fewer than "
            f"{mine['trainable']:,} parameters.",
            "compare the `trainable` column of the rows that are good enough.",
        )
    return (
        f"{answer} reaches {mine['accuracy']:.3f} (best {top:.3f}) with "
        f"{mine['trainable']:,} trainable parameters."
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
