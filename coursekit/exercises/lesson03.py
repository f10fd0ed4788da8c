"""Self-checks for lesson 03 (head replacement and input adaptation): a decision and a
prediction the lesson comes back to, the zero head, the one-channel stems, truncation."""

from __future__ import annotations

import math

from torch import nn

from .core import Wrong, close, expect_decision, expect_number, expect_type, question

MISTAKES = ("size", "normalisation", "neither")
POOLINGS = ("cls", "pooler", "mean")


def _beyond_noise(measure) -> bool:
    from ..claims import compare

    return compare("gap", measure, "0", 0.0, se_b=0.0).winner is not None


@question("03.q1", 'set `worse` to "size", "normalisation" or "neither", and `why`.')
def _worse(answer, *, size_gap, norm_gap) -> str:
    worse = expect_decision(
        answer, "worse", MISTAKES, "e.g. both costs with their standard errors."
    )
    costs = {"size": size_gap, "normalisation": norm_gap}
    real = {k: m for k, m in costs.items() if _beyond_noise(m) and m.mean > 0}
    want = max(real, key=lambda k: real[k].mean) if real else "neither"
    if worse != want:
        raise Wrong(
            f"this run's numbers do not point to {worse!r}.",
            "compare each cost with its own noise first: a cost within about two standard "
            "errors of zero is no evidence of a cost (lesson 00, section 2).",
        )
    return f"{want!r}: 28 px costs {size_gap}, the ImageNet numbers {norm_gap}"


@question("03.q2", 'write one of "cls", "pooler", "mean", e.g. `pooling_guess = "cls"`.',
          predict=True)  # fmt: skip
def _pooling_guess(answer) -> str:
    expect_type(answer, str, "pooling_guess", f"one of {POOLINGS}")
    if answer not in POOLINGS:
        raise Wrong(f"{answer!r} is not a pooling here.", f"use one of {POOLINGS}.")
    return f"prediction recorded: {answer!r}. The experiment below will tell."


@question("03.q3", "replace_head(copy, 3, init='zeros'), then the loss on rgb_x[:8].")
def _zero_head(answer, *, original, n_classes) -> str:
    value = expect_number(answer, "ex3_loss", 0.0)
    *_, last = (m for m in original._fc.modules() if isinstance(m, nn.Linear))
    if last.out_features != n_classes:  # the head may be Standardize -> Linear (section 3.1)
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


@question("03.q4", "adapt a fresh deep copy of vision for each method, then compare logits.")
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


@question("03.q5", "work out the kept fraction of each article first, then count all tokens.")
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
