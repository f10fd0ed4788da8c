"""Tests for coursekit.experiments.forgetting: drift, taking LoRA off, and forgetting on real
MiniLM + BBC."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertForSequenceClassification, BertModel

from coursekit.datasets import TensorDictDataset, load_bbc_news, per_class
from coursekit.experiments.forgetting import (
    ForgettingProbe,
    encoder_of,
    measure_forgetting,
    sentence_embeddings,
    similarity_drift,
    without_lora,
)
from coursekit.features import clear_feature_cache
from coursekit.lora import add_lora, merge_lora
from coursekit.models import load_pretrained, load_tokenizer
from coursekit.models.text import sentence_vectors
from coursekit.training import fit

from conftest import require_asset
from helpers import tiny_bert_config, tiny_classifier

CONFIG = tiny_bert_config()


def tokens(n: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    ids = torch.randint(1, 50, (n, 8), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@torch.no_grad()
def embed(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    return sentence_vectors(encoder_of(model).eval(), batch, normalize=False)


def test_similarity_drift():
    x = torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    assert similarity_drift(x, x.clone()) == 0.0
    assert similarity_drift(x, 3 * x) == pytest.approx(0.0, abs=1e-9)  # cosine ignores scale
    shuffled = x[torch.randperm(10, generator=torch.Generator().manual_seed(1))]
    assert similarity_drift(x, shuffled) > 0.3  # other texts' vectors: the geometry is gone
    assert 0 < similarity_drift(x, x + 0.3 * torch.randn_like(x)) < similarity_drift(x, shuffled)
    with pytest.raises(ValueError, match="same texts"):
        similarity_drift(x, x[:5])
    with pytest.raises(ValueError, match="at least 3"):
        similarity_drift(x[:2], x[:2])


def test_encoder_of():
    clf = tiny_classifier()
    assert encoder_of(clf) is clf.encoder
    hf = BertForSequenceClassification(CONFIG)
    assert encoder_of(hf) is hf.bert
    bare = BertModel(CONFIG)
    assert encoder_of(bare) is bare


def test_without_lora_gives_back_the_original_exactly():
    model = tiny_classifier()
    original = copy.deepcopy(model)
    add_lora(model, ["query", "value"], r=2, alpha=4, modules_to_save=["head"])
    data = TensorDictDataset(tokens(16), torch.arange(16) % 2)
    fit(model, data, epochs=3, lr=5e-2, batch_size=8, progress=False)
    batch = tokens(6, seed=3)
    assert not torch.equal(embed(model, batch), embed(original, batch))  # the adapter changed it
    off = without_lora(model)
    assert torch.equal(embed(off, batch), embed(original, batch))  # bit for bit
    assert set(off.state_dict()) == set(original.state_dict())
    assert hasattr(model, "lora_config") and not hasattr(off, "lora_config")  # model untouched
    merge_lora(model)
    off_merged = without_lora(model)  # unmerged on the copy: equal up to float rounding
    torch.testing.assert_close(embed(off_merged, batch), embed(original, batch))
    with pytest.raises(ValueError, match="no LoRA"):
        without_lora(original)


@pytest.mark.slow
def test_forgetting_zero_untouched_positive_after_destruction():
    require_asset("minilm")
    require_asset("bbc_news")
    bbc = load_bbc_news(seed=0)
    train, test = per_class(bbc.train, 3, seed=0), per_class(bbc.test, 3, seed=0)
    tokenizer = load_tokenizer("minilm")
    pretrained = load_pretrained("minilm")
    untouched = copy.deepcopy(pretrained)
    destroyed = copy.deepcopy(pretrained)
    with torch.no_grad():  # a deliberately destructive update: noise on every encoder layer
        g = torch.Generator().manual_seed(0)
        for name, p in destroyed.named_parameters():
            if ".layer." in name:
                p.add_(torch.randn(p.shape, generator=g) * p.std())
    clear_feature_cache()
    rows = measure_forgetting(
        {"pre-trained": pretrained, "untouched": untouched, "destroyed": destroyed},
        tokenizer,
        train,
        test,
        max_length=32,
    )
    by = {r["model"]: r for r in rows}
    assert by["pre-trained"]["ability"] > 0.6  # 5 topics, chance 0.2: the ability is real
    assert by["untouched"]["forgetting"] == 0.0 and by["untouched"]["drift"] == 0.0
    assert by["untouched"]["max_change"] == 0.0
    assert by["destroyed"]["forgetting"] > 0.2 and by["destroyed"]["drift"] > 0.2
    emb = sentence_embeddings(pretrained, tokenizer, test.x, 32)
    assert emb.shape == (len(test), 384)
    probe = ForgettingProbe(pretrained, tokenizer, train, test, max_length=32)
    assert probe.ability == by["pre-trained"]["ability"]
    seen = probe.measure(destroyed)  # the same numbers as the table, plus 1/0 per test article
    assert seen["hits"].shape == (len(test),) and seen["hits"].mean() == seen["ability"]
    assert seen["forgetting"] == pytest.approx(by["destroyed"]["forgetting"])
    assert seen["drift"] == pytest.approx(by["destroyed"]["drift"])
    with pytest.raises(ValueError, match="reference"):
        measure_forgetting({"a": pretrained}, tokenizer, train, test, reference="b")
