"""4-bit weights, measured: what the packaged model's quantization kept and what 4 bits save.

QLoRA (Dettmers et al., 2023) trains LoRA adapters on top of a base model whose weights are
*stored* in 4 bits and de-quantized on the fly, one layer at a time, for each matrix multiply.
The base never trains, so it can stay compressed; only the small adapters are kept in 16/32 bits.

The course's offline model arrives already 4-bit: its GGUF file stores each linear layer as Q4_1,
blocks of 32 consecutive weights sharing a float16 step `d` and minimum `m`, each weight a 4-bit
integer q in 0..15 with w = m + d q (5 bits a weight, counting d and m). De-quantizing writes
those same numbers as float32: it adds no information, it only spends 32 bits on each.
- `block_levels`: every 32-weight block of a de-quantized matrix holds at most 16 distinct
  values, the fingerprint of 4 bits;
- `requantize_roundtrip`: quantizing the float32 matrix again with the gguf package's Q4_1 gives
  back exactly the same numbers (nothing was lost in de-quantization, nothing can be regained);
- `rounding_error`: the error the 4-bit rounding made against the original weights, estimated
  from each block's step (uniform rounding: RMS d / sqrt(12)), relative to the weights' RMS.
  Online, `compare_weights` measures it directly against the original hub weights.
- `storage_table`: bytes per parameter in each format, for the model sizes of the lesson.

On a CUDA GPU, `bnb_4bit_config` asks bitsandbytes for QLoRA's NF4 (a 4-bit code spaced like a
normal distribution, 64-weight blocks, double-quantized scales). Lesson 08.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..runtime.device import describe_hardware, precision_policy

__all__ = [
    "BITS_PER_WEIGHT",
    "RoundingError",
    "block_levels",
    "bnb_4bit_config",
    "compare_weights",
    "requantize_roundtrip",
    "rounding_error",
    "storage_table",
]

BLOCK = 32  # weights per Q4_1 / Q8_0 block in GGUF
# Storage cost of each format, in bits per weight (block formats include their scales):
# Q4_1: 32 x 4 bits + fp16 d + fp16 m = 160 bits / 32; Q8_0: 32 x 8 + fp16 d = 272 / 32;
# NF4 (bitsandbytes, QLoRA): 4 bits + an 8-bit scale per 64 weights + fp32 per 256 scales
# (double quantization) = 4 + 8/64 + 32/(64*256) bits (Dettmers et al., 2023, section 3).
BITS_PER_WEIGHT = {
    "float32": 32.0,
    "bfloat16 / float16": 16.0,
    "Q8_0 (GGUF)": 272 / 32,
    "Q4_1 (GGUF)": 160 / 32,
    "NF4 + double quant (QLoRA)": 4 + 8 / 64 + 32 / (64 * 256),
}


def _blocks(weight: torch.Tensor) -> np.ndarray:
    """The weight's rows cut into blocks of 32 along the input dimension (GGUF's blocks)."""
    w = weight.detach().float().cpu().numpy()
    if w.shape[-1] % BLOCK:
        raise ValueError(f"the input dimension {w.shape[-1]} is not a multiple of {BLOCK}")
    return w.reshape(-1, BLOCK)


def block_levels(weight: torch.Tensor) -> dict[str, float]:
    """How many distinct values each 32-weight block holds: {"max", "mean", "blocks"}."""
    blocks = np.sort(_blocks(weight), axis=1)
    distinct = 1 + (np.diff(blocks, axis=1) != 0).sum(axis=1)
    return {"max": int(distinct.max()), "mean": float(distinct.mean()), "blocks": len(blocks)}


def requantize_roundtrip(weight: torch.Tensor, qtype: str = "Q4_1") -> dict[str, float]:
    """Quantize the float32 weight with the gguf package and de-quantize it again: the largest
    change (0.0 when the weight already holds exactly representable 4-bit numbers), and the bytes
    of the quantized and float32 forms."""
    from gguf import GGMLQuantizationType, quants

    w = weight.detach().float().cpu().numpy()
    kind = GGMLQuantizationType[qtype]
    packed = quants.quantize(w, kind)
    back = quants.dequantize(packed, kind).reshape(w.shape)
    return {"max_change": float(np.abs(back - w).max()), "quantized_bytes": int(packed.nbytes),
            "float32_bytes": int(w.nbytes)}  # fmt: skip


@dataclass(frozen=True)
class RoundingError:
    """The 4-bit rounding of a weight matrix, estimated from its blocks' steps."""

    mean_step: float  # d, the distance between neighbouring levels, averaged over blocks
    rms_error: float  # sqrt(mean(d^2) / 12): uniform rounding within half a step
    weight_rms: float

    @property
    def relative(self) -> float:
        return self.rms_error / self.weight_rms


def rounding_error(weight: torch.Tensor, levels: int = 16) -> RoundingError:
    """Estimate what rounding to `levels` levels per block did: each Q4_1 block spans
    [m, m + 15 d], so d = (max - min) / 15, and rounding errs uniformly within +-d/2."""
    blocks = _blocks(weight)
    step = (blocks.max(axis=1) - blocks.min(axis=1)) / (levels - 1)
    rms = float(np.sqrt(np.mean(step**2) / 12))
    return RoundingError(float(step.mean()), rms, float(np.sqrt(np.mean(blocks**2))))


def compare_weights(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Measured difference of two versions of a weight (e.g. GGUF-derived vs the hub original):
    the RMS of a - b relative to the RMS of b, and the largest |a - b|."""
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    diff = a - b
    rel = (diff.pow(2).mean().sqrt() / b.pow(2).mean().sqrt()).item()
    return {"relative_rms": rel, "max_abs": diff.abs().max().item()}


def storage_table(params: dict[str, int]) -> list[dict[str, Any]]:
    """Megabytes to store each model (name -> parameter count) in each format."""
    return [
        {"format": fmt, "bits/weight": round(bits, 3),
         **{name: f"{n * bits / 8 / 1e6:,.0f} MB" for name, n in params.items()}}
        for fmt, bits in BITS_PER_WEIGHT.items()
    ]  # fmt: skip


def bnb_4bit_config(compute_dtype: torch.dtype | None = None) -> Any:
    """bitsandbytes' QLoRA settings: NF4, double quantization, 16-bit compute (bfloat16 where
    the GPU has it, float16 on a T4)."""
    from transformers import BitsAndBytesConfig

    if compute_dtype is None:
        policy = precision_policy(describe_hardware("cuda"))
        compute_dtype = policy.dtype or torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )
