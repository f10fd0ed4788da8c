"""Section 6: the GPU. AMP vs fp32, channels_last for the CNN, optional torch.compile; throughput
(images/s, tokens/s) and MFU (achieved FLOP/s over the GPU's data-sheet peak) for
EfficientNet-Lite0 and MiniLM full fine-tuning at the course's full-mode sizes.

Each step is `fit`'s own: a host-to-device copy from pinned memory with non_blocking=True, then
`training.step.train_step` (forward under autocast, backward, `fit`'s default AdamW, fused where
torch has it, zero_grad), with no host sync inside the timed steps: the clock is synchronised
once before and once after them.

Without a GPU the section records "not measured: no GPU"; with `smoke` it runs the same code on
the CPU at a tiny size (fp32 vs bf16 autocast, channels_last), so the harness is never dead code.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from coursekit.measure.measured import model_flops_utilization, peak_flops, training_flops
from coursekit.runtime.config import settings
from coursekit.runtime.device import describe_hardware, resolve_precision
from coursekit.training import StepSetup, make_optimizer, split_batch, to_device, train_step

from .common import Sizes, sync


def _pin(batch: Any, device: torch.device) -> Any:
    if device.type != "cuda":
        return batch
    if isinstance(batch, dict):
        return {k: v.pin_memory() for k, v in batch.items()}
    return tuple(t.pin_memory() for t in batch)


def time_steps(
    model: nn.Module,
    batch: Any,
    device: torch.device,
    precision: str,
    *,
    channels_last: bool = False,
    compile: bool = False,
    steps: int = 10,
    warmup: int = 3,
) -> float:
    """Median-free steady-state seconds per training step (total over `steps` / `steps`)."""
    policy = resolve_precision(precision, device)
    model = model.to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    run_model = torch.compile(model) if compile else model
    opt = make_optimizer(model, 1e-4, device=device)  # fit's default optimizer
    setup = StepSetup.create(run_model, opt, device, policy)
    batch = _pin(batch, device)

    def step() -> None:
        inputs, labels = split_batch(batch)
        inputs, labels = to_device(inputs, device), to_device(labels, device)
        if channels_last and isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        train_step(setup, inputs, labels)  # fit's own step

    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def _vision_batch(n: int, size: int):
    from coursekit.datasets import load_fashion_mnist, prepare_images
    from coursekit.models import normalization_for

    data = load_fashion_mnist(n_train=max(n, 10), n_val=1000)
    mean, std = normalization_for("efficientnet_lite0")
    x = prepare_images(data.train.x[:n], size, mean=mean, std=std)
    return x, torch.as_tensor(data.train.y[:n])


def _text_batch(n: int, max_length: int):
    from coursekit.datasets import load_bbc_news, tokenize
    from coursekit.models import load_tokenizer

    bbc = load_bbc_news()
    enc = tokenize(bbc.train.x[:n], load_tokenizer("minilm"), max_length)
    return {**enc, "labels": torch.as_tensor(bbc.train.y[:n])}


def _variants(device: torch.device, vision: bool, with_compile: bool) -> dict[str, dict]:
    amp = "bf16" if device.type == "cpu" else "auto"  # auto: bf16 on Ampere+, fp16 on T4/V100
    out = {"fp32": {"precision": "fp32"}, "amp": {"precision": amp}}
    if vision:
        out["amp + channels_last"] = {"precision": amp, "channels_last": True}
    if with_compile:
        last = "amp + channels_last" if vision else "amp"
        out[last + " + compile"] = {**out[last], "compile": True}
    return out


def fit_host_syncs(device: torch.device, steps: int = 20) -> dict:
    """Count the host-GPU synchronisations one `fit` epoch makes (CUDA's sync debug mode warns
    on each): a handful per epoch is fine, one or more per step would stall the GPU."""
    import warnings

    import coursekit as ck

    g = torch.Generator().manual_seed(0)
    ds = torch.utils.data.TensorDataset(
        torch.randn(32 * steps, 64, generator=g), torch.randint(0, 4, (32 * steps,), generator=g)
    )
    model = nn.Linear(64, 4)
    ck.fit(model, ds, epochs=1, batch_size=32, device=device, progress=False)  # warm-up
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            ck.fit(model, ds, epochs=1, batch_size=32, device=device, progress=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    return {"steps": steps, "host_syncs": len(syncs), "per_step": round(len(syncs) / steps, 3)}


def batch_size_found(key: str, batch: Any, start: int, device: torch.device) -> dict:
    """What `find_batch_size` picks for full fine-tuning under AMP, from `start` down."""
    from coursekit.measure.batch_size import find_batch_size, training_step_probe
    from coursekit.models import load_pretrained

    model = load_pretrained(key, num_classes=10 if key == "efficientnet_lite0" else 5)

    def make_batch(n: int) -> Any:
        reps = -(-n // len(split_batch(batch)[1]))
        if isinstance(batch, dict):
            return {k: v.repeat(reps, *[1] * (v.ndim - 1))[:n] for k, v in batch.items()}
        return tuple(t.repeat(reps, *[1] * (t.ndim - 1))[:n] for t in batch)

    probe = training_step_probe(model, make_batch, device=device, precision="auto")
    found = find_batch_size(probe, start=start, verbose=False)
    del model
    return {"model": key, "start": start, "batch_size": found}


def run(s: Sizes, device: torch.device, with_compile: bool = False) -> dict:
    if device.type != "cuda" and not s.smoke:
        return {"status": "not measured: no GPU", "device": str(describe_hardware(device))}
    from coursekit.models import load_pretrained

    full = settings("full")
    info = describe_hardware(device)
    cases = [
        ("EfficientNet-Lite0", True, "efficientnet_lite0", 10),
        ("MiniLM-L6", False, "minilm", 5),
    ]
    rows = []
    for name, vision, key, classes in cases:
        if s.smoke:
            bs, size, length, steps, warmup = 4, 32, 16, 2, 1
        else:
            bs, size, length, steps, warmup = full.batch_size, full.image_size, 0, 20, 5
            if not vision:
                bs, length = 64, full.max_length
        batch = _vision_batch(bs, size) if vision else _text_batch(bs, length)
        template = load_pretrained(key, num_classes=classes)
        flops = training_flops(template, batch, device)
        for variant, kw in _variants(device, vision, with_compile and not s.smoke).items():
            model = load_pretrained(key, num_classes=classes)
            seconds = time_steps(model, batch, device, steps=steps, warmup=warmup, **kw)
            policy = resolve_precision(kw["precision"], device)
            peak = peak_flops(info, policy.dtype)
            mfu = model_flops_utilization(flops, seconds, peak)
            per_s = bs / seconds
            rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "precision": policy.name,
                    "batch_size": bs,
                    "input": f"{size}x{size} px" if vision else f"{length} tokens",
                    "ms_per_step": round(seconds * 1e3, 2),
                    "examples_per_s": round(per_s, 1),
                    "tokens_per_s": None if vision else round(per_s * length, 0),
                    "train_flops_per_step": flops,
                    "achieved_tflops": round(flops / seconds / 1e12, 3),
                    "peak_tflops": None if peak is None else round(peak / 1e12, 1),
                    "mfu": None if mfu is None else round(mfu, 4),
                }
            )
            del model
        base = next(r for r in rows if r["model"] == name and r["variant"] == "fp32")
        for r in rows:
            if r["model"] == name:
                r["speedup_vs_fp32"] = round(base["ms_per_step"] / r["ms_per_step"], 2)
    extra: dict = {}
    if device.type == "cuda":
        extra["fit_host_syncs"] = fit_host_syncs(device)
        if not s.smoke:
            extra["batch_size_finder"] = [
                batch_size_found("efficientnet_lite0", _vision_batch(64, 224), 2048, device),
                batch_size_found("minilm", _text_batch(64, 256), 1024, device),
            ]
    status = "measured" if device.type == "cuda" else "smoke (CPU, tiny sizes: not a GPU figure)"
    return {"status": status, "device": str(info), "rows": rows, **extra}
