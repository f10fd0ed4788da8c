"""Supervised fine-tuning (SFT) data: a conversation as tokens, and a loss only on the answer.

A causal language model learns one thing: predict the next token. Position t sees tokens 0..t and
its logits score every possible token t+1; the loss is the cross-entropy of the token that really
came next, averaged over positions (`causal_lm_loss`, the same as Hugging Face's own).

An instruction-tuned model was trained on conversations written in its **chat template**: special
tokens that mark who speaks (`<|im_start|>user ... <|im_end|>` for SmolLM2). The template is part
of what the model learned, so prompts must be written in the model's *own* template
(`tokenizer.apply_chat_template`), never a hand-made imitation.

An SFT example is the prompt (system + user turns, rendered up to the start of the assistant's
turn) followed by the response and the end-of-turn token that teaches the model to stop. The
**labels** are the input ids with the prompt replaced by -100, the index cross-entropy ignores:
**loss masking**. The model still reads the prompt, but only its predictions of the response are
graded. Without the mask most of the loss (and of the gradient) goes to predicting the prompt
itself, text the model will never have to write.

Batches pad on the **right** for training (`collate`): the labels of padding are -100 and the
attention mask hides it. Generation pads on the left instead (`generate.py`). Lesson 08.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..training.callbacks import Callback, FitState

__all__ = [
    "IGNORE_INDEX",
    "ResponseLoss",
    "SFTExample",
    "causal_lm_loss",
    "chat_prompt",
    "collate",
    "encode_example",
    "evaluating",
    "example_losses",
    "response_loss",
    "sft_loader",
]

IGNORE_INDEX = -100  # labels with this value take no part in the loss (PyTorch's default)
Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class SFTExample:
    """One training example: token ids, and labels (-100 where the loss ignores a token)."""

    input_ids: list[int]
    labels: list[int]

    @property
    def prompt_length(self) -> int:
        """Tokens before the first graded one (the whole length when nothing is graded)."""
        return next((i for i, y in enumerate(self.labels) if y != IGNORE_INDEX), len(self.labels))


def chat_prompt(tokenizer: Any, messages: Messages) -> str:
    """The conversation in the model's own chat template, ending where the assistant's turn
    begins (the text a model continues when asked to answer)."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def _end_of_turn(tokenizer: Any, text: str) -> str:
    """The response text cut right after its end-of-turn token (what the model must emit to
    stop); templates add a newline or more after it that the model never needs to write."""
    eos = tokenizer.eos_token
    if eos and eos in text:
        return text[: text.index(eos) + len(eos)]
    return text + (eos or "")


def encode_example(
    tokenizer: Any,
    messages: Messages,
    response: str,
    *,
    mask_prompt: bool = True,
    max_length: int | None = None,
    where: str = "example",
) -> SFTExample:
    """Tokenize prompt + response with the chat template; labels mask the prompt (-100).

    The whole conversation is rendered and tokenized at once (as the model saw conversations),
    and the tokens that start at or after the end of the prompt's text are graded. An example
    longer than `max_length` is an error naming `where` (never truncated silently).
    """
    prompt = chat_prompt(tokenizer, messages)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": response}], tokenize=False
    )
    if not full.startswith(prompt):
        raise ValueError(
            f"{where}: the chat template renders the conversation differently with and without "
            "the answer, so the prompt's tokens cannot be told apart from the answer's."
        )
    text = prompt + _end_of_turn(tokenizer, full[len(prompt) :])
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    if max_length is not None and len(ids) > max_length:
        raise ValueError(
            f"{where}: {len(ids)} tokens with the chat template, longer than the context of "
            f"{max_length} tokens; shorten it or raise max_length."
        )
    graded = [start >= len(prompt) for start, _ in enc["offset_mapping"]]
    if not any(graded):
        raise ValueError(f"{where}: the response is empty after tokenization.")
    labels = [t if g or not mask_prompt else IGNORE_INDEX for t, g in zip(ids, graded, strict=True)]
    return SFTExample(ids, labels)


def collate(
    examples: Sequence[SFTExample], pad_id: int, padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pad a list of examples into a batch: input_ids, attention_mask (0 on padding) and labels
    (-100 on padding). Right padding for training; left for generation."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', not {padding_side!r}")
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE_INDEX)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        cols = slice(0, n) if padding_side == "right" else slice(width - n, width)
        ids[row, cols] = torch.tensor(e.input_ids)
        labels[row, cols] = torch.tensor(e.labels)
        mask[row, cols] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sft_loader(
    examples: Sequence[SFTExample], tokenizer: Any, batch_size: int = 8, shuffle: bool = True
) -> DataLoader:
    """A DataLoader of right-padded batches (dicts with "labels", as `fit` takes them)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DataLoader(
        list(examples),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=partial(collate, pad_id=pad),
    )


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: the logits at position t are scored against labels[t + 1];
    positions labelled -100 are ignored; the mean is over the graded tokens. `fit`'s `loss_fn`."""
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"expected logits (batch, tokens, vocab) and labels (batch, tokens); got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    # shift the labels, not the logits: a shifted slice of the logits would be copied whole
    shifted = nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), shifted.reshape(-1), ignore_index=IGNORE_INDEX
    )


@contextmanager
def evaluating(model: nn.Module) -> Iterator[torch.device]:
    """Eval mode (no dropout) inside the block, the previous mode after; yields the device."""
    was_training = model.training
    model.eval()
    try:
        yield next(model.parameters()).device
    finally:
        model.train(was_training)


def _graded_losses(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example of the batch: the summed next-token loss over its graded tokens, and their
    number."""
    labels = batch["labels"][:, 1:].to(device)
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1].float()
    per_token = nn.functional.cross_entropy(
        logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return per_token.sum(1).cpu(), (labels != IGNORE_INDEX).sum(1).cpu()


@torch.no_grad()
def response_loss(model: nn.Module, loader: Any) -> float:
    """Mean next-token loss over the graded (response) tokens of every batch, weighted by
    tokens: how well the model predicts the answers it is meant to give."""
    total, count = 0.0, 0
    with evaluating(model) as device:
        for batch in loader:
            sums, counts = _graded_losses(model, batch, device)
            total, count = total + float(sums.sum()), count + int(counts.sum())
    if count == 0:
        raise ValueError("no graded tokens: every label is -100")
    return total / count


@torch.no_grad()
def example_losses(model: nn.Module, loader: Any) -> list[float]:
    """Every example's mean next-token loss over its own graded tokens, in loader order."""
    out: list[float] = []
    with evaluating(model) as device:
        for batch in loader:
            sums, counts = _graded_losses(model, batch, device)
            out += (sums / counts.clamp(min=1)).tolist()
    return out


class ResponseLoss(Callback):
    """A `fit` callback: the loss on the answers of held-out examples after every epoch, recorded
    as `val_loss` (so the learning curves show it). `fit`'s own validation keeps every logit of
    the validation set, too much for a 49,152-word vocabulary; this keeps only the loss."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def on_evaluate_end(self, state: FitState) -> None:
        state.history.epochs[-1]["val_loss"] = response_loss(state.model, self.loader)
