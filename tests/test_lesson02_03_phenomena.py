"""Lessons 02 and 03 still show what they teach: each lesson's phenomenon, in quick mode, over
3 seeds, checked with `claims.shows` (a tie or the opposite fails), as the notebooks run it.

02: a frozen pre-trained network + linear head beats a fair from-scratch model that learned
    (far above chance) at the smallest size, and the gap closes as the data grows
    (`experiments.show_transfer`), on images (SmallCNN) and on text (bag of words).
03: mean pooling of MiniLM's token vectors beats [CLS] and BERT's pooler for a linear head, at
    both text lengths the lesson reads; the course's text head (`heads.TEXT_POOLING`) is mean.
"""

from __future__ import annotations

import pytest

import coursekit as ck
from coursekit import experiments as ex
from coursekit.datasets import Split, load_bbc_news, load_fashion_mnist, per_class, tokenize
from coursekit.features import extract_image_features, pooled_text_features
from coursekit.heads import TEXT_POOLING
from coursekit.models import load_pretrained, load_tokenizer, normalization_for

from conftest import require_asset

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)
PRE, SCRATCH = "pre-trained", "scratch"


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("COURSEKIT_MODE", "quick")
    monkeypatch.setenv("COURSEKIT_PROGRESS", "0")


def test_02_images_pretrained_ahead_at_few_and_the_gap_closes():
    for name in ("fashion_mnist", "efficientnet_lite0"):
        require_asset(name)
    cfg, fm = ck.settings(), load_fashion_mnist()
    pool, test = per_class(fm.train, 50, seed=0), per_class(fm.test, cfg.test_per_class, seed=0)
    backbone, (mean, std) = (
        load_pretrained("efficientnet_lite0"),
        normalization_for("efficientnet_lite0"),
    )
    feats = [Split(extract_image_features(backbone, s.x, cfg.image_size, mean, std), s.y)
             for s in (pool, test)]  # fmt: skip
    methods = {  # the rates lesson 02's validation tuning picks in quick mode
        PRE: ex.probe_method(lr=1e-2),
        SCRATCH: ex.cnn_method(10, lr=3e-3, epochs=20, min_steps=150),
    }
    splits = {PRE: tuple(feats), SCRATCH: (pool, test)}
    rows = ex.data_efficiency(methods, splits, (1, 5, 20), SEEDS, progress=False)
    assert min(r["distinct_predictions"] for r in rows) == 10  # every class predicted
    ex.show_transfer(rows, PRE, SCRATCH, chance=0.1, task="Fashion-MNIST")


def test_02_texts_pretrained_ahead_at_few_and_the_gap_closes():
    for name in ("bbc_news", "minilm"):
        require_asset(name)
    cfg, bbc = ck.settings(), load_bbc_news()
    tokenizer, encoder = load_tokenizer("minilm"), load_pretrained("minilm")
    pool = per_class(bbc.train, 100, seed=0)
    test = per_class(bbc.test, min(cfg.test_per_class, *bbc.test.class_counts()), seed=0)
    feats = [Split(pooled_text_features(encoder, tokenize(s.x, tokenizer, 32), ("mean",))["mean"],
                   s.y) for s in (pool, test)]  # fmt: skip
    methods = {
        PRE: ex.probe_method(lr=1e-2),
        SCRATCH: ex.bag_of_words_method(tokenizer, 32, lr=3e-3),
    }
    rows = ex.data_efficiency(methods, {PRE: tuple(feats), SCRATCH: (pool, test)}, (5, 20, 100),
                              SEEDS, progress=False)  # fmt: skip
    ex.show_transfer(rows, PRE, SCRATCH, chance=0.2, task="BBC News")


def test_03_mean_pooling_beats_cls_and_pooler():
    for name in ("bbc_news", "minilm"):
        require_asset(name)
    cfg, bbc = ck.settings(), load_bbc_news(seed=0)
    tokenizer = load_tokenizer("minilm")
    encoder = load_pretrained("minilm", num_classes=bbc.num_classes).base_model
    train, val = per_class(bbc.train, 20, seed=0), per_class(bbc.val, 30, seed=0)
    poolings, splits = ("cls", "pooler", "mean"), {}
    for length in (32, cfg.max_length):
        tr, va = (pooled_text_features(encoder, tokenize(s.x, tokenizer, length), poolings)
                  for s in (train, val))  # fmt: skip
        for p in poolings:
            splits[f"{p} @ {length}"] = (Split(tr[p], train.y), Split(va[p], val.y))
    probe = ex.probe_method(lr=3e-3)
    rows = ex.data_efficiency(dict.fromkeys(splits, probe), splits, (10,), SEEDS, progress=False)
    for length in (32, cfg.max_length):
        for other in ("cls", "pooler"):
            gap = ex.gap(rows, f"mean @ {length}", f"{other} @ {length}", 10)
            ck.claims.shows(f"at {length} tokens, mean pooling beats {other}", gap)
    assert TEXT_POOLING == "mean"
