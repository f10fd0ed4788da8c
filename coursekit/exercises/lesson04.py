"""Self-checks for lesson 04 (layer freezing): predict, decide, count, freeze by name, the trap."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .core import Wrong, expect_type, question

_RECIPES = ("head alone", "last block", "tie")
_MOMENTS = ("after 1 epoch", "after all epochs")


@question(
    "04.q1",
    'write your two predictions into my_prediction, e.g. {"after 1 epoch": "tie", ...}, '
    "then run the check: it only records them.",
    predict=True,
)
def _predict_depth(answer) -> str:
    expect_type(answer, dict, "my_prediction", f"a dict with the keys {', '.join(_MOMENTS)}")
    missing = [k for k in _MOMENTS if k not in answer]
    if missing:
        raise Wrong(f"my_prediction has no {missing[0]!r}.", f"use the keys {list(_MOMENTS)}.")
    for moment in _MOMENTS:
        if answer[moment] not in _RECIPES:
            raise Wrong(
                f"my_prediction[{moment!r}] is {answer[moment]!r}.",
                f"use one of {', '.join(map(repr, _RECIPES))}.",
            )
    return "prediction recorded; section 5 comes back to it after the experiment."


_DECISIONS = ("gradual", "from the start", "tie")


@question("04.q2", 'store "gradual", "from the start" or "tie" in my_decision.')
def _decide_gradual(answer, *, gradual, start) -> str:
    from ..freezing import difference

    expect_type(answer, str, "my_decision", f"one of {', '.join(map(repr, _DECISIONS))}")
    if answer not in _DECISIONS:
        raise Wrong(
            f"my_decision is {answer!r}.", f"use one of {', '.join(map(repr, _DECISIONS))}."
        )
    d = difference(gradual, start)
    shows = "gradual" if d.mean > 2 * d.se else "from the start" if d.mean < -2 * d.se else "tie"
    if answer != shows:
        hint = (
            "a difference this small is not evidence: how large is it next to its ± ?"
            if shows == "tie"
            else "is the difference small next to its ± , or several times larger?"
        )
        raise Wrong(f"{answer!r} is not what this run's numbers support.", hint)
    return f"the difference is {d}: {shows!r}."


@question("04.q3")
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


@question("04.q4")
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


@question("04.q5")
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
