"""Self-checks for lesson 03 (head replacement and input adaptation)."""

from __future__ import annotations

import math

from .core import Wrong, close, expect_number, expect_type, question


@question("03.q1")
def _zero_head(answer, *, original, n_classes) -> str:
    value = expect_number(answer, "ex1_loss", 0.0)
    if original._fc.out_features != n_classes:
        raise Wrong(
            "`vision` itself now has a different head.",
            "work on a copy: copy.deepcopy(vision), then replace the copy's head.",
        )
    if close(value, math.log(n_classes), rel=1e-5):
        raise Wrong(
            f"{value:.4f} is the loss of a uniform guess over {n_classes} classes.",
            "the new head should have 3 outputs.",
        )
    if not close(value, math.log(3), rel=1e-5):
        raise Wrong(
            f"a loss of {value:.4f} means the logits did not start equal.",
            "replace_head(..., init='zeros') makes every logit 0; evaluate in eval mode "
            "without gradients. What loss does a uniform guess over 3 classes have?",
        )
    return f"loss {value:.4f} = ln 3: a zero head starts from a uniform guess"


@question("03.q2")
def _stems(answer) -> str:
    expect_type(answer, dict, "gaps")
    if set(answer) != {"sum", "mean", "first"}:
        raise Wrong(f"`gaps` has keys {sorted(answer)}.", "one entry per method: sum, mean, first.")
    gaps = {k: expect_number(v, f"gaps[{k!r}]", 0.0) for k, v in answer.items()}
    if gaps["sum"] >= 1e-3:
        raise Wrong(
            f"the 'sum' stem differs from the RGB model by {gaps['sum']:.2e}.",
            "compare the RGB model on rgb_x with the one-channel copy on gray_x, both in "
            "eval mode; a gray pixel has equal R, G and B.",
        )
    for method in ("mean", "first"):
        if gaps[method] <= 100 * gaps["sum"]:
            raise Wrong(
                f"the {method!r} stem is as close as 'sum' ({gaps[method]:.2e}).",
                "build a fresh copy for each method (copy.deepcopy) before adapting it.",
            )
    return "only summing the RGB filters keeps the network's function on gray images"


@question("03.q3")
def _truncation(answer, *, lengths, max_length) -> str:
    expect_type(answer, tuple, "(median_kept, tokens_read)")
    median_kept = expect_number(answer[0], "median_kept", 0.0, 1.0)
    tokens_read = expect_number(answer[1], "tokens_read", 0.0, 1.0)
    kept = sorted(min(n, max_length) / n for n in lengths)
    mid = len(kept) // 2
    median = kept[mid] if len(kept) % 2 else (kept[mid - 1] + kept[mid]) / 2
    if not close(median_kept, median, rel=1e-6):
        raise Wrong(
            f"median_kept = {median_kept:.4f} is not the median kept fraction.",
            "per article, the kept fraction is min(n, max_length) / n; take the median "
            "over articles.",
        )
    total = sum(min(n, max_length) for n in lengths) / sum(lengths)
    if not close(tokens_read, total, rel=1e-6):
        raise Wrong(
            f"tokens_read = {tokens_read:.4f} is not the share of all tokens read.",
            "sum the kept tokens over all articles, then divide by the sum of all tokens.",
        )
    return f"the median article keeps {median_kept:.0%}; {tokens_read:.0%} of all tokens are read"


@question("03.q4")
def _pooling(answer, *, rows, max_length) -> str:
    import re

    from ..claims import compare

    expect_type(answer, tuple, "(pooling_verdict, pooling_reason)")
    verdict, reason = answer
    expect_type(verdict, str, "pooling_verdict", 'one of "cls", "mean", "tie"')
    expect_type(reason, str, "pooling_reason", "one sentence")
    if verdict not in ("cls", "mean", "tie"):
        raise Wrong(f"{verdict!r} is not a verdict.", 'use "cls", "mean" or "tie".')
    cls, mean = (
        next(r for r in rows if r["max_length"] == max_length and r["pooling"] == p)
        for p in ("cls", "mean")
    )
    v = compare("mean", mean["val_accuracy"], "cls", cls["val_accuracy"],
                se_a=mean["std. error"], se_b=cls["std. error"])  # fmt: skip
    want = v.winner or "tie"
    if verdict != want:
        raise Wrong(
            f"this run's numbers say {want!r}, not {verdict!r}: {v.text}.",
            "a pooling wins only when its lead exceeds 2 * sqrt(se_cls**2 + se_mean**2).",
        )
    if len(reason.split()) < 5 or not re.search(r"\d", reason):
        raise Wrong(
            "the reason should be a sentence that quotes the run's numbers.",
            "e.g. both accuracies and the noise margin, then your decision.",
        )
    return f"verdict {want!r} matches the run ({v.text})"
