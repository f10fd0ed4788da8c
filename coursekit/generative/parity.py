"""Is the course's LoRA the same computation as peft's, on this decoder? Measured, not assumed.

Both put a low-rank update on the same layers (q_proj and v_proj of every attention block). With
the same A and B (B made non-zero, or both would trivially equal the base model), one forward and
backward pass of the SFT loss through each must give the same logits and the same gradients of
every A and B, up to float rounding. One model copy at a time is kept in memory. Lesson 08.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from ..lora import add_lora, lora_layers
from .sft import causal_lm_loss

__all__ = ["lora_peft_gap"]


def _forward_backward(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    causal_lm_loss(out.logits, batch["labels"]).backward()
    return out.logits.detach()


def lora_peft_gap(
    base: nn.Module, batch: dict[str, torch.Tensor], lora: dict[str, Any], seed: int = 0
) -> dict[str, float]:
    """{"logits": max |ours - peft's|, "grads": max over every A and B gradient, "effect": max
    |ours - base| (how much the update changes the logits: the gap means little if this is 0)}."""
    import peft

    ours = copy.deepcopy(base)
    add_lora(ours, **lora)
    torch.manual_seed(seed)
    weights = {}
    with torch.no_grad():
        for name, layer in lora_layers(ours).items():
            layer.lora_B.normal_(std=0.02)
            weights[name] = (layer.lora_A.clone(), layer.lora_B.clone())
    with torch.no_grad():
        plain = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits = _forward_backward(ours, batch)
    grads = {
        n: (m.lora_A.grad.clone(), m.lora_B.grad.clone()) for n, m in lora_layers(ours).items()
    }
    del ours
    config = peft.LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=0.0,
                             target_modules=list(lora["target_modules"]))  # fmt: skip
    with warnings.catch_warnings():  # peft's notes on transformers' renamed attributes
        warnings.simplefilter("ignore", FutureWarning)
        theirs = peft.get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, (a, b) in weights.items():
            target = theirs.get_submodule(f"base_model.model.{name}")
            target.lora_A["default"].weight.copy_(a)
            target.lora_B["default"].weight.copy_(b)
    gap = (logits - _forward_backward(theirs, batch)).abs().max().item()
    grad_gap = 0.0
    for name, (ga, gb) in grads.items():
        target = theirs.get_submodule(f"base_model.model.{name}")
        grad_gap = max(grad_gap, (ga - target.lora_A["default"].weight.grad).abs().max().item(),
                       (gb - target.lora_B["default"].weight.grad).abs().max().item())  # fmt: skip
    return {"logits": gap, "grads": grad_gap, "effect": (logits - plain).abs().max().item()}
