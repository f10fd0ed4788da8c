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

Files: `save_adapter` writes only A, B and the `modules_to_save` weights (e.g. the new head) to
one safetensors file, with the LoRA config as JSON in its header; `load_adapter` puts them on a
fresh base model. `save_peft_adapter` writes peft's folder format for `PeftModel.from_pretrained`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from torch.nn import functional as F

from .checkpoint import _atomic_save

__all__ = [
    "LoRAConfig",
    "LoRALinear",
    "add_lora",
    "load_adapter",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
    "peft_config",
    "save_adapter",
    "save_peft_adapter",
    "to_peft_state_dict",
    "unmerge_lora",
]

_META_KEY = "coursekit_lora"


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


# --- adapter files -------------------------------------------------------------------------------


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter alone: every `lora_A` / `lora_B` plus the `modules_to_save` weights (CPU)."""
    config = _config(model)
    prefixes = tuple(f"{n}." for n, _ in _find_modules_to_save(model, config.modules_to_save))
    return {
        k: v.detach().to("cpu", copy=True).contiguous()
        for k, v in model.state_dict().items()
        if k.endswith((".lora_A", ".lora_B")) or k.startswith(prefixes)
    }


def save_adapter(model: nn.Module, path: str | Path) -> Path:
    """Write the adapter (not the base model) to one safetensors file, atomically."""
    config = _config(model)
    meta = {"format": "pt", _META_KEY: json.dumps(asdict(config))}
    _atomic_save(lora_state_dict(model), meta, Path(path))
    return Path(path)


def _planned_shapes(model: nn.Module, config: LoRAConfig) -> dict[str, tuple[int, ...]]:
    """The adapter shapes `add_lora(model, **config)` would create, without touching `model`."""
    shapes = {}
    for name, linear in _find_targets(model, config.target_modules):
        shapes[f"{name}.lora_A"] = (config.r, linear.in_features)
        shapes[f"{name}.lora_B"] = (linear.out_features, config.r)
    for name, module in _find_modules_to_save(model, config.modules_to_save):
        shapes.update({f"{name}.{k}": tuple(v.shape) for k, v in module.state_dict().items()})
    return shapes


def load_adapter(model: nn.Module, path: str | Path) -> nn.Module:
    """Put a `save_adapter` file on `model`: a fresh base (LoRA is added) or one with equal LoRA.

    Reads without pickle, and checks the adapter's layers and shapes fit before changing anything.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no adapter file at {path} (save_adapter writes one)")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if _META_KEY not in meta:
        raise ValueError(
            f"{path} is not a coursekit adapter (no LoRA config in its header). A peft adapter "
            "folder loads with peft.PeftModel.from_pretrained(base_model, folder)."
        )
    config = LoRAConfig(**json.loads(meta[_META_KEY]))
    fresh = not lora_layers(model)
    if not fresh and any(layer.merged for layer in lora_layers(model).values()):
        raise ValueError("this model's LoRA layers are merged: call unmerge_lora(model) first.")
    if not fresh and _config(model).alpha != config.alpha:
        raise ValueError(f"{path} has alpha={config.alpha}, unlike {model.lora_config}")
    try:
        expected = (
            _planned_shapes(model, config)
            if fresh
            else {k: tuple(v.shape) for k, v in lora_state_dict(model).items()}
        )
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path} does not fit this model: {err}") from err
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != expected:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        shapes = [
            f"{k}: file {got[k]}, model {s}" for k, s in expected.items() if got.get(k, s) != s
        ]
        raise ValueError(
            f"{path} does not fit this model (the adapter targets {config.target_modules} at "
            f"r={config.r}): {len(missing)} weights missing from the file (e.g. {missing[:2]}), "
            f"{len(extra)} unexpected (e.g. {extra[:2]}), {len(shapes)} shape mismatches "
            f"(e.g. {shapes[:2]}). Load it on the base model it was trained on, with no LoRA "
            "or the same add_lora settings."
        )
    if fresh:
        add_lora(model, **asdict(config))  # LoRAConfig's fields are add_lora's arguments
    model.load_state_dict(tensors, strict=False)
    return model


# --- peft's format -------------------------------------------------------------------------------


def to_peft_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter under peft's key names: `base_model.model.<path>.lora_A.weight`, ...

    peft wraps the model twice (PeftModel -> LoraModel -> model), keeps A and B as nn.Linear
    (hence `.weight`), and saves `modules_to_save` under the module's own path.
    """
    return {
        "base_model.model." + (k + ".weight" if k.endswith((".lora_A", ".lora_B")) else k): v
        for k, v in lora_state_dict(model).items()
    }


def peft_config(model: nn.Module, base_model_name_or_path: str | None = None) -> dict:
    """peft's `adapter_config.json` for this model's LoRA (fields every peft >= 0.10 reads).

    peft reads a bare string as a full-match regex and a list as names, so plain names are
    exported as they are, and "re:" patterns as the exact list of wrapped module names.
    """
    config = _config(model)
    plain = not any(t.startswith("re:") for t in config.target_modules)
    if base_model_name_or_path is None:
        base_model_name_or_path = getattr(getattr(model, "config", None), "name_or_path", None)
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": base_model_name_or_path or None,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": config.target_modules if plain else sorted(lora_layers(model)),
        "modules_to_save": config.modules_to_save or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "inference_mode": True,
    }


def save_peft_adapter(
    model: nn.Module, directory: str | Path, base_model_name_or_path: str | None = None
) -> Path:
    """Write `adapter_model.safetensors` + `adapter_config.json` that peft loads with
    `PeftModel.from_pretrained(base_model, directory)`."""
    directory = Path(directory)
    _atomic_save(
        to_peft_state_dict(model), {"format": "pt"}, directory / "adapter_model.safetensors"
    )
    text = json.dumps(peft_config(model, base_model_name_or_path), indent=2)
    tmp = directory / f".adapter_config.json.tmp-{os.getpid()}"
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, directory / "adapter_config.json")
    return directory
