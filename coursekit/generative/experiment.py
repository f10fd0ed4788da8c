"""One instruction-tuning run of lesson 08, and its grading, as two calls.

`tune` copies the base model, puts LoRA on its attention projections (or trains every weight),
and trains it with `coursekit.fit` on SFT examples (`loss_fn=causal_lm_loss`; the answers of a
few held-out examples are scored after every epoch, `sft.ResponseLoss`). `grade` generates the
answers to held-out prompts greedily and scores them (`metrics`). A seed fixes the training
sample's order, the LoRA initialisation and dropout, so three seeds are three honest repeats.
Lesson 08.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..lora import add_lora, lora_layers
from ..measure.measured import measure_step
from ..runtime.device import seed_everything
from ..training.callbacks import Callback
from ..training.history import History
from ..training.loop import fit
from .generate import generate
from .metrics import Score, exact_match, format_rate, lenient_accuracy
from .sft import ResponseLoss, causal_lm_loss, encode_example, example_losses, sft_loader

__all__ = [
    "Graded",
    "adapter_off",
    "answer_losses",
    "encode_pairs",
    "grade",
    "lora_vs_full",
    "release_memory",
    "tune",
]

Pairs = Sequence[tuple[Sequence[dict[str, str]], str]]


def encode_pairs(tokenizer: Any, pairs: Pairs, mask_prompt: bool = True) -> list:
    """`sft.encode_example` for every (messages, answer) pair."""
    return [
        encode_example(tokenizer, m, a, mask_prompt=mask_prompt, where=f"example {i + 1}")
        for i, (m, a) in enumerate(pairs)
    ]


def tune(
    base: nn.Module | Callable[[], nn.Module],
    tokenizer: Any,
    train: Pairs,
    val: Pairs | None = None,
    *,
    seed: int = 0,
    lora: dict[str, Any] | None = None,
    mask_prompt: bool = True,
    epochs: int = 1,
    batch_size: int = 8,
    lr: float = 2e-3,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> tuple[nn.Module, History]:
    """A tuned copy of `base` (or a fresh model from `base()`, e.g. `Decoder.fresh`) and its
    history. `lora`: `add_lora`'s arguments (e.g. `{"target_modules": ["q_proj", "v_proj"],
    "r": 8}`), or None to train every weight."""
    seed_everything(seed)
    model = copy.deepcopy(base) if isinstance(base, nn.Module) else base()
    if lora is not None:
        add_lora(model, **lora)
    loader = sft_loader(encode_pairs(tokenizer, train, mask_prompt), tokenizer, batch_size)
    watch = []
    if val:  # the answers' loss on held-out examples, whatever the training loss grades
        watch = [ResponseLoss(sft_loader(encode_pairs(tokenizer, val), tokenizer, 16, False))]
    history = fit(model, loader, epochs=epochs, lr=lr, loss_fn=causal_lm_loss, metrics=(),
                  callbacks=[*watch, *callbacks], progress=progress)  # fmt: skip
    return model.eval(), history


@dataclass
class Graded:
    """A model's greedy answers to the test prompts and their scores."""

    answers: list[str]
    exact: Score
    format: Score
    lenient: Score
    references: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> list[float]:
        """1.0 for every exact match, 0.0 otherwise (per test prompt, for `claims.over_seeds`)."""
        return [float(a.strip() == r.strip()) for a, r in zip(self.answers, self.references,
                                                               strict=True)]  # fmt: skip

    def row(self, name: str) -> dict[str, Any]:
        """One row of a results table."""
        lo, hi = self.exact.interval
        return {"model": name, "exact match": round(self.exact.value, 3),
                "95% interval": f"{lo:.2f}-{hi:.2f}", "format ok": round(self.format.value, 3),
                "lenient accuracy": round(self.lenient.value, 3), **self.extra}  # fmt: skip


def grade(
    model: nn.Module, tokenizer: Any, test: Pairs, labels: Sequence[str], max_new_tokens: int = 6
) -> Graded:
    """Greedy answers to every test prompt, scored against the references."""
    answers = generate(model, tokenizer, [m for m, _ in test], max_new_tokens=max_new_tokens)
    refs = [a for _, a in test]
    return Graded(answers, exact_match(answers, refs), format_rate(answers, labels),
                  lenient_accuracy(answers, refs, labels), refs)  # fmt: skip


def lora_vs_full(
    base: nn.Module,
    batch: dict[str, Any],
    lora: dict[str, Any],
    lrs: tuple[float, float] = (2e-3, 1e-4),
    steps: int = 2,
    restore: Callable[[nn.Module], Any] | None = None,
) -> list[dict[str, Any]]:
    """What one training step costs with LoRA and with every weight training: trainable
    parameters, the memory their gradients and AdamW's two moments hold, seconds per step
    (median of `steps` after one warm-up step), the memory a step's activations add on top, and
    what a checkpoint of the trained weights holds (float32).

    LoRA trains a copy of `base`. Full fine-tuning trains a copy too, unless `restore` is given:
    then it trains `base` itself (one model's memory less at the peak) and `restore(base)` puts
    the pre-trained weights back (e.g. `loader.restore_packaged`)."""
    rows = []
    for name, lr in (("LoRA", lrs[0]), ("full fine-tuning", lrs[1])):
        release_memory()  # the full step's gradients and AdamW state are the lesson's peak
        model = base if name != "LoRA" and restore is not None else copy.deepcopy(base)
        if name == "LoRA":
            add_lora(model, **lora)
        cost = measure_step(model, batch, lr=lr, steps=steps, warmup=1, loss_fn=causal_lm_loss,
                            copy_model=False)  # fmt: skip
        if model is base:
            restore(base)
        del model
        state = 4 * cost.trainable + cost.optimizer_state_bytes  # gradients + AdamW moments
        rows.append({"strategy": name, "trainable": cost.trainable,
                     "gradients + AdamW (MB)": state / 1e6,
                     "s / step": cost.seconds_per_step,
                     "activations (MB)": cost.peak_increase_mb,
                     "checkpoint (MB)": 4 * cost.trainable / 1e6})  # fmt: skip
    release_memory()
    return rows


def release_memory() -> None:
    """Collect garbage and hand freed memory back to the operating system (glibc keeps freed
    blocks for reuse; a later peak then adds to them). A no-op where there is no glibc."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def answer_losses(model: nn.Module, tokenizer: Any, pairs: Pairs) -> list[float]:
    """Each example's mean loss on its own answer tokens (one number per example, so two
    models can be compared example by example with `claims`)."""
    return example_losses(model, sft_loader(encode_pairs(tokenizer, pairs), tokenizer, 16, False))


@contextmanager
def adapter_off(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, every (unmerged) LoRA layer adds exactly nothing: the model computes
    what its frozen base computes, bit for bit (lesson 06's `forgetting.without_lora` does the
    same on a copy; this works in place, also on a 4-bit base that cannot be copied)."""
    layers = list(lora_layers(model).values())
    if any(layer.merged for layer in layers):
        raise ValueError("the adapter is merged into the weights: unmerge_lora(model) first")
    scalings = [layer.scaling for layer in layers]
    try:
        for layer in layers:
            layer.scaling = 0.0
        yield model
    finally:
        for layer, scaling in zip(layers, scalings, strict=True):
            layer.scaling = scaling
