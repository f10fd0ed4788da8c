"""Taking a tuned decoder elsewhere: a merged Hugging Face model, or a small peft adapter.

Two formats, two uses:
- **merged**: every LoRA update folded into its weight (`W + (alpha/r) B A`) and the LoRA layers
  removed, saved with `save_pretrained` next to its tokenizer and chat template. Any tool that
  reads Hugging Face models loads it with `AutoModelForCausalLM.from_pretrained(folder)`, and it
  runs exactly as fast as the base model. It weighs as much as the base model, though.
- **adapter**: only A and B (a few MB), in peft's format; `PeftModel.from_pretrained(base,
  folder)` puts it on the base model. One base, many small adapters.

A 4-bit base (QLoRA) cannot absorb an update into 4-bit numbers: `export_merged` then takes a
16-bit copy of the base (`base_loader`), puts the trained adapter on it and merges there.
`reload_and_generate` loads both exports with plain transformers / peft and answers prompts with
each, so a lesson can check that they answer exactly like the model it trained. Lesson 08.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..finetune.export import merged_copy, quiet_transformers
from ..lora import add_lora, config_of, lora_layers, lora_state_dict, save_peft_adapter
from .generate import generate
from .sft import Messages

__all__ = ["export_merged", "export_peft_adapter", "folder_mb", "reload_and_generate"]


def _four_bit(model: nn.Module) -> bool:
    return any(type(m.base).__name__ == "Linear4bit" for m in lora_layers(model).values())


def export_merged(
    model: nn.Module,
    tokenizer: Any,
    folder: str | Path,
    base_loader: Callable[[], nn.Module] | None = None,
) -> Path:
    """Save the model with its LoRA merged (plain architecture, `save_pretrained`) and the
    tokenizer. For a 4-bit base, `base_loader()` must return the same base in 16/32 bits."""
    folder = Path(folder)
    if _four_bit(model):
        if base_loader is None:
            raise ValueError(
                "this model's base is 4-bit (QLoRA): pass base_loader, a function returning the "
                "same base model in 16 or 32 bits, to merge the adapter into."
            )
        base = base_loader()
        add_lora(base, **asdict(config_of(model)))
        base.load_state_dict(lora_state_dict(model), strict=False)
        model = base
    plain = merged_copy(model).eval()
    with quiet_transformers():
        plain.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def folder_mb(folder: str | Path) -> float:
    """Megabytes (10^6 bytes) of every file in `folder`."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 1e6


def export_peft_adapter(model: nn.Module, folder: str | Path, base: str) -> Path:
    """peft's adapter files (`adapter_model.safetensors`, `adapter_config.json`, task type
    CAUSAL_LM); `base` is recorded as the model the adapter goes on."""
    return save_peft_adapter(model, folder, base_model_name_or_path=base, task_type="CAUSAL_LM")


def reload_and_generate(
    merged: str | Path,
    adapter: str | Path,
    base: str | Path,
    conversations: Sequence[Messages],
    max_new_tokens: int = 8,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, list[str]]:
    """Greedy answers of the merged folder (plain transformers) and of the adapter on the base
    folder or hub id (peft), one model in memory at a time: {"merged": [...], "adapter": [...]}.
    `device`, `dtype`: where and in what precision to load them (default: CPU, as saved)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .loader import dtype_option

    options = dtype_option(dtype) if dtype is not None else {}
    out = {}
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(merged)
        loaders = {
            "merged": lambda: AutoModelForCausalLM.from_pretrained(merged, **options),
            "adapter": lambda: PeftModel.from_pretrained(
                AutoModelForCausalLM.from_pretrained(base, **options), adapter
            ),
        }
        for name, load in loaders.items():
            model = load().eval().to(device or "cpu")
            out[name] = generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens)
            del model
            gc.collect()
    return out
