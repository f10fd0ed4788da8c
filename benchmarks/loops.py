"""Section 1: loop overhead. coursekit's `fit` vs a minimal hand-written loop vs HF `Trainer`.

All three do the same work: the same model weights, the same pre-tokenized in-memory BBC News
batches (a `TensorDictDataset`, shuffled, no workers), the same batch size, AdamW with a constant
learning rate, no gradient clipping, no evaluation, no logging, no saving, the same number of
steps. Each run times its steady state: the clock starts when warm-up step `warmup` ends and
stops when the last step ends (the GPU is synchronised at both ends only), so model loading and
set-up are excluded from "us/step" and reported separately as the run's wall time.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from coursekit.runtime.device import autocast, dataloader_kwargs, resolve_precision
from coursekit.training import Callback, forward_logits, split_batch, to_device

from .common import Sizes, interleaved, median, sync

LR = 5e-5


class _Clock:
    """Timestamps at the end of warm-up and at the end of the last step."""

    def __init__(self, device: torch.device, warmup: int, total: int):
        self.device, self.warmup, self.total = device, warmup, total
        self.start = self.stop = None

    def step_done(self, step: int) -> None:  # step counts from 1
        if step == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()
        elif step == self.total:
            sync(self.device)
            self.stop = time.perf_counter()

    def per_step(self) -> float:
        if self.start is None or self.stop is None:
            raise RuntimeError("the loop ran fewer steps than planned")
        return (self.stop - self.start) / (self.total - self.warmup)


def run_plain(model: nn.Module, ds: Any, batch_size: int, device, precision, clock: _Clock):
    """The minimal hand-written PyTorch loop a careful engineer would write."""
    policy = resolve_precision(precision, device)
    model.to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, **dataloader_kwargs(device))
    for step, batch in enumerate(loader, start=1):
        inputs, labels = split_batch(batch)
        inputs, labels = to_device(inputs, device), to_device(labels, device)
        with autocast(device, policy):
            logits = forward_logits(model, inputs)
        loss = nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        clock.step_done(step)


def run_coursekit(model: nn.Module, ds: Any, batch_size: int, device, precision, clock: _Clock):
    """`fit` given the plain loop's optimizer (torch's default AdamW): the loop's own overhead."""
    import coursekit as ck

    class Tick(Callback):
        def on_step_end(self, state) -> None:
            clock.step_done(state.step)

    model.to(device)
    ck.fit(
        model,
        ds,
        epochs=1,
        optimizer=torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR),
        batch_size=batch_size,
        device=device,
        precision=precision,
        callbacks=[Tick()],
        progress=False,
    )


def run_trainer(model: nn.Module, ds: Any, batch_size: int, device, precision, clock: _Clock):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Tick(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.step_done(state.global_step)

    dl = dataloader_kwargs(device)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch_size,
            max_steps=clock.total,
            learning_rate=LR,
            lr_scheduler_type="constant",
            warmup_steps=0,
            optim="adamw_torch",
            weight_decay=0.01,  # torch.optim.AdamW's default, as in the other two loops
            max_grad_norm=0.0,  # no clipping, as in the other two loops
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=device.type == "cpu",
            dataloader_num_workers=dl["num_workers"],
            dataloader_pin_memory=dl["pin_memory"],
            seed=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[Tick()])
        trainer.train()


def run_coursekit_fused(model: nn.Module, ds, batch_size: int, device, precision, clock: _Clock):
    """`fit` as learners call it, with its default optimizer: AdamW, fused where torch has it."""
    import coursekit as ck

    class Tick(Callback):
        def on_step_end(self, state) -> None:
            clock.step_done(state.step)

    ck.fit(
        model,
        ds,
        epochs=1,
        lr=LR,
        batch_size=batch_size,
        device=device,
        precision=precision,
        callbacks=[Tick()],
        progress=False,
    )


LOOPS = {
    "plain": run_plain,
    "coursekit": run_coursekit,
    "trainer": run_trainer,
    "coursekit_fused": run_coursekit_fused,
}


def adamw_variants(device: torch.device, repeats: int = 5) -> list[dict]:
    """Milliseconds of one AdamW step over MiniLM's 22.7M parameters, per implementation."""
    from coursekit.models import load_pretrained
    from coursekit.runtime.device import adamw_kwargs

    params = list(load_pretrained("minilm", num_classes=5).to(device).parameters())
    g = torch.Generator(device=device).manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, device=device) * 1e-3
    variants = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}}
    if adamw_kwargs(device):
        variants["fused"] = {"fused": True}
    rows = []
    for name, kw in variants.items():
        opt = torch.optim.AdamW(params, lr=1e-5, **kw)
        opt.step()  # allocates the state
        times = []
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            opt.step()
            sync(device)
            times.append(time.perf_counter() - t0)
        rows.append(
            {
                "adamw": name,
                "params": sum(p.numel() for p in params),
                "ms_per_step": round(median(times) * 1e3, 2),
            }
        )
    return rows


def _models(smoke: bool) -> dict[str, tuple[nn.Module, str]]:
    from transformers import BertConfig, BertForSequenceClassification

    from coursekit.models import load_pretrained

    torch.manual_seed(0)
    small = BertForSequenceClassification(
        BertConfig(
            vocab_size=30522,  # MiniLM's WordPiece vocabulary: the same token ids feed both
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=512,
            num_labels=5,
        )
    )
    models = {"small BERT (2x128, random init: timing only)": (small, "bert-small")}
    if not smoke:  # smoke mode (tests) keeps to the small model: seconds, not minutes
        models["MiniLM-L6 (pre-trained)"] = (load_pretrained("minilm", num_classes=5), "minilm")
    return models


def _data(n: int, max_length: int):
    from coursekit.datasets import load_bbc_news, text_dataset
    from coursekit.datasets.base import Split
    from coursekit.models import load_tokenizer

    bbc = load_bbc_news()
    train = bbc.train
    idx = list(range(min(n, len(train.x))))
    while len(idx) < n:  # repeat articles if asked for more steps than the split has
        idx += idx[: n - len(idx)]
    split = Split([train.x[i] for i in idx], torch.as_tensor(train.y)[idx])
    return text_dataset(split, load_tokenizer("minilm"), max_length)


def _race(template: nn.Module, ds, bs: int, s: Sizes, device, precision) -> tuple[dict, dict]:
    """Interleaved repeats of every loop from the same weights: (step times, wall times)."""
    total = s.loop_warmup + s.loop_steps
    state = copy.deepcopy(template.state_dict())
    walls: dict[str, list[float]] = {k: [] for k in LOOPS}

    def one(name: str) -> float:
        model = copy.deepcopy(template)
        model.load_state_dict(state)
        clock = _Clock(device, s.loop_warmup, total)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        LOOPS[name](model, ds, bs, device, precision, clock)
        sync(device)
        walls[name].append(time.perf_counter() - t0)
        return clock.per_step()

    return interleaved({k: (lambda k=k: one(k)) for k in LOOPS}, s.repeats), walls


def run(s: Sizes, device: torch.device) -> dict:
    precision = "bf16" if device.type == "cuda" else "fp32"
    batch_size = 16 if s.smoke else 32
    total = s.loop_warmup + s.loop_steps
    max_length = 32 if s.smoke else 64
    ds = _data(batch_size * total, max_length)
    rows = []
    for label, (template, key) in _models(s.smoke).items():
        bs = batch_size if key == "bert-small" else batch_size // 2
        ms = s  # MiniLM's steps are long: fewer of them will do
        if key != "bert-small" and not s.smoke:
            ms = dataclasses.replace(s, loop_steps=max(2, s.loop_steps // 2), loop_warmup=2)
        sub = torch.utils.data.Subset(ds, range(bs * (ms.loop_warmup + ms.loop_steps)))
        if not s.smoke:  # per-step noise is ~10% on a CPU: more repeats for a ratio near 1
            ms = dataclasses.replace(ms, repeats=max(ms.repeats, 7))
        times, walls = _race(template, sub, bs, ms, device, precision)
        med = {k: median(v) for k, v in times.items()}
        rows.append(
            {
                "model": label,
                "batch_size": bs,
                "max_length": max_length,
                "steps_timed": ms.loop_steps,
                "warmup_steps": ms.loop_warmup,
                "repeats": ms.repeats,
                "precision": precision,
                **{f"{k}_us_per_step": round(v * 1e6, 1) for k, v in med.items()},
                **{f"{k}_wall_s": round(median(walls[k]), 3) for k in LOOPS},
                "coursekit_over_plain": round(med["coursekit"] / med["plain"], 4),
                "coursekit_over_plain_fastest": round(
                    min(times["coursekit"]) / min(times["plain"]), 4
                ),
                "trainer_over_plain": round(med["trainer"] / med["plain"], 4),
                "coursekit_fused_over_plain": round(med["coursekit_fused"] / med["plain"], 4),
                "all_us_per_step": {k: [round(t * 1e6, 1) for t in v] for k, v in times.items()},
            }
        )
    return {
        "rows": rows,
        "adamw": adamw_variants(device, 1 if s.smoke else 5),
        "targets": {"coursekit_over_plain_max": 1.05, "coursekit_faster_than_trainer": True},
        "met": {
            "coursekit_over_plain": all(r["coursekit_over_plain"] <= 1.05 for r in rows),
            "coursekit_faster_than_trainer": all(
                r["coursekit_us_per_step"] < r["trainer_us_per_step"] for r in rows
            ),
        },
    }
