"""LoRA adapter files: save, load, and export to peft's format.

`lora.py` holds the layer and puts it on a model; this module handles the small file that a LoRA
fine-tune produces. `save_adapter` writes only A, B and the `modules_to_save` weights (e.g. the
new head) to one safetensors file, with the LoRA config as JSON in its header; `load_adapter`
puts them on a fresh base model. `save_peft_adapter` writes peft's folder format for
`PeftModel.from_pretrained`.

Every name here is also reachable as `coursekit.lora.<name>` (the notebooks use that).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..checkpoint import _atomic_save
from .layer import LoRAConfig, _config, _find_modules_to_save, _find_targets, add_lora, lora_layers

__all__ = [
    "load_adapter",
    "lora_state_dict",
    "peft_config",
    "save_adapter",
    "save_peft_adapter",
    "to_peft_state_dict",
]

_META_KEY = "coursekit_lora"


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
