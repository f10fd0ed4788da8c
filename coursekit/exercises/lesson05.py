"""Self-checks for lesson 05 (LoRA): a prediction of fine-tuning's gain over the head, counting
LoRA's parameters, LoRA on more layers, merging by hand, and reading the run's noise."""

from __future__ import annotations

import torch

from .core import Wrong, expect_number, expect_type, question

HEAD_2 = 384 * 2 + 2  # the 2-way head of lesson 05's text classifier


@question(
    "05.q1",
    "write the accuracy you expect full fine-tuning to add over the head, e.g. "
    "`gain_guess = 0.1` for ten points.",
    predict=True,
)
def _gain_guess(answer) -> str:
    value = expect_number(answer, "gain_guess", -1.0, 1.0)
    if abs(value) >= 1.0:
        raise Wrong(
            f"a gain of {value:+.2f} would take an accuracy past 0 or 1.",
            "an accuracy difference: 0.05 is five points.",
        )
    return f"prediction recorded: full fine-tuning {value:+.3f} over the head. The runs will tell."


@question("05.q2", "A is r x in and B is out x r for each wrapped layer; then add the head.")
def _count(answer, *, measured) -> str:
    expect_type(answer, int, "expected_r16", "a parameter count is a whole number")
    if answer == measured:
        return f"{answer:,} trainable parameters, computed without building a model"
    if answer == measured - HEAD_2:
        raise Wrong("that is the LoRA part only.", "add the 2-way head's weights and biases.")
    if answer == (measured - HEAD_2) // 2 + HEAD_2:
        raise Wrong("that counts one projection per layer.", "LoRA wraps both query and value.")
    raise Wrong(
        f"{answer:,} does not match what the r=16 model trains.",
        "each wrapped layer adds r x (in + out) parameters: A is r x in and B is out x r.",
    )


@question("05.q3", "lora.add_lora(model, [names...], r=4, alpha=8, modules_to_save=[...]).")
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
    head = sum(
        p.numel() for n, p in model.named_parameters() if "lora_" not in n and p.requires_grad
    )
    if head == 0:
        raise Wrong("the head is frozen.", "name it in modules_to_save: it has nothing to keep.")
    if trainable != lora_params + head or head != HEAD_2:
        raise Wrong(
            f"{trainable:,} parameters are trainable.",
            "keep the head trainable (modules_to_save) and nothing else.",
        )
    return f"24 layers wrapped, {trainable:,} trainable parameters"


@question("05.q4", "W + (alpha / r) * B @ A, from the layer's own tensors.")
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


@question("05.q5", "set `full_ahead = True` or `False` from the runs in `rows`.")
def _full_ahead(answer, *, rows) -> str:
    from ..claims import compare
    from ..strategies import difference

    if not isinstance(answer, bool):
        expect_type(answer, bool, "full_ahead", "True or False.")
    gap = difference(rows, "full fine-tune", "LoRA r=8")
    verdict = compare("full - LoRA", gap, "no difference", 0.0, se_b=0.0)
    ahead = verdict.winner == "full - LoRA"
    if answer != ahead:
        raise Wrong(
            "that is not what these runs show.",
            "compare full fine-tuning and LoRA seed by seed on the same tweets "
            "(ck.strategies.difference), and weigh the difference against its standard error.",
        )
    seeds = ", ".join(f"{v:+.3f}" for v in gap.values)
    if ahead:
        return (
            f"full fine-tuning is ahead by {gap} (per seed {seeds}): beyond two standard "
            "errors. Whether that is worth 300x the parameters is your call."
        )
    return (
        f"full minus LoRA is {gap} (per seed {seeds}): within two standard errors, so this run "
        "cannot tell them apart; ship the one that is cheaper to store and serve."
    )
