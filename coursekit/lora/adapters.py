"""LoRA adapter files: save and load the few weights a LoRA fine-tune trains (lesson 05).

`lora.layer` holds the layer and `lora.inject` puts it on a model; this module handles the small
file a LoRA fine-tune produces. `save_adapter` writes only A, B and the `modules_to_save` weights
(e.g. the new head) to one safetensors file, with the LoRA config as JSON in its header;
`load_adapter` puts them on a fresh base model. `lora.peft` writes peft's folder format instead.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..training.checkpoint import save_tensors
from .inject import add_lora, config_of, find_modules_to_save, find_targets, lora_layers
from .layer import LoRAConfig

__all__ = ["load_adapter", "lora_state_dict", "save_adapter"]

_META_KEY = "coursekit_lora"


# --- adapter files -------------------------------------------------------------------------------


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter alone: every `lora_A` / `lora_B` plus the `modules_to_save` weights (CPU)."""
    config = config_of(model)
    prefixes = tuple(f"{n}." for n, _ in find_modules_to_save(model, config.modules_to_save))
    return {
        k: v.detach().to("cpu", copy=True).contiguous()
        for k, v in model.state_dict().items()
        if k.endswith((".lora_A", ".lora_B")) or k.startswith(prefixes)
    }


def save_adapter(model: nn.Module, path: str | Path) -> Path:
    """Write the adapter (not the base model) to one safetensors file, atomically."""
    config = config_of(model)
    meta = {"format": "pt", _META_KEY: json.dumps(asdict(config))}
    save_tensors(path, lora_state_dict(model), meta)
    return Path(path)


def _planned_shapes(model: nn.Module, config: LoRAConfig) -> dict[str, tuple[int, ...]]:
    """The adapter shapes `add_lora(model, **config)` would create, without touching `model`."""
    shapes = {}
    for name, linear in find_targets(model, config.target_modules):
        shapes[f"{name}.lora_A"] = (config.r, linear.in_features)
        shapes[f"{name}.lora_B"] = (linear.out_features, config.r)
    for name, module in find_modules_to_save(model, config.modules_to_save):
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
    if not fresh and config_of(model).alpha != config.alpha:
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
