"""Generating answers: prompts in the chat template, batched with left padding, stopped at the
end of the assistant's turn.

A causal LM writes one token at a time, appending each to its input. Four settings shape what
comes out (`GenerationSettings`):
- **greedy** (`do_sample=False`): always the most likely next token; deterministic, the right
  choice for a fixed answer format. **Sampling** draws from the predicted distribution, flattened
  (`temperature` > 1) or sharpened (< 1), often restricted to the most likely tokens whose
  probabilities add up to `top_p`: varied text, and different text on every call;
- `max_new_tokens`: a hard cap; an answer cut there is cut mid-sentence;
- stopping at **end of turn**: an instruction model ends its answer with its end-of-turn token
  (`<|im_end|>` for SmolLM2, the tokenizer's eos); generation stops there;
- **left padding** in a batch: every prompt must end right where its answer begins. Right padding
  would put pad tokens between a short prompt and its answer, and the model would continue from
  the padding (`generate_batch(..., padding_side="right")` shows what that does).

The answers are decoded without special tokens. Lesson 08.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .sft import Messages, chat_prompt, evaluating

__all__ = ["GenerationSettings", "generate", "generate_batch"]


@dataclass(frozen=True)
class GenerationSettings:
    """What `generate` passes to Hugging Face's `model.generate`."""

    max_new_tokens: int = 32
    do_sample: bool = False  # greedy
    temperature: float = 1.0
    top_p: float = 1.0
    stop_at_end_of_turn: bool = True

    def kwargs(self, tokenizer: Any) -> dict[str, Any]:
        options = asdict(self)
        stop = options.pop("stop_at_end_of_turn")
        if not self.do_sample:  # greedy ignores them; passing them only prints warnings
            del options["temperature"], options["top_p"]
        # No end-of-turn token to stop at (an empty list: None would mean "the model's default").
        eos = tokenizer.eos_token_id if stop else []
        return {**options, "eos_token_id": eos, "pad_token_id": _pad_id(tokenizer)}


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


@torch.no_grad()
def generate_batch(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: GenerationSettings = GenerationSettings(),
    padding_side: str = "left",
    special_tokens: bool = False,
) -> list[str]:
    """Answers to already-templated prompt strings, one batch, decoded without special tokens
    (with `special_tokens=True`: as generated, end-of-turn marks included)."""
    side = tokenizer.padding_side
    tokenizer.padding_side = padding_side
    try:
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False,
                        return_token_type_ids=False)  # fmt: skip
    finally:
        tokenizer.padding_side = side
    # right padding only when asked: the lesson shows what it does, so no warning about it
    with evaluating(model) as device, _deliberate(padding_side == "right"):
        enc = {k: v.to(device) for k, v in enc.items()}
        out = model.generate(**enc, **settings.kwargs(tokenizer))
    new = out[:, enc["input_ids"].shape[1] :]
    if special_tokens:  # show what was generated, but not the padding after a finished answer
        rows = _strip_padding(new, _pad_id(tokenizer)) if settings.stop_at_end_of_turn else new
        return [tokenizer.decode(row) for row in rows]
    return tokenizer.batch_decode(new, skip_special_tokens=True)


@contextmanager
def _deliberate(right_padding: bool) -> Iterator[None]:
    """Silence transformers' warning about right padding when it is asked for on purpose."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    if right_padding:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _strip_padding(rows: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Each row without the padding that fills it after its first end-of-turn."""
    out = []
    for row in rows:
        hits = (row == pad).nonzero()
        out.append(row[: int(hits[0]) + 1] if len(hits) else row)
    return out


def generate(
    model: nn.Module,
    tokenizer: Any,
    conversations: Sequence[Messages] | Sequence[str],
    settings: GenerationSettings | None = None,
    *,
    batch_size: int = 32,
    special_tokens: bool = False,
    **overrides: Any,
) -> list[str]:
    """The model's answer to each conversation (a list of messages, or a bare user prompt),
    rendered in its chat template and generated in left-padded batches.

    `overrides` change single settings: `generate(m, tok, prompts, max_new_tokens=8)`.
    """
    settings = GenerationSettings(**{**asdict(settings or GenerationSettings()), **overrides})
    prompts = [
        chat_prompt(tokenizer, [{"role": "user", "content": c}] if isinstance(c, str) else c)
        for c in conversations
    ]
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        answers += generate_batch(model, tokenizer, batch, settings, special_tokens=special_tokens)
    return answers
