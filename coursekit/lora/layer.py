"""LoRA from scratch: fine-tune a large model by training two thin matrices per layer.

A pre-trained linear layer computes `W x`. Fine-tuning changes W by some update dW, and for
adapting to a new task that update has a low "intrinsic rank" (Hu et al., 2021). So LoRA freezes
W and learns the update as a product of two thin matrices, A (r x in) and B (out x r):

    h = W x + (alpha / r) * B A x

- B starts at zero, so `B A = 0` and the wrapped model computes *exactly* what the base model
  computes: training starts from the pre-trained behaviour, not from a perturbed copy of it.
  A starts random (kaiming-uniform, as in peft), otherwise B would get no gradient.
- `alpha / r` scales the update, so trying another rank does not mean retuning the learning rate.
- A layer with in x out weights gets r * (in + out) trainable numbers: MiniLM's 384 x 384 `query`
  at r=8 trains 6,144 instead of 147,456 (4%).
- `merge()` folds the update into the weight, `W <- W + (alpha/r) B A`, so the trained model runs
  as fast as the base; `unmerge()` subtracts it again.

Choosing layers (`add_lora`, the same rule as peft): a plain name such as "query" selects every
module whose full name is "query" or ends with ".query"; "re:<regex>" selects the modules whose
full name matches the regex entirely (peft writes such a regex as a bare string).

This file holds the layer; `lora.inject` puts it on a model and merges it, `lora.adapters`
saves and loads the small adapter file, `lora.peft` exports peft's format. Lessons 05 and 06.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LoRAConfig", "LoRALinear"]


@dataclass
class LoRAConfig:
    """What `add_lora` did to a model; stored on it as `model.lora_config` and in adapter files."""

    target_modules: list[str]
    r: int = 8
    alpha: float = 16
    dropout: float = 0.0
    modules_to_save: list[str] = field(default_factory=list)


class LoRALinear(nn.Module):
    """`base(x) + (alpha / r) * B A dropout(x)`, with `base` (an nn.Linear) frozen.

    A and B are kept in float32 even when the base is half precision: the small updates of
    training would round away in fp16/bf16.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, not a {type(base).__name__}")
        self.base = base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        w = base.weight
        dtype = w.dtype if w.dtype in (torch.float32, torch.float64) else torch.float32
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's (and peft's) init
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The learned update (alpha / r) * B A, shaped like the base weight (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:  # the update is already inside base.weight: adding it again double-counts
            return out
        update = F.linear(F.linear(self.dropout(x).to(self.lora_A.dtype), self.lora_A), self.lora_B)
        return out + (update * self.scaling).to(out.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight (W += (alpha/r) B A); forward then skips A, B."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again (exact up to float rounding)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"
