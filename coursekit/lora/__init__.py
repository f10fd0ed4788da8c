"""LoRA from scratch: the layer, putting it on a model, merging, adapter files (lesson 05)."""

from .adapters import load_adapter, lora_state_dict, save_adapter
from .inject import (
    TEXT_TARGETS,
    add_lora,
    add_text_lora,
    config_of,
    find_modules_to_save,
    find_targets,
    lora_layers,
    merge_lora,
    unmerge_lora,
)
from .layer import LoRAConfig, LoRALinear
from .peft import peft_config, save_peft_adapter, to_peft_state_dict

__all__ = [
    "TEXT_TARGETS",
    "LoRAConfig",
    "LoRALinear",
    "add_lora",
    "add_text_lora",
    "config_of",
    "find_modules_to_save",
    "find_targets",
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
