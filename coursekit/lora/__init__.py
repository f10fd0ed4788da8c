"""LoRA from scratch: the layer, putting it on a model, merging, adapter files (lesson 05)."""

from .adapters import (
    load_adapter,
    lora_state_dict,
    peft_config,
    save_adapter,
    save_peft_adapter,
    to_peft_state_dict,
)
from .layer import LoRAConfig, LoRALinear, add_lora, lora_layers, merge_lora, unmerge_lora

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
