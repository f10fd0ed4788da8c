"""Exporting a coursekit LoRA adapter in peft's format, so `peft.PeftModel` loads it (lesson 05);
`load_with_peft` loads it back with peft itself, to check the two compute the same function.

peft wraps the model twice (PeftModel -> LoraModel -> model), keeps A and B as nn.Linear layers
(so their weights end in `.weight`) and reads `adapter_config.json` next to
`adapter_model.safetensors`. Both files are written atomically.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from ..runtime.files import atomic_write
from ..training.checkpoint import save_tensors
from .adapters import lora_state_dict
from .inject import config_of, lora_layers

__all__ = ["load_with_peft", "peft_config", "save_peft_adapter", "to_peft_state_dict"]


def to_peft_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter under peft's key names: `base_model.model.<path>.lora_A.weight`, ...

    peft wraps the model twice (PeftModel -> LoraModel -> model), keeps A and B as nn.Linear
    (hence `.weight`), and saves `modules_to_save` under the module's own path.
    """
    return {
        "base_model.model." + (k + ".weight" if k.endswith((".lora_A", ".lora_B")) else k): v
        for k, v in lora_state_dict(model).items()
    }


def peft_config(
    model: nn.Module, base_model_name_or_path: str | None = None, task_type: str | None = None
) -> dict:
    """peft's `adapter_config.json` for this model's LoRA (fields every peft >= 0.10 reads).
    `task_type` (e.g. "CAUSAL_LM", lesson 08) picks the class `PeftModel.from_pretrained` builds.

    peft reads a bare string as a full-match regex and a list as names, so plain names are
    exported as they are, and "re:" patterns as the exact list of wrapped module names.
    """
    config = config_of(model)
    plain = not any(t.startswith("re:") for t in config.target_modules)
    if base_model_name_or_path is None:
        base_model_name_or_path = getattr(getattr(model, "config", None), "name_or_path", None)
    return {
        "peft_type": "LORA",
        "task_type": task_type,
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
    model: nn.Module,
    directory: str | Path,
    base_model_name_or_path: str | None = None,
    task_type: str | None = None,
) -> Path:
    """Write `adapter_model.safetensors` + `adapter_config.json` that peft loads with
    `PeftModel.from_pretrained(base_model, directory)`."""
    directory = Path(directory)
    save_tensors(
        directory / "adapter_model.safetensors", to_peft_state_dict(model), {"format": "pt"}
    )
    text = json.dumps(peft_config(model, base_model_name_or_path, task_type), indent=2) + "\n"
    atomic_write(directory / "adapter_config.json", lambda tmp: tmp.write_text(text, "utf-8"))
    return directory


def load_with_peft(base_model: nn.Module, directory: str | Path) -> nn.Module:
    """`peft.PeftModel.from_pretrained(base_model, directory)`, in eval mode.

    peft's loading calls transformers APIs that transformers has deprecated (e.g.
    `is_gradient_checkpointing`); those FutureWarnings are addressed to peft's maintainers, not
    to the learner, so they are silenced here and nowhere else.
    """
    import peft

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
        return peft.PeftModel.from_pretrained(base_model, str(directory)).eval()
