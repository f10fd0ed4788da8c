"""Scoring generated answers automatically, with the uncertainty a small test set leaves.

When the answer has a fixed format (one word out of a list), a program can grade it:
- **exact match**: the answer, stripped of surrounding spaces, is exactly the reference;
- **format rate** ("parse rate"): the answer is one of the allowed answers at all, right or wrong;
- **lenient accuracy**: the first allowed answer the text mentions is the reference ("This is about
  sports." counts as "sports"), the benefit of the doubt for a model that knows the answer but
  not the format.
Each is a proportion of n test prompts, so it comes with a 95 % Wilson interval
(`claims.interval`): 27/60 = 0.45 is really "somewhere in 0.33-0.58".

`perplexity` reads plain text instead: exp of the mean next-token loss, the number of tokens
the model hesitates between, on average. Measured on general text before and after tuning, it
shows what tuning cost the model's general language ability (lesson 06's forgetting, for a
generative model). Lesson 08.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..claims import interval
from .sft import IGNORE_INDEX, response_loss

__all__ = [
    "Score",
    "exact_match",
    "format_rate",
    "lenient_accuracy",
    "parse_label",
    "perplexity",
]


@dataclass(frozen=True)
class Score:
    """`hits` of `n` answers passed; `value` with its 95 % Wilson interval."""

    name: str
    hits: int
    n: int

    @property
    def value(self) -> float:
        return self.hits / self.n

    @property
    def interval(self) -> tuple[float, float]:
        return interval(self.value, self.n)

    def __str__(self) -> str:
        lo, hi = self.interval
        return (
            f"{self.name} {self.value:.2f} ({self.hits}/{self.n}; 95% interval {lo:.2f}-{hi:.2f})"
        )


def _check(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references) or not predictions:
        raise ValueError(
            f"need as many answers as references (and at least one): got {len(predictions)} "
            f"answers for {len(references)} references"
        )


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> Score:
    """Answers that are exactly the reference once surrounding whitespace is stripped."""
    _check(predictions, references)
    hits = sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True))
    return Score("exact match", hits, len(references))


def format_rate(predictions: Sequence[str], allowed: Sequence[str]) -> Score:
    """Answers that are one of the `allowed` answers (stripped), right or wrong."""
    if not predictions:
        raise ValueError("no answers to score")
    options = {a.strip() for a in allowed}
    return Score("format", sum(p.strip() in options for p in predictions), len(predictions))


def parse_label(answer: str, labels: Sequence[str]) -> str | None:
    """The label (a whole word, any case) that `answer` mentions first, or None."""
    found = []
    for label in labels:
        m = re.search(rf"\b{re.escape(label)}\b", answer, flags=re.IGNORECASE)
        if m:
            found.append((m.start(), label))
    return min(found)[1] if found else None


def lenient_accuracy(
    predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]
) -> Score:
    """Answers whose first mentioned label is the reference, whatever else they say."""
    _check(predictions, references)
    hits = sum(parse_label(p, labels) == r for p, r in zip(predictions, references, strict=True))
    return Score("lenient accuracy", hits, len(references))


def perplexity(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 64,
    batch_size: int = 8,
) -> float:
    """exp(mean next-token loss) over the first `max_length` tokens of each text (plain text,
    no chat template; every token counts, padding excluded)."""
    if not texts:
        raise ValueError("no texts to measure")
    batches = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt",
                        padding="longest", truncation=True, max_length=max_length,
                        return_token_type_ids=False)  # fmt: skip
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, IGNORE_INDEX)
        batches.append({**enc, "labels": labels})
    return math.exp(response_loss(model, batches))
