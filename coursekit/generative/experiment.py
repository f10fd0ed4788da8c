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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..device import seed_everything
from ..history import Callback, History
from ..lora import add_lora
from ..train import fit
from .generate import generate
from .metrics import Score, exact_match, format_rate, lenient_accuracy
from .sft import ResponseLoss, causal_lm_loss, encode_example, sft_loader

__all__ = ["Graded", "encode_pairs", "grade", "tune"]

Pairs = Sequence[tuple[Sequence[dict[str, str]], str]]


def encode_pairs(tokenizer: Any, pairs: Pairs, mask_prompt: bool = True) -> list:
    """`sft.encode_example` for every (messages, answer) pair."""
    return [
        encode_example(tokenizer, m, a, mask_prompt=mask_prompt, where=f"example {i + 1}")
        for i, (m, a) in enumerate(pairs)
    ]


def tune(
    base: nn.Module,
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
    """A tuned copy of `base` and its history. `lora`: `add_lora`'s arguments (e.g.
    `{"target_modules": ["q_proj", "v_proj"], "r": 8}`), or None to train every weight."""
    seed_everything(seed)
    model = copy.deepcopy(base)
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
    extra: dict[str, Any] = field(default_factory=dict)

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
                  lenient_accuracy(answers, refs, labels))  # fmt: skip
