"""Self-checks for lesson 06 (capstone): a prediction of which fine-tune moves the encoder more,
which strategy to ship (a decision the run's noise must allow), drift by hand, optimizer memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..experiments.forgetting import similarity_drift
from .core import Wrong, close, expect_number, expect_type, question

DRIFT_ANSWERS = ("full FT", "LP-FT", "about the same")


def _names(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(r["strategy"] for r in rows))


@question("06.q1", 'write one of "full FT", "LP-FT" or "about the same" in `drift_guess`.',
          predict=True)  # fmt: skip
def _q1(answer: Any) -> str:
    expect_type(answer, str, "drift_guess", f"one of {', '.join(map(repr, DRIFT_ANSWERS))}.")
    if answer not in DRIFT_ANSWERS:
        raise Wrong(f"{answer!r} is not one of {', '.join(map(repr, DRIFT_ANSWERS))}.")
    return f"prediction recorded: {answer!r}. The measurement below will tell."


@question("06.q2", "store the name of the strategy you would ship, e.g. `ship = 'linear probe'`.")
def _q2(answer: Any, *, rows: Sequence[dict]) -> str:
    from ..claims import compare
    from ..strategies import difference, summarize

    expect_type(answer, str, "ship", "store the strategy's name, e.g. rows[0]['strategy'].")
    summary = {r["strategy"]: r for r in summarize(rows)}
    if answer not in summary:
        raise Wrong(
            f"{answer!r} is not a strategy in `rows`.", f"the names are: {', '.join(summary)}."
        )
    best = max(summary.values(), key=lambda r: r["accuracy"])
    mine = summary[answer]

    def tie(name: str) -> bool:
        gap = difference(rows, best["strategy"], name)
        return name == best["strategy"] or compare("a", gap, "b", 0.0, se_b=0.0).winner is None

    if not tie(answer):
        gap = difference(rows, best["strategy"], answer)
        raise Wrong(
            f"{best['strategy']} is ahead of {answer!r} by {gap} on these seeds and tweets, "
            "beyond the noise.",
            "a strategy that this run shows to be less accurate needs a very good reason; "
            "look at the paired comparisons with the most accurate one.",
        )
    cheapest = min((r for name, r in summary.items() if tie(name)), key=lambda r: r["trainable"])
    note = (
        ""
        if cheapest is mine
        else f" {cheapest['strategy']} ties too and trains {cheapest['trainable']:,} parameters: "
        "cheaper to train and store, if that matters to you."
    )
    return (
        f"{answer} ({mine['measure']}) is as accurate as this run can tell "
        f"(best: {best['strategy']} {best['measure']}), with {mine['trainable']:,} trainable "
        f"parameters.{note}"
    )


@question("06.q3", "write the body of `my_drift`: the text above says what it computes.")
def _q3(
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


@question("06.q4", "AdamW keeps two fp32 moments per trainable parameter.")
def _q4(answer: Any, *, rows: Sequence[dict]) -> str:
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
