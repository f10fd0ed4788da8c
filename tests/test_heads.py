"""Head replacement and input adaptation: only the head is new, shapes and inits are as promised,
and a 1-channel stem built from summed RGB filters sees a gray image exactly as the RGB model does.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset
from transformers import BertConfig, BertForSequenceClassification, BertModel

from coursekit.datasets import TensorDictDataset
from coursekit.features import pooled_text_features
from coursekit.heads import (
    TextClassifier,
    adapt_input_channels,
    find_first_conv,
    find_head,
    init_head,
    replace_head,
)
from coursekit.measure.measured import count_multiply_adds
from coursekit.models.text import pool_tokens
from coursekit.training import evaluate, fit

import helpers
from conftest import require_asset


def tiny_bert_config(**kw) -> BertConfig:
    return helpers.tiny_bert_config(
        vocab_size=100, hidden_size=32, intermediate_size=64, max_position_embeddings=64, **kw
    )


def tiny_bert_classifier(num_labels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config(num_labels=num_labels)).eval()


def torchvision_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None).eval()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_only_head_changed(before: dict, model: nn.Module, head_name: str) -> None:
    after = model.state_dict()
    body = {k for k in before if not k.startswith(head_name + ".")}
    assert body == {k for k in after if not k.startswith(head_name + ".")}
    for k in body:
        assert torch.equal(before[k], after[k]), f"{k} changed"


# --- find_head / replace_head ----------------------------------------------------------------

HEADS = [
    ("efficientnet", "_fc", 1280, 1000),
    ("resnet18", "fc", 512, 1000),
    ("mobilenet_v3_small", "classifier.3", 1024, 1000),
    ("bert", "classifier", 32, 3),
]


def build(kind: str) -> nn.Module:
    """EfficientNet-Lite0 with its real packaged weights; others with seeded random weights."""
    if kind == "efficientnet":
        require_asset("efficientnet_lite0")
        from coursekit.models import load_pretrained

        return load_pretrained("efficientnet_lite0")
    if kind == "bert":
        return tiny_bert_classifier()
    return torchvision_model(kind)


@pytest.mark.parametrize(("kind", "name", "in_features", "out_features"), HEADS)
def test_find_head_names_the_last_linear(kind, name, in_features, out_features):
    model = build(kind)
    found, head = find_head(model)
    assert found == name
    assert isinstance(head, nn.Linear)
    assert (head.in_features, head.out_features) == (in_features, out_features)


@pytest.mark.parametrize(("kind", "name", "in_features", "out_features"), HEADS)
def test_replace_head_changes_only_the_head(kind, name, in_features, out_features):
    model = build(kind)
    before = _state(model)
    assert replace_head(model, 7) == [name]
    new = model.get_submodule(name)
    assert (new.in_features, new.out_features) == (in_features, 7)
    assert_only_head_changed(before, model, name)
    if kind == "bert":
        x = {"input_ids": torch.randint(0, 100, (4, 10)), "attention_mask": torch.ones(4, 10)}
        logits = model(**x).logits
        assert model.config.num_labels == 7 and model.num_labels == 7
        assert len(model.config.id2label) == 7
    else:
        logits = model(torch.randn(4, 3, 64, 64))
    assert logits.shape == (4, 7)


def _tiny_hf(kind: str) -> nn.Module:
    import transformers as tf

    torch.manual_seed(0)
    small = dict(vocab_size=100, num_labels=3, pad_token_id=0)
    if kind == "gpt2":
        config = tf.GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=32, **small)
        return tf.GPT2ForSequenceClassification(config).eval()
    if kind == "roberta":
        config = tf.RobertaConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=40, **small,
        )  # fmt: skip
        return tf.RobertaForSequenceClassification(config).eval()
    config = tf.DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, **small)
    return tf.DistilBertForSequenceClassification(config).eval()


@pytest.mark.parametrize(
    ("kind", "name", "bias"),
    [
        ("gpt2", "score", False),
        ("roberta", "classifier.out_proj", True),
        ("distilbert", "classifier", True),
    ],
)
def test_other_hugging_face_heads(kind, name, bias):
    model = _tiny_hf(kind)
    assert find_head(model)[0] == name
    before = _state(model)
    assert replace_head(model, 6) == [name]
    new = model.get_submodule(name)
    assert (new.bias is not None) == bias
    assert_only_head_changed(before, model, name)
    assert model.config.num_labels == 6
    ids = torch.randint(1, 100, (2, 7))
    assert model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.shape == (2, 6)


def test_replace_head_keeps_device_dtype_and_bias():
    model = torchvision_model("resnet18").double()
    model.fc = nn.Linear(512, 1000, bias=False, dtype=torch.float64)
    replace_head(model, 4)
    new = model.fc
    assert new.weight.dtype == torch.float64 and new.bias is None


def test_zero_head_gives_uniform_predictions_and_loss_ln_c():
    model = build("efficientnet")
    replace_head(model, 10, init="zeros")
    x, y = torch.randn(8, 3, 64, 64), torch.arange(8) % 10
    with torch.no_grad():
        logits = model(x)
    assert torch.count_nonzero(logits) == 0
    loss = nn.functional.cross_entropy(logits, y).item()
    assert loss == pytest.approx(math.log(10), abs=1e-6)
    assert torch.allclose(logits.softmax(-1), torch.full((8, 10), 0.1))


def test_init_options():
    torch.manual_seed(0)
    small = init_head(nn.Linear(1280, 10), "small")
    assert 0.008 < small.weight.std().item() < 0.012 and torch.count_nonzero(small.bias) == 0
    default = init_head(nn.Linear(1280, 10), "default")
    bound = 1 / math.sqrt(1280)
    assert default.weight.abs().max() <= bound and default.weight.std() > 0.5 * bound / math.sqrt(3)
    with pytest.raises(ValueError, match="init must be one of"):
        init_head(nn.Linear(2, 2), "xavier")


def test_unknown_models_and_bad_arguments_are_explained():
    with pytest.raises(ValueError, match=r"no classification head found on a BertModel.*_fc"):
        find_head(BertModel(tiny_bert_config()))
    with pytest.raises(ValueError, match="no classification head found on a Sequential"):
        replace_head(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 5)
    with pytest.raises(ValueError, match="has no submodule 'nope'"):
        find_head(torchvision_model("resnet18"), name="nope")
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        replace_head(torchvision_model("resnet18"), 0)
    with pytest.raises(ValueError, match="no nn.Conv2d found in a BertModel"):
        adapt_input_channels(BertModel(tiny_bert_config()))
    with pytest.raises(ValueError, match="method must be one of"):
        adapt_input_channels(torchvision_model("resnet18"), method="max")
    with pytest.raises(ValueError, match="already reads 3 channel"):
        adapt_input_channels(torchvision_model("resnet18"), in_channels=3)


def test_named_head_and_explicit_name():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6))
    name, head = find_head(model, name="1")
    assert name == "1" and head.out_features == 6
    assert replace_head(model, 2, name="1") == ["1"]
    assert model(torch.randn(3, 12)).shape == (3, 2) and model[1].out_features == 2


# --- input adaptation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "conv_name"),
    [("efficientnet", "_conv_stem"), ("resnet18", "conv1"), ("mobilenet_v3_small", "features.0.0")],
)
def test_one_channel_stem_equals_gray_repeated_as_rgb(kind, conv_name):
    model = build(kind)
    assert find_first_conv(model)[0] == conv_name
    gray = torch.rand(4, 1, 64, 64)
    with torch.no_grad():
        rgb_out = model(gray.expand(-1, 3, -1, -1))
        before = _state(model)
        assert adapt_input_channels(model, 1, "sum") == [conv_name]
        gray_out = model(gray)
    assert model.get_submodule(conv_name).in_channels == 1
    assert_only_head_changed(before, model, conv_name)  # nothing else moved
    assert torch.allclose(gray_out, rgb_out, atol=1e-5, rtol=1e-5)


def test_mean_and_first_methods():
    model = torchvision_model("resnet18")
    w = model.conv1.weight.detach().clone()
    x = torch.rand(2, 1, 32, 32)

    def stem(in_channels: int, method: str) -> nn.Conv2d:
        adapted = torchvision_model("resnet18")
        adapt_input_channels(adapted, in_channels, method)
        return adapted.conv1

    assert torch.allclose(stem(1, "mean").weight, w.mean(1, keepdim=True))
    assert torch.equal(stem(1, "first").weight, w[:, :1])
    four = stem(4, "sum")
    assert four.weight.shape == (64, 4, 7, 7)
    with torch.no_grad():  # a gray image on all 4 channels still matches the RGB model's stem
        assert torch.allclose(
            four(x.expand(-1, 4, -1, -1)), model.conv1(x.expand(-1, 3, -1, -1)), atol=1e-6
        )


def test_adapted_stem_keeps_frozen_state():
    model = torchvision_model("resnet18")
    model.conv1.weight.requires_grad_(False)
    adapt_input_channels(model)
    assert not model.conv1.weight.requires_grad


# --- text pooling -----------------------------------------------------------------------------


def test_pool_tokens_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool_tokens(hidden, mask, "cls"), torch.tensor([[1.0, 1.0]]))
    assert torch.equal(pool_tokens(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool_tokens(hidden, mask, "max")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_text_classifier_pools_and_trains_with_fit(pooling):
    torch.manual_seed(0)
    encoder = BertModel(tiny_bert_config())
    model = TextClassifier(encoder, 2, pooling=pooling, init="zeros")
    assert find_head(model) == ("head", model.head)
    # a learnable toy task: label 1 iff token 7 occurs in the text
    ids = torch.randint(10, 100, (64, 12))
    labels = torch.arange(64) % 2
    ids[labels == 1, 3] = 7
    mask = torch.ones_like(ids)
    mask[::3, 8:] = 0  # some padding
    data = TensorDictDataset({"input_ids": ids, "attention_mask": mask}, labels)
    start = evaluate(model, data, device="cpu")
    assert start["loss"] == pytest.approx(math.log(2), abs=1e-6)
    history = fit(model, data, data, epochs=6, lr=3e-3, batch_size=16, device="cpu", progress=False)
    assert history.last["val_loss"] < 0.5 * start["loss"]
    assert history.last["val_accuracy"] >= 0.9
    # the output ignores what sits under padding in mean pooling
    model.eval()
    with torch.no_grad():
        a = model(ids[:1], mask[:1])
        b = model(torch.where(mask[:1].bool(), ids[:1], 5), mask[:1])
    assert torch.allclose(a, b, atol=1e-6)


def test_text_classifier_uses_base_model_of_a_classifier():
    clf = tiny_bert_classifier(num_labels=3)
    model = TextClassifier(clf, 4, pooling="mean")
    assert model.encoder is clf.bert
    ids = torch.randint(0, 100, (2, 6))
    assert model(ids, torch.ones_like(ids)).shape == (2, 4)
    with pytest.raises(ValueError, match="needs a Hugging Face encoder"):
        TextClassifier(nn.Linear(3, 3), 2)


def test_head_training_on_features_transfers_to_the_full_model():
    """A head trained on cached features works unchanged inside the model (eval mode)."""
    model = torchvision_model("resnet18")
    replace_head(model, 3, init="zeros")
    body = nn.Sequential(*list(model.children())[:-1], nn.Flatten())
    x = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        feats = body(x)
    fit(
        model.fc, TensorDataset(feats, torch.arange(12) % 3), epochs=2, device="cpu", progress=False
    )
    with torch.no_grad():
        assert torch.allclose(model(x), model.fc(feats), atol=1e-5)


def test_count_multiply_adds_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 5))
    macs = count_multiply_adds(model, torch.randn(2, 3, 8, 8))
    assert macs == {"0": 2 * 8 * 8 * 8 * 3 * 9, "2": 2 * 512 * 5}
    one = torchvision_model("resnet18")
    rgb = count_multiply_adds(one, torch.randn(1, 3, 32, 32))
    adapt_input_channels(one, 1)
    gray = count_multiply_adds(one, torch.randn(1, 1, 32, 32))
    assert gray["conv1"] * 3 == rgb["conv1"]
    assert {k: v for k, v in gray.items() if k != "conv1"} == {
        k: v for k, v in rgb.items() if k != "conv1"
    }


def test_pooled_text_features_match_the_classifier(tmp_path):
    torch.manual_seed(0)
    encoder = BertModel(tiny_bert_config())
    ids = torch.randint(0, 100, (10, 8))
    mask = torch.ones_like(ids)
    mask[:4, 5:] = 0
    tokens = {"input_ids": ids, "attention_mask": mask}
    feats = pooled_text_features(encoder, tokens, device="cpu", cache_dir=tmp_path, batch_size=4)
    assert set(feats) == {"cls", "pooler", "mean"} and feats["mean"].shape == (10, 32)
    for pooling in ("cls", "pooler", "mean"):
        model = TextClassifier(encoder, 3, pooling=pooling).eval()
        with torch.no_grad():
            assert torch.allclose(model.embed(ids, mask), feats[pooling], atol=1e-5)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # cached on disk, one pass


# --- the plots lesson 03 uses (coursekit.viz) --------------------------------------------------


def test_variant_plots_show_every_row():
    from coursekit.training import History
    from coursekit.viz import plot_length_histogram, plot_step_losses, plot_variants

    rows = [{"v": "a", "acc": 0.5, "g": "x"}, {"v": "b", "acc": 0.7, "g": "x"}]
    rows += [{"v": "a", "acc": 0.6, "g": "y"}, {"v": "b", "acc": 0.8, "g": "y"}]
    for row in rows:
        row["se"] = 0.05
    ax = plot_variants(rows, "v", "acc", group="g", reference=0.1, err="se").axes[0]
    assert sorted(round(p.get_height(), 2) for p in ax.patches) == [0.5, 0.6, 0.7, 0.8]
    assert " ".join(ax.get_ylabel().split()) == "acc (bars: ± se)"
    lines = plot_variants(rows, "v", "acc", group="g", kind="line").axes[0].get_lines()
    assert len(lines) == 2
    with pytest.raises(ValueError, match="every row needs the columns"):
        plot_variants(rows, "v", "missing")
    runs = {"zeros": History(steps=[2.3, 1.0, 0.5]), "default": History(steps=[2.8, 1.2, 0.6])}
    ax = plot_step_losses(runs, steps=2, reference=2.3).axes[0]
    assert [len(line.get_xdata()) for line in ax.get_lines()[:2]] == [2, 2]
    ax = plot_length_histogram([10, 20, 30, 400], cutoffs=[25]).axes[0]
    assert ax.get_legend().get_texts()[0].get_text() == "cut at 25: 50.0% truncated"
