"""Putting LoRA on a model: choose layers by name, wrap them, merge and unmerge (lessons 05, 06).

Choosing layers (`add_lora`, the same rule as peft): a plain name such as "query" selects every
module whose full name is "query" or ends with ".query"; "re:<regex>" selects the modules whose
full name matches the regex entirely (peft writes such a regex as a bare string). Every base
parameter is frozen; only the LoRA matrices and the `modules_to_save` (a new head) train.
`merge_lora` folds each update into its base weight for inference; `unmerge_lora` takes it out.
`add_text_lora` is the course's one convention for MiniLM (lessons 05, 06 and 07): rank r on the
attention `query` and `value` projections of every layer, alpha = 2r, the new head trainable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from ..params import set_submodule
from .layer import LoRAConfig, LoRALinear

__all__ = [
    "TEXT_TARGETS",
    "add_lora",
    "add_text_lora",
    "as_list",
    "config_of",
    "find_modules_to_save",
    "find_targets",
    "lora_layers",
    "merge_lora",
    "unmerge_lora",
]


# The layers LoRA adapts in the course's text model (the LoRA paper's choice for attention).
TEXT_TARGETS = ("query", "value")


# --- choosing modules by name --------------------------------------------------------------------


def as_list(names: str | Sequence[str]) -> list[str]:
    """A name or a sequence of names as a list."""
    return [names] if isinstance(names, str) else list(names)


def _matches(name: str, patterns: list[str]) -> bool:
    """peft's rule: "re:<regex>" must match the full name; a plain name, the name or its tail."""
    return any(
        re.fullmatch(p[3:], name) if p.startswith("re:") else name == p or name.endswith("." + p)
        for p in patterns
    )


def find_targets(model: nn.Module, patterns: list[str]) -> list[tuple[str, nn.Linear]]:
    """The nn.Linear layers `patterns` select, by name; a clear error if none, or not Linear."""
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


def find_modules_to_save(model: nn.Module, patterns: list[str]) -> list[tuple[str, nn.Module]]:
    """The modules (e.g. a new head) that train fully next to LoRA; every pattern must match."""
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


def config_of(model: nn.Module) -> LoRAConfig:
    """The `LoRAConfig` that `add_lora` stored on `model`; an error if it has no LoRA."""
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
    targets, to_save = as_list(target_modules), as_list(modules_to_save)
    found = find_targets(model, targets)
    saved = find_modules_to_save(model, to_save)
    model.requires_grad_(False)
    for name, linear in found:
        set_submodule(model, name, LoRALinear(linear, r, alpha, dropout))
    for _, module in saved:
        module.requires_grad_(True)
    model.lora_config = LoRAConfig(targets, r, alpha, dropout, to_save)
    return [name for name, _ in found]


def merge_lora(model: nn.Module) -> list[str]:
    """Merge every LoRA layer's update into its base weight (for fast inference), in place;
    return the merged layers' names."""
    config_of(model)
    layers = lora_layers(model)
    for layer in layers.values():
        layer.merge()
    return list(layers)


def unmerge_lora(model: nn.Module) -> list[str]:
    """Undo `merge_lora` in place (e.g. to train further or to swap the adapter); return the
    unmerged layers' names."""
    config_of(model)
    layers = lora_layers(model)
    for layer in layers.values():
        layer.unmerge()
    return list(layers)


def add_text_lora(model: nn.Module, r: int = 8, head: str | None = None) -> list[str]:
    """LoRA the way lessons 05, 06 and 07 put it on MiniLM; returns the wrapped layer names.

    Rank `r` on `TEXT_TARGETS` (query and value) of every layer, `alpha = 2 r` (the update's
    scale alpha / r stays 2 at every rank, so ranks compare at one learning rate), and the new
    head trainable: `head`, default "head" (`TextClassifier`) or "classifier" (a Hugging Face
    classifier). MiniLM (6 layers, 384 wide) then trains 12 r (384 + 384) numbers plus the head:
    74,498 at r=8 with a 2-way head.
    """
    if head is None:
        head = "head" if isinstance(getattr(model, "head", None), nn.Module) else "classifier"
    return add_lora(model, list(TEXT_TARGETS), r=r, alpha=2 * r, modules_to_save=[head])
