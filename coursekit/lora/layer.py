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

Files (`save_adapter`, `load_adapter`, `save_peft_adapter`, ...) live in `lora_adapters.py` and
are re-exported here, so `lora.save_adapter` etc. keep working.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LoRAConfig",
    "LoRALinear",
    "add_lora",
    "lora_layers",
    "merge_lora",
    "unmerge_lora",
]


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


# --- choosing modules by name --------------------------------------------------------------------


def _as_list(names: str | Sequence[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _matches(name: str, patterns: list[str]) -> bool:
    """peft's rule: "re:<regex>" must match the full name; a plain name, the name or its tail."""
    return any(
        re.fullmatch(p[3:], name) if p.startswith("re:") else name == p or name.endswith("." + p)
        for p in patterns
    )


def _find_targets(model: nn.Module, patterns: list[str]) -> list[tuple[str, nn.Linear]]:
    found = [(n, m) for n, m in model.named_modules() if n and _matches(n, patterns)]
    if not found:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        short = sorted({n.rsplit(".", 1)[-1] for n in linear})
        raise ValueError(
            f"target_modules={patterns} matches no module of this {type(model).__name__}. A name "
            "selects the modules whose full name is it or ends with '.<name>' ('re:<regex>' "
            f"matches full names). Its nn.Linear layers are named {short[:12]}, e.g. {linear[:3]}."
        )
    wrong = [(n, m) for n, m in found if not isinstance(m, nn.Linear)]
    if wrong:
        name, module = wrong[0]
        inner = [f"{name}.{c}" for c, m in module.named_modules() if c and isinstance(m, nn.Linear)]
        raise TypeError(
            f"target_modules={patterns} matches {name!r}, a {type(module).__name__} "
            f"({len(wrong)} of {len(found)} matches are not nn.Linear); LoRA here supports only "
            "nn.Linear layers. Use more specific names"
            + (f", e.g. the Linear layers inside it: {inner[:4]}." if inner else ".")
        )
    return found


def _find_modules_to_save(model: nn.Module, patterns: list[str]) -> list[tuple[str, nn.Module]]:
    found = [(n, m) for n, m in model.named_modules() if n and _matches(n, patterns)]
    missing = [p for p in patterns if not any(_matches(n, [p]) for n, _ in found)]
    if missing:
        top = [n for n, _ in model.named_children()]
        raise ValueError(
            f"modules_to_save {missing} match no module; top-level modules are {top} "
            "(name the new head, e.g. 'classifier')."
        )
    return found


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRALinear of `model` by its full name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _config(model: nn.Module) -> LoRAConfig:
    config = getattr(model, "lora_config", None)
    if not isinstance(config, LoRAConfig) or not lora_layers(model):
        raise ValueError("this model has no LoRA layers: call add_lora(model, ...) first.")
    return config


# --- injecting, merging ----------------------------------------------------------------------


def add_lora(
    model: nn.Module,
    target_modules: str | Sequence[str],
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
    modules_to_save: str | Sequence[str] = (),
) -> list[str]:
    """Wrap the selected nn.Linear layers in LoRALinear, in place; return their names.

    Every base parameter is frozen; only the LoRA matrices and the `modules_to_save` (e.g. a new
    classifier head, which has nothing pre-trained to keep) train. See the module docstring for
    how names select modules.
    """
    if existing := list(lora_layers(model)):
        raise ValueError(
            f"this model already has LoRA on {len(existing)} layers (e.g. {existing[0]!r}). "
            "Call add_lora once, on a fresh model; "
            "to try other targets or another rank, load the base model again."
        )
    if r < 1 or alpha <= 0 or not 0 <= dropout < 1:
        raise ValueError(f"need r >= 1, alpha > 0, 0 <= dropout < 1; got {r}, {alpha}, {dropout}")
    targets, to_save = _as_list(target_modules), _as_list(modules_to_save)
    found = _find_targets(model, targets)
    saved = _find_modules_to_save(model, to_save)
    model.requires_grad_(False)
    for name, linear in found:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, LoRALinear(linear, r, alpha, dropout))
    for _, module in saved:
        module.requires_grad_(True)
    model.lora_config = LoRAConfig(targets, r, alpha, dropout, to_save)
    return [name for name, _ in found]


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer's update into its base weight (for fast inference)."""
    _config(model)
    for layer in lora_layers(model).values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo `merge_lora`, e.g. to train further or to swap the adapter."""
    _config(model)
    for layer in lora_layers(model).values():
        layer.unmerge()
    return model

