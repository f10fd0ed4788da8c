"""Forgetting, measured: what a fine-tuned encoder lost of what it could do before.

Fine-tuning MiniLM on tweet sentiment moves its weights toward that one task. Whether that costs
the encoder its general ability is a question with a measurable answer: take an ability the
pre-trained encoder had and that the new task never trained, and measure it before and after.

- **ability**: nearest-centroid accuracy on a held-out task (e.g. BBC News topics) using the
  encoder's own sentence embeddings: one mean vector per topic from a few labelled articles, each
  test article goes to the closest. Nothing is trained, so the score reads the embedding space
  itself. `forgetting` = the reference's ability minus this encoder's (in accuracy points).
- **drift**: `1 - correlation` between the pairwise cosine similarities of the same texts under the
  two encoders. 0 when the geometry is unchanged (texts that were alike are still alike), larger
  as fine-tuning rearranges the space; more sensitive than an accuracy on a few texts.

"Catastrophic" forgetting is the extreme case, an ability all but gone; a short fine-tune on a
small task usually costs a few points at most, so measure before using the word.
`ForgettingProbe(reference, ...)` embeds the probe task once with the reference (pre-trained)
encoder and then measures any number of fine-tuned models against it (`probe.measure(model)`),
e.g. every seed of every strategy; `measure_forgetting` is the one-call table.

LoRA keeps every pre-trained weight bit-identical, so `without_lora(model)` gives back the
original encoder exactly: switching the adapter off undoes the forgetting, by construction.
Lesson 06.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..datasets import Split
from ..embeddings import nearest_centroid_hits
from ..features import extract_text_features
from ..heads import TextClassifier
from ..lora import LoRALinear
from ..params import set_submodule

__all__ = [
    "ForgettingProbe",
    "encoder_of",
    "measure_forgetting",
    "sentence_embeddings",
    "similarity_drift",
    "without_lora",
]


def encoder_of(model: nn.Module) -> nn.Module:
    """The text encoder inside `model`: `TextClassifier.encoder`, a Hugging Face classifier's
    `base_model`, or `model` itself (a bare encoder)."""
    if isinstance(model, TextClassifier):
        return model.encoder
    return getattr(model, "base_model", model)


def without_lora(model: nn.Module) -> nn.Module:
    """A copy of `model` with its LoRA adapters taken off: every `LoRALinear` replaced by the
    frozen layer it wraps (unmerged first, if it was merged). `model` itself is untouched."""
    out = copy.deepcopy(model)
    layers = [(n, m) for n, m in out.named_modules() if isinstance(m, LoRALinear)]
    if not layers:
        raise ValueError("this model has no LoRA layers: there is no adapter to take off")
    for name, layer in layers:
        layer.unmerge()
        set_submodule(out, name, layer.base)
    if hasattr(out, "lora_config"):
        del out.lora_config
    return out


def sentence_embeddings(
    model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int = 128
) -> torch.Tensor:
    """Mean-pooled sentence embeddings [N, hidden] of `texts` from `model`'s encoder (cached:
    the key covers the weights, so a fine-tuned encoder never gets the original's vectors)."""
    return extract_text_features(encoder_of(model), tokenizer, list(texts), max_length)


def _cosines(x: torch.Tensor) -> torch.Tensor:
    """All pairwise cosine similarities, in float64 so that rounding cannot pass for drift."""
    x = torch.nn.functional.normalize(x.double(), dim=-1)
    return x @ x.T


def similarity_drift(before: torch.Tensor, after: torch.Tensor) -> float:
    """1 - Pearson correlation of the pairwise cosine similarities (off the diagonal) of the same
    N texts embedded twice: 0.0 for identical embeddings, up to 2 for a reversed geometry."""
    if before.shape[0] != after.shape[0] or before.ndim != 2 or after.ndim != 2:
        raise ValueError(
            f"need two embeddings of the same texts, [N, D] each; got {tuple(before.shape)} "
            f"and {tuple(after.shape)}"
        )
    if len(before) < 3:
        raise ValueError("need at least 3 texts to correlate their similarities")
    if torch.equal(before, after):
        return 0.0
    off = ~torch.eye(len(before), dtype=torch.bool)
    a, b = (_cosines(x)[off] for x in (before, after))
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    return max(0.0, 1.0 - corr)


class ForgettingProbe:
    """A held-out text task that measures encoders against one `reference` (e.g. pre-trained).

    `probe_train` only gives each class's mean embedding; `probe_test` is scored by nearest
    centroid. The reference is embedded once, here; `measure(model)` then costs one pass of
    `model` over the probe texts (cached by weights: an unchanged encoder is not re-run).
    """

    def __init__(
        self,
        reference: nn.Module,
        tokenizer: Any,
        probe_train: Split,
        probe_test: Split,
        *,
        max_length: int = 128,
    ) -> None:
        if len(probe_test) < 3 or len(probe_train) < 1:
            raise ValueError("the probe task needs a few training texts and at least 3 test texts")
        self.tokenizer, self.max_length = tokenizer, max_length
        self.train, self.test = probe_train, probe_test
        self.ref_x, self.ref_hits = self._embed(reference)
        self.ability = self.ref_hits.mean().item()

    def _embed(self, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        train_x = sentence_embeddings(model, self.tokenizer, self.train.x, self.max_length)
        test_x = sentence_embeddings(model, self.tokenizer, self.test.x, self.max_length)
        return test_x, nearest_centroid_hits(train_x, self.train.y, test_x, self.test.y)

    def measure(self, model: nn.Module) -> dict[str, Any]:
        """`ability` (nearest-centroid accuracy), `forgetting` (the reference's ability minus
        this one), `drift` (`similarity_drift` from the reference), `max_change` (the largest
        change of any test embedding) and `hits` (1/0 per probe test text, for paired tests)."""
        test_x, hits = self._embed(model)
        ability = hits.mean().item()
        return {
            "ability": ability,
            "forgetting": self.ability - ability,
            "drift": similarity_drift(self.ref_x, test_x),
            "max_change": (test_x - self.ref_x).abs().max().item(),
            "hits": hits.numpy(),
        }


def measure_forgetting(
    models: Mapping[str, nn.Module],
    tokenizer: Any,
    probe_train: Split,
    probe_test: Split,
    *,
    max_length: int = 128,
    reference: str | None = None,
) -> list[dict[str, Any]]:
    """One row per model: `model, ability, forgetting, drift, max_change` (see
    `ForgettingProbe.measure`), against `reference` (default: the first model, e.g. the
    pre-trained encoder). `probe_train` / `probe_test` are a held-out text task (texts + labels)
    that none of the models was fine-tuned on."""
    if not models:
        raise ValueError("no models given: pass {name: model}, the pre-trained one first")
    reference = reference if reference is not None else next(iter(models))
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not one of {list(models)}")
    probe = ForgettingProbe(
        models[reference], tokenizer, probe_train, probe_test, max_length=max_length
    )
    rows = []
    for name, model in models.items():
        row = {"model": name, **probe.measure(model)}
        del row["hits"]
        rows.append(row)
    return rows
