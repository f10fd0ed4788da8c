"""Self-checks for lesson 05 (LoRA)."""

from __future__ import annotations

import torch

from .core import Wrong, expect_type, question


@question("05.q1")
def _count(answer, *, measured) -> str:
    expect_type(answer, int, "expected_r16", "a parameter count is a whole number")
    if answer == measured:
        return f"{answer:,} trainable parameters, computed without building a model"
    if answer == measured - (384 * 5 + 5):
        raise Wrong("that is the LoRA part only.", "add the 5-way head's weights and biases.")
    raise Wrong(
        f"{answer:,} does not match what the r=16 model trains.",
        "each wrapped layer adds r x (in + out) parameters: A is r x in and B is out x r.",
    )


@question("05.q2")
def _wide(answer, *, model) -> str:
    from ..params import count_parameters

    expect_type(answer, list, "wrapped_names", "store the list that add_lora returns")
    if any(
        "intermediate" in n or n.endswith("output.dense") and "attention" not in n for n in answer
    ):
        raise Wrong(
            "some wrapped layers are feed-forward layers.",
            "target 'attention.output.dense', not every 'output.dense'.",
        )
    if len(answer) != 24:
        raise Wrong(
            f"{len(answer)} layers are wrapped; 6 layers x 4 projections = 24.",
            "pass all four names: query, key, value and attention.output.dense.",
        )
    trainable = count_parameters(model).trainable
    lora_params = sum(
        p.numel() for n, p in model.named_parameters() if "lora_" in n and p.requires_grad
    )
    if lora_params != 24 * 4 * (384 + 384):
        raise Wrong(f"the LoRA matrices hold {lora_params:,} parameters.", "use r=4.")
    if trainable != lora_params + 384 * 5 + 5:
        raise Wrong(
            f"{trainable:,} parameters are trainable.",
            "keep the classifier trainable (modules_to_save) and nothing else.",
        )
    return f"24 layers wrapped, {trainable:,} trainable parameters"


@question("05.q3")
def _merge(answer, *, layer) -> str:
    expect_type(answer, torch.Tensor, "my_merged")
    merged = layer.base.weight + layer.delta_weight()
    if answer.shape != merged.shape:
        raise Wrong(
            f"`my_merged` has shape {tuple(answer.shape)}, the weight has {tuple(merged.shape)}.",
            "B @ A (out x r times r x in), not A @ B.",
        )
    if (
        torch.allclose(answer, layer.base.weight + layer.lora_B @ layer.lora_A, atol=1e-6)
        and layer.alpha != layer.r
    ):
        raise Wrong("the update is not scaled.", "multiply B @ A by alpha / r.")
    if not torch.allclose(answer, merged, atol=1e-5):
        raise Wrong("`my_merged` is not the merged weight.", "W + (alpha / r) * B @ A.")
    return "W + (alpha / r) B A, exactly what merging stores"


@question("05.q4", none_is_answer=True)
def _ship_rank(answer, *, rows) -> str:
    from ..claims import compare

    if answer is not None:
        expect_type(answer, int, "ship_rank", "a LoRA rank such as 4, or None")
    full = next(r for r in rows if r["strategy"] == "full fine-tune")
    ranks = {int(r["strategy"].split("=")[1]): r for r in rows if r["strategy"].startswith("LoRA")}
    if answer is not None and answer not in ranks:
        raise Wrong(
            f"r={answer} was not trained here.", f"the ranks in `rows` are {sorted(ranks)}."
        )
    verdicts = {
        rank: compare(
            "full",
            full["test_accuracy"],
            "lora",
            r["test_accuracy"],
            se_a=full["accuracy_se"],
            se_b=r["accuracy_se"],
        )  # fmt: skip
        for rank, r in ranks.items()
    }
    as_good = sorted(rank for rank, v in verdicts.items() if v.winner != "full")
    if answer is None and as_good:
        raise Wrong(
            f"r={as_good[0]} is within the noise of full fine-tuning.",
            "a rank qualifies when full FT's accuracy minus its accuracy is at most "
            "2 * sqrt(se_full**2 + se_rank**2).",
        )
    if answer is not None and answer not in as_good:
        v = verdicts[answer]
        raise Wrong(
            f"full fine-tuning beats r={answer} by {v.diff:.3f}, more than two standard errors of "
            f"the difference ({v.margin:.3f}).",
            "keep only the ranks this run cannot tell from full fine-tuning.",
        )
    if answer is not None and answer != as_good[0]:
        raise Wrong(
            "a smaller rank is also as good as full fine-tuning in this run.",
            "among the ranks that qualify, ship the smallest: the cheapest to store and train.",
        )
    if answer is None:
        return "full fine-tuning is ahead of every rank beyond the noise in this run."
    return (
        f"r={answer} is within the noise of full fine-tuning "
        f"({verdicts[answer].diff:+.3f}, margin {verdicts[answer].margin:.3f}) and the smallest "
        "such rank."
    )
