"""Section 3: what each fine-tuning strategy costs per step: time, peak memory, optimizer state.

Strategies: full fine-tuning, the last k blocks (plus the top), the head only, and LoRA with
r in {4, 8, 16} on the attention query/value projections (plus the new head). Measured with
`coursekit.measure.measure_step` (AdamW, as `fit` uses) on a real batch. The optimizer state is
checked against the arithmetic: AdamW keeps two fp32 moments, 8 bytes per trainable parameter.

LoRA here wraps `nn.Linear` layers; EfficientNet-Lite0's body is convolutions (its only Linear is
the classifier), so its LoRA rows are reported as not applicable rather than faked.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from coursekit.freezing import freeze_all_but_head, unfreeze, unfreeze_last
from coursekit.lora import add_lora
from coursekit.measure.measured import measure_step

from .common import Sizes, in_fresh_process

LORA_RANKS = (4, 8, 16)


def _strategies(kind: str, last_k: int) -> dict[str, Callable[[nn.Module], object] | None]:
    out: dict[str, Callable[[nn.Module], object] | None] = {
        "full fine-tuning": lambda m: unfreeze(m),
        f"last {last_k} blocks + top": lambda m: unfreeze_last(m, last_k),
        "head only": lambda m: freeze_all_but_head(m),
    }
    for r in LORA_RANKS:
        out[f"LoRA r={r}"] = (
            (
                lambda m, r=r: add_lora(
                    m, ["query", "value"], r=r, alpha=2 * r, modules_to_save=["classifier"]
                )
            )
            if kind == "text"
            else None
        )
    return out


def _batch(kind: str, s: Sizes):
    if kind == "text":
        from coursekit.datasets import load_bbc_news, tokenize
        from coursekit.models import load_tokenizer

        bbc = load_bbc_news()
        n = 4 if s.smoke else 16
        enc = tokenize(bbc.train.x[:n], load_tokenizer("minilm"), s.max_length)
        return {**enc, "labels": torch.as_tensor(bbc.train.y[:n])}
    from coursekit.datasets import load_fashion_mnist, prepare_images
    from coursekit.models import normalization_for

    n = 8 if s.smoke else 32
    data = load_fashion_mnist(n_train=n, n_val=1000)
    mean, std = normalization_for("efficientnet_lite0")
    return prepare_images(data.train.x, s.image_size, mean=mean, std=std), torch.as_tensor(
        data.train.y
    )


def _model(kind: str) -> nn.Module:
    from coursekit.models import load_pretrained

    return load_pretrained(
        "minilm" if kind == "text" else "efficientnet_lite0",
        num_classes=5 if kind == "text" else 10,
    )


def _measure(kind: str, name: str, strategy: str, last_k: int, s: Sizes, device: str) -> dict:
    """One strategy on a fresh model. Runs in its own process (see `run`) so that the CPU's
    peak resident memory belongs to this strategy alone, not to what ran before it."""
    from coursekit.runtime.device import _rss

    baseline = _rss()
    batch = _batch(kind, s)
    n = len(batch["labels"]) if isinstance(batch, dict) else len(batch[1])
    row = {"model": name, "strategy": strategy, "batch_size": n}
    apply = _strategies(kind, last_k)[strategy]
    if apply is None:
        return {**row, "note": "n/a: LoRA wraps nn.Linear; this body is convolutions"}
    model = _model(kind)
    apply(model)
    cost = measure_step(model, batch, steps=s.cost_steps, device=torch.device(device))
    total = sum(p.numel() for p in model.parameters())
    on_cpu = torch.device(device).type == "cpu"
    return {
        **row,
        "trainable": cost.trainable,
        "trainable_pct": round(100 * cost.trainable / total, 3),
        "ms_per_step": round(cost.seconds_per_step * 1e3, 2),
        "peak_mb": round(cost.peak_mb, 1),
        # CPU: peak RSS above the fresh process's size before the model was loaded
        "peak_above_baseline_mb": round(cost.peak_mb - baseline / 2**20, 1) if on_cpu else None,
        "optimizer_state_bytes": cost.optimizer_state_bytes,
        "expected_state_bytes": 8 * cost.trainable,
        "state_matches_8_bytes_per_param": cost.optimizer_state_bytes == 8 * cost.trainable,
    }


def run(s: Sizes, device: torch.device) -> dict:
    """Every (model, strategy); in a fresh process each, except in smoke mode (speed)."""
    jobs = [
        (kind, name, strategy, last_k, s, str(device))
        for kind, name, last_k in (("text", "MiniLM-L6", 2), ("vision", "EfficientNet-Lite0", 3))
        for strategy in _strategies(kind, last_k)
    ]
    rows = [in_fresh_process(_measure, *job, fresh=not s.smoke) for job in jobs]
    return {
        "rows": rows,
        "image_size": s.image_size,
        "max_length": s.max_length,
        "memory_kind": "CUDA max allocated" if device.type == "cuda" else "process peak RSS",
        "isolated_processes": not s.smoke,
    }
