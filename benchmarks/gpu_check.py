"""A GPU check that needs no weights: coursekit's CUDA paths on random-weight models of the
course's shapes, under a T4's memory (`torch.cuda.set_per_process_memory_fraction`).

Memory and step time do not depend on the weights' values, so lesson 08's full-mode decoders
(SmolLM2-360M and 1.7B, from their published shapes) can be measured on a machine that cannot
download them. Checked: the precision policy the GPU gets; the course's LoRA against peft on CUDA
(logits and gradients); `fit` with `causal_lm_loss` in bf16 and in fp16 with loss scaling (a
T4's path); the peak memory of `fit`'s own step (`cost.measure_step`) for a LoRA SFT step on a
16-bit base at full mode's batch, and for full fine-tuning of the 135M model, each next to
`coursekit.measure.predicted`'s upper estimate.

    python -m benchmarks.gpu_check            # writes $OUT or benchmarks/results/gpu-check.json

Measured 2026-12-04 on an H200 (torch 2.11, transformers 5.17): docs/performance.md, "Measured
on a GPU".
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

import torch

from coursekit import describe_hardware, fit, precision_policy
from coursekit.generative import causal_lm_loss
from coursekit.generative.parity import lora_peft_gap
from coursekit.generative.plan import VOCAB, decoder
from coursekit.lora import add_lora
from coursekit.measure import predicted as est
from coursekit.measure.measured import measure_step

T4_GIB = 15.0
LORA = {"target_modules": ["q_proj", "v_proj"], "r": 8, "alpha": 16}
TOKENS, BATCH = 48, 16  # lesson 08's full mode: headline prompts, batch 16


def lm_batches(n: int, seed: int = 0) -> list[tuple[dict, torch.Tensor]]:
    """Batches whose second half repeats the first; only the second half is graded."""
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(100, VOCAB, (n, TOKENS // 2), generator=g)
    ids = torch.cat([half, half], 1)
    labels = ids.clone()
    labels[:, : TOKENS // 2] = -100
    return [
        ({"input_ids": ids[i : i + BATCH], "attention_mask": torch.ones_like(ids[i : i + BATCH])},
         labels[i : i + BATCH])
        for i in range(0, n, BATCH)
    ]  # fmt: skip


def policy() -> dict:
    p = precision_policy(describe_hardware(torch.device("cuda")))
    return {"policy": p.name, "reason": p.reason}


def parity() -> dict:
    torch.manual_seed(0)
    ids = torch.randint(100, VOCAB, (4, 32), device="cuda")
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    return lora_peft_gap(decoder("135M").cuda(), batch, LORA)


def fit_decoder(precision: str) -> dict:
    torch.manual_seed(0)
    model = decoder("135M")
    add_lora(model, **LORA)
    h = fit(model, lm_batches(320), epochs=1, lr=2e-3, device="cuda", precision=precision,
            loss_fn=causal_lm_loss, progress=False)  # fmt: skip
    losses = [float(x) for x in h.steps]
    return {"steps": len(losses), "all_finite": all(x == x for x in losses),
            "first5": sum(losses[:5]) / 5, "last5": sum(losses[-5:]) / 5}  # fmt: skip


def _step_cost(model: torch.nn.Module, precision: str, kind: str, name: str) -> dict:
    """`cost.measure_step` (fit's own step) at full mode's batch: peak GPU memory, weights
    included, next to `coursekit.measure.predicted`'s upper estimate for the same work."""
    ids = torch.randint(100, VOCAB, (BATCH, TOKENS))
    batch = ({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, ids)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    cost = measure_step(model, batch, lr=1e-4, steps=3, warmup=1, device="cuda",
                        precision=precision, loss_fn=causal_lm_loss, copy_model=False)  # fmt: skip
    work = est.Work("SFT", name, kind, BATCH, TOKENS, BATCH)
    return {"measured_peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
            "estimated_peak_gb": round(est.peak_gpu_bytes(work) / 1e9, 2),
            "s_per_step": round(cost.seconds_per_step, 3)}  # fmt: skip


def sft_lora(size: str) -> dict:
    """LoRA on a 16-bit base (bf16 here: the same bytes as a T4's fp16)."""
    torch.manual_seed(0)
    model = decoder(size).to("cuda", torch.bfloat16)
    add_lora(model, **LORA)
    return _step_cost(model, "bf16", "lora", f"smollm2-{size.lower()}")


def full_ft_135m() -> dict:
    """Every weight trains: fp32 weights, fp16 autocast with loss scaling (a T4's path)."""
    torch.manual_seed(0)
    return _step_cost(decoder("135M"), "fp16", "train", "smollm2-135m")


CHECKS = {
    "policy": policy,
    "lora_vs_peft": parity,
    "fit_bf16": lambda: fit_decoder("bf16"),
    "fit_fp16_loss_scaling": lambda: fit_decoder("fp16"),
    "sft_lora_1.7B_16bit": lambda: sft_lora("1.7B"),
    "sft_lora_360M_16bit": lambda: sft_lora("360M"),
    "full_ft_135M": full_ft_135m,
}


def main() -> dict:
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, T4_GIB * 2**30 / total))
    import transformers

    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "transformers": transformers.__version__, "memory_cap_gib": T4_GIB}  # fmt: skip
    out = Path(os.environ.get("OUT") or Path(__file__).parent / "results") / "gpu-check.json"
    for name, check in CHECKS.items():
        t = time.perf_counter()
        try:
            res[name] = {"ok": True, **check()}
        except Exception as err:  # noqa: BLE001 - one failing check must not lose the others
            res[name] = {"ok": False, "error": f"{type(err).__name__}: {err}"[:400],
                         "traceback": traceback.format_exc()[-1200:]}  # fmt: skip
        res[name]["seconds"] = round(time.perf_counter() - t, 2)
        print(name, json.dumps(res[name])[:400], flush=True)
        out.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
