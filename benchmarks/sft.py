"""Lesson 08's SFT step against the tool people use: coursekit `fit` vs TRL's `SFTTrainer` + peft.

    python -m benchmarks.run --only sft

Same model (the packaged SmolLM2-135M-Instruct, float32), same examples (lesson 08's headline
prompts with one-word answers, the loss on the answer only), same LoRA (r=8, alpha 16, q_proj and
v_proj, no dropout), same batch size, learning rate, constant schedule and number of steps, on
the same device. To make every batch the same size for both, the examples are those of one
token length (so no batch holds padding, whatever order each tool draws them in).

- coursekit: the course's own LoRA (`coursekit.lora`) trained by `fit` with
  `loss_fn=causal_lm_loss` (its default optimizer: fused AdamW where torch has one);
- TRL: `SFTTrainer` with a peft `LoraConfig`, on a conversational prompt-completion dataset
  (completion-only loss), fp32, no gradient checkpointing, its default optimizer.

Each run trains a fresh copy of the model in a fresh process (on a CPU the peak resident set of a
process that already ran the other contender counts only the memory that run did not already
hold: measured here, the first run of a process added 636 MB and the same run third 325 MB);
contenders alternate (A B A B ...) and each
reports the median seconds per optimizer step after warm-up steps, tokens per second (TRL's
examples are one token longer: its chat-template rendering keeps the newline after the end-of-turn
token, so the ratio compares seconds per token), and the peak memory its training added (CUDA:
max allocated; CPU: peak resident set size). TRL is a benchmark-only dependency: without it the
section says "not measured".
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections import Counter
from typing import Any

import torch

from .common import in_fresh_process

LORA = {"target_modules": ["q_proj", "v_proj"], "r": 8, "alpha": 16, "dropout": 0.0}
LR = 2e-3


def _examples(tokenizer: Any, n: int) -> tuple[list, list, int]:
    """`n` headline examples that all tokenize to one length: (pairs, encoded, length)."""
    from coursekit import generative as gen

    task = gen.headline_topics(train_per_class=200, val_per_class=1, test_per_class=1)
    encoded = gen.encode_pairs(tokenizer, task.train)
    length, _ = Counter(len(e.input_ids) for e in encoded).most_common(1)[0]
    keep = [i for i, e in enumerate(encoded) if len(e.input_ids) == length][:n]
    if len(keep) < n:
        raise ValueError(f"only {len(keep)} examples of {length} tokens; asked for {n}")
    return [task.train[i] for i in keep], [encoded[i] for i in keep], length


class _StepClock:
    """Seconds of every optimizer step (coursekit callback and TRL TrainerCallback alike)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times, self.t0 = device, [], None

    def tick(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if self.t0 is not None:
            self.times.append(now - self.t0)
        self.t0 = now


def _run_fit(base: torch.nn.Module, tokenizer: Any, encoded: list, batch: int,
             device: torch.device) -> tuple[list[float], float, int]:  # fmt: skip
    from coursekit import fit, generative, lora
    from coursekit.runtime.device import peak_memory
    from coursekit.training.callbacks import Callback

    clock = _StepClock(device)

    class Tick(Callback):
        def on_fit_start(self, state: Any) -> None:
            clock.tick()

        def on_step_end(self, state: Any) -> None:
            clock.tick()

    model = copy.deepcopy(base)
    lora.add_lora(model, **LORA)
    loader = generative.sft_loader(encoded, tokenizer, batch)
    with peak_memory(device) as mem:
        fit(model, loader, epochs=1, lr=LR, loss_fn=generative.causal_lm_loss, metrics=(),
            callbacks=[Tick()], progress=False, device=device)  # fmt: skip
    return clock.times, mem.increase_mb, len(encoded[0].input_ids)


def _run_trl(base: torch.nn.Module, tokenizer: Any, pairs: list, batch: int,
             device: torch.device) -> tuple[list[float], float, int]:  # fmt: skip
    import warnings

    import datasets
    import peft
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from coursekit.runtime.device import peak_memory

    clock = _StepClock(device)

    class Tick(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            clock.tick()

        def on_step_end(self, args, state, control, **kw):
            clock.tick()

    rows = [{"prompt": list(m), "completion": [{"role": "assistant", "content": a}]}
            for m, a in pairs]  # fmt: skip
    config = peft.LoraConfig(
        r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
        target_modules=LORA["target_modules"], task_type="CAUSAL_LM",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out, per_device_train_batch_size=batch, num_train_epochs=1,
            learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.01,
            gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=device.type == "cpu",
            max_length=256, completion_only_loss=True, save_strategy="no", report_to="none",
            logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0,
        )  # fmt: skip
        datasets.disable_progress_bars()
        with warnings.catch_warnings():  # transformers' notes on renamed arguments
            warnings.simplefilter("ignore", FutureWarning)
            trainer = SFTTrainer(
                model=copy.deepcopy(base), args=args,
                train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer,
                peft_config=config, callbacks=[Tick()],
            )  # fmt: skip
        tokens = len(trainer.train_dataset[0]["input_ids"])  # its template ends with a newline
        with peak_memory(device) as mem:
            trainer.train()
    return clock.times, mem.increase_mb, tokens


def _measure(tool: str, n: int, batch: int, device: str) -> tuple[list[float], float, int]:
    """One run of `tool` on `n` examples: step times, peak memory added (MB), example length."""
    from coursekit import generative
    from coursekit.finetune.export import quiet_transformers

    with quiet_transformers():
        model, tokenizer = generative.load_decoder()
        pairs, encoded, _ = _examples(tokenizer, n)
        if tool == "coursekit fit":
            return _run_fit(model, tokenizer, encoded, batch, torch.device(device))
        return _run_trl(model, tokenizer, pairs, batch, torch.device(device))


def run(device: torch.device, smoke: bool = False) -> dict:
    """The section's figures (see the module docstring)."""
    from coursekit import generative

    try:
        import trl
    except ImportError:
        return {"status": "not measured: trl is not installed (pip install trl)"}
    steps, warmup, repeats, batch = (3, 1, 1, 4) if smoke else (12, 2, 3, 8)
    runs: dict[str, list] = {"coursekit fit": [], "TRL SFTTrainer": []}
    for _ in range(repeats):  # alternate, so a slow spell hits both
        for name in runs:  # a fresh process each: no run inherits another's freed memory
            job = (_measure, name, steps * batch, batch, str(device))
            runs[name].append(in_fresh_process(*job, fresh=not smoke))
    length = runs["coursekit fit"][0][2]
    rows = []
    for name, results in runs.items():
        per_step = [t for times, _, _ in results for t in times[warmup:]]
        seconds = statistics.median(per_step)
        tokens = results[0][2]
        rows.append({"tool": name, "tokens_per_example": tokens, "seconds_per_step": seconds,
                     "tokens_per_s": batch * tokens / seconds,
                     "peak_increase_mb": max(mb for _, mb, _ in results),
                     "steps_timed": len(per_step)})  # fmt: skip
    fit_row, trl_row = rows
    return {
        "device": str(device), "threads": torch.get_num_threads(), "trl": trl.__version__,
        "model": generative.PACKAGED, "batch": batch, "tokens_per_example": length,
        "steps": steps, "warmup_steps": warmup, "repeats": repeats, "rows": rows,
        # seconds per token, fit over TRL (TRL's examples keep the template's final newline)
        "time_ratio": trl_row["tokens_per_s"] / fit_row["tokens_per_s"],
        "memory_ratio": fit_row["peak_increase_mb"] / max(trl_row["peak_increase_mb"], 1e-9),
    }  # fmt: skip
