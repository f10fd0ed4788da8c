"""Self-checks for lesson 04 (layer freezing)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .core import Wrong, expect_type, question


@question("04.q1")
def _count(answer, *, model) -> str:
    from ..freezing import blocks_of
    from ..params import count_parameters

    expect_type(answer, int, "expected_k3", "a parameter count is a whole number")
    trainable = count_parameters(model).trainable
    if answer == trainable:
        return f"{answer:,} trainable parameters, counted before training"
    blocks = sum(count_parameters(b).total for _, b in blocks_of(model)[-3:])
    if answer == blocks:
        raise Wrong(
            "you counted the last three blocks only.",
            "unfreeze_last also trains _conv_head, _bn1 and the head _fc.",
        )
    if answer > trainable:
        raise Wrong(
            f"{answer:,} is more than unfreeze_last(model, 3) trains.",
            "count only the last 3 entries of blocks_of(model), plus _conv_head, _bn1, _fc.",
        )
    raise Wrong(
        f"{answer:,} is fewer than unfreeze_last(model, 3) trains.",
        "count every parameter of each part: ck.count_parameters(module).total.",
    )


@question("04.q2")
def _freeze_bn(answer, *, model) -> str:
    expect_type(answer, list, "frozen_names", "store what freezing.freeze returns")
    bn = {n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    still = [
        n for n, p in model.named_parameters() if n.rsplit(".", 1)[0] in bn and p.requires_grad
    ]
    if still:
        raise Wrong(
            f"{len(still)} BatchNorm parameters are still trainable, e.g. {still[0]}.",
            "a glob pattern that matches every module name containing '_bn'.",
        )
    wrong = [
        n
        for n, p in model.named_parameters()
        if n.rsplit(".", 1)[0] not in bn and not p.requires_grad
    ]
    if wrong:
        raise Wrong(
            f"{len(wrong)} parameters outside BatchNorm are frozen too, e.g. {wrong[0]}.",
            "make the pattern match BatchNorm layers only.",
        )
    if len(answer) != 2 * len(bn):
        raise Wrong(
            f"`frozen_names` lists {len(answer)} names; the model has {len(bn)} "
            "BatchNorm layers with a weight and a bias each.",
            "store the list returned by this one freezing.freeze call.",
        )
    return f"{len(bn)} BatchNorm layers frozen, everything else trainable"


@question("04.q3")
def _bn_trap(answer, *, trap, fix, data) -> str:
    expect_type(answer, Callable, "stats_changed", "define a function stats_changed(model, data)")
    trap_changed, fix_changed = answer(trap, data), answer(fix, data)
    if not isinstance(trap_changed, bool) or not isinstance(fix_changed, bool):
        raise Wrong(
            "stats_changed should return True or False.",
            "compare the buffers with torch.equal and combine with any(...).",
        )
    if not trap_changed:
        raise Wrong(
            "with bn='train' your function reports no change.",
            "copy (clone) the running means before training; otherwise you compare the "
            "buffers with themselves after they changed.",
        )
    if fix_changed:
        raise Wrong(
            "with bn='eval' your function reports a change.",
            "look only at buffers whose names end in 'running_mean', compared exactly.",
        )
    return "the trap moves the statistics, the fix keeps them bit-identical"


_VERDICTS = ("deeper", "k=0", "tie")


@question("04.q4")
def _predict_depth(answer, *, prediction, rows, deep) -> str:
    from ..claims import compare

    expect_type(answer, str, "verdict", 'one of "deeper", "k=0" or "tie"')
    for name, value in (("verdict", answer), ("my_prediction", prediction)):
        if value not in _VERDICTS:
            raise Wrong(f"{name} is {value!r}.", f"use one of {', '.join(map(repr, _VERDICTS))}.")
    by_k = {r["k"]: r for r in rows}
    d, k0 = by_k[deep], by_k[0]
    v = compare("deeper", d["test_accuracy"], "k=0", k0["test_accuracy"],
                se_a=d["accuracy_se"], se_b=k0["accuracy_se"])  # fmt: skip
    shows = v.winner or "tie"
    if answer != shows:
        raise Wrong(
            f"the gap is {v.diff:+.3f} with a noise margin of {v.margin:.3f}, so {answer!r} is not "
            "what this run shows.",
            "compare |gap| with 2 * sqrt(se_deep**2 + se_0**2); only beyond it is there a winner.",
        )
    if prediction == shows:
        return f"this run shows {shows!r} ({v.diff:+.3f}, margin {v.margin:.3f}), as you predicted."
    return (
        f"this run shows {shows!r} ({v.diff:+.3f}, margin {v.margin:.3f}); you predicted "
        f"{prediction!r}: section 5's 'What to expect' says which conditions decide it."
    )
