"""Feature extraction and its cache: same answers as a fresh run, never stale, never pickled."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch import nn

from coursekit import features as F
from coursekit.datasets import prepare_images

from conftest import require_asset


class TinyBackbone(nn.Module):
    """A small conv net with a `features` method, like EfficientNet-Lite0, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.calls = 0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.bn(self.conv(x)).relu().mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@pytest.fixture(autouse=True)
def fresh_memory():
    F.clear_feature_cache()
    yield
    F.clear_feature_cache()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(0, 256, (10, 12, 12), dtype=torch.uint8, generator=torch.Generator())


def extract(model, images, cache_dir=None, size=16, **kw):
    return F.extract_image_features(
        model, images, size, 0.5, 0.25, batch_size=4, device="cpu", cache_dir=cache_dir, **kw
    )


def test_core_batches_without_grad_and_returns_cpu_float():
    seen = []

    def fn(batch):
        seen.append(len(batch))
        assert not torch.is_grad_enabled()
        return batch.double() * 2

    x = torch.arange(10.0)[:, None]
    out = F.extract_features(fn, x, key=None, batch_size=4)
    assert seen == [4, 4, 2]
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.equal(out, x * 2)


def test_core_slices_dict_inputs_alike():
    inputs = {"a": torch.arange(6), "b": torch.arange(6) * 10}
    out = F.extract_features(lambda b: (b["a"] + b["b"])[:, None], inputs, None, batch_size=4)
    assert out.flatten().tolist() == [0, 11, 22, 33, 44, 55]


def test_cached_result_equals_fresh_and_hit_does_not_call_model(images, tmp_path):
    model = TinyBackbone()
    fresh = extract(model, images)  # no cache_dir: memory only
    assert model.calls == 3 and F.last_extraction()["source"] == "computed"
    again = extract(model, images)
    assert model.calls == 3, "a memory-cache hit must not run the model"
    assert F.last_extraction()["source"] == "memory"
    assert torch.equal(again, fresh)

    F.clear_feature_cache()
    first = extract(model, images, tmp_path)
    calls = model.calls
    F.clear_feature_cache()
    from_disk = extract(model, images, tmp_path)
    assert model.calls == calls, "a disk-cache hit must not run the model"
    info = F.last_extraction()
    assert info["source"] == "disk" and info["compute_seconds"] >= 0
    assert torch.equal(from_disk, first) and torch.equal(from_disk, fresh)


def test_returned_tensor_is_a_copy(images):
    model = TinyBackbone()
    out = extract(model, images)
    out.zero_()
    assert extract(model, images).abs().sum() > 0, "editing a result must not edit the cache"


def test_model_left_in_its_mode_and_outputs_need_no_grad(images):
    model = TinyBackbone().train()
    out = extract(model, images)
    assert model.training, "train mode is restored after extraction"
    assert not out.requires_grad
    # extraction itself ran in eval mode: BatchNorm used running stats, not batch stats
    model.eval()
    expected = model.features(prepare_images(images, 16, mean=0.5, std=0.25))
    assert torch.allclose(out, expected.detach(), atol=1e-6)


@pytest.mark.parametrize("change", ["weight", "buffer", "input", "size", "mean"])
def test_any_change_invalidates_the_cache(images, tmp_path, change):
    model = TinyBackbone()
    before = extract(model, images, tmp_path)
    calls = model.calls
    size, mean = 16, 0.5
    if change == "weight":
        with torch.no_grad():
            model.conv.weight[0, 0, 0, 0] += 1.0
    elif change == "buffer":
        model.bn.running_mean[0] += 1.0
    elif change == "input":
        images = images.clone()
        images[3, 5, 5] ^= 1  # one pixel, one bit
    elif change == "size":
        size = 20
    else:
        mean = 0.4
    after = F.extract_image_features(
        model, images, size, mean, 0.25, batch_size=4, device="cpu", cache_dir=tmp_path
    )
    assert model.calls > calls, f"changing the {change} must recompute"
    assert F.last_extraction()["source"] == "computed"
    assert not torch.equal(after, before)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_keys_are_stable_and_sensitive():
    model = TinyBackbone()
    x = torch.zeros(2, 3, dtype=torch.uint8)
    assert F.feature_key(model, x, size=8) == F.feature_key(model, x.clone(), size=8)
    assert F.feature_key(model, x, size=8) != F.feature_key(model, x, size=9)
    assert F.feature_key(model, x, size=8) != F.feature_key(model, x.float(), size=8)
    assert F.tensor_digest(["ab", "c"]) != F.tensor_digest(["a", "bc"])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip_data", "wrong_rows"])
def test_damaged_cache_file_is_recomputed_not_trusted(images, tmp_path, damage):
    model = TinyBackbone()
    fresh = extract(model, images, tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a safetensors file at all")
    elif damage == "flip_data":  # header intact, last float changed: only the checksum sees it
        path.write_bytes(raw[:-4] + bytes(b ^ 0xFF for b in raw[-4:]))
    else:  # a valid file for another input count under this name
        from safetensors.torch import save_file

        save_file({"features": fresh[:3]}, path, metadata={"key": path.stem[len("features-") :]})
    F.clear_feature_cache()
    calls = model.calls
    with pytest.warns(UserWarning, match="ignored and recomputed"):
        out = extract(model, images, tmp_path)
    assert model.calls > calls
    assert torch.equal(out, fresh)
    F.clear_feature_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file is good again
        assert torch.equal(extract(model, images, tmp_path), fresh)


def test_nothing_written_outside_cache_dir(images, tmp_path, monkeypatch):
    cwd, cache = tmp_path / "cwd", tmp_path / "cache" / "nested"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    extract(TinyBackbone(), images, cache)
    assert list(cwd.iterdir()) == []
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert len(files) == 1 and files[0].endswith(".safetensors"), files  # no temp files left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "cwd"]
    with open(cache / files[0], "rb") as f:
        assert b"pickle" not in f.read(200) and os.path.getsize(cache / files[0]) > 0


def test_bad_inputs_get_clear_errors():
    model = TinyBackbone()
    with pytest.raises(TypeError, match="uint8"):
        extract(model, torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="no inputs"):
        F.extract_features(lambda b: b, torch.zeros(0, 3), None)
    with pytest.raises(ValueError, match="rows"):
        F.extract_features(lambda b: b[:1], torch.zeros(4, 3), None, batch_size=4)
    with pytest.raises(ValueError, match="names a file"):
        F.extract_features(lambda b: b, torch.zeros(2, 3), "../outside", cache_dir="c")
    with pytest.raises(TypeError, match="list of str"):
        F.extract_text_features(model, None, "one text", 8)


@pytest.mark.assets
def test_efficientnet_features_match_the_model():
    require_asset("efficientnet_lite0")
    from coursekit.models import load_pretrained, normalization_for

    model = load_pretrained("efficientnet_lite0")
    mean, std = normalization_for("efficientnet_lite0")
    x = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    out = F.extract_image_features(model, x, 32, mean, std, device="cpu")
    assert out.shape == (3, 1280)
    with torch.no_grad():
        expected = model.features(prepare_images(x, 32, mean=mean, std=std))
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.assets
def test_minilm_text_features_match_embed_sentences():
    require_asset("minilm")
    from coursekit.models import embed_sentences, load_pretrained, load_tokenizer

    model, tok = load_pretrained("minilm"), load_tokenizer("minilm")
    texts = ["Shares rose sharply.", "The striker scored twice in the final minutes of the game."]
    out = F.extract_text_features(model, tok, texts, 16, device="cpu")
    assert out.shape == (2, 384)
    expected = embed_sentences(model, tok, texts, max_length=16, normalize=False)
    assert torch.allclose(out, expected, atol=1e-4)
    unit = F.extract_text_features(model, tok, texts, 16, normalize=True, device="cpu")
    assert torch.allclose(unit.norm(dim=1), torch.ones(2), atol=1e-5)
    assert not torch.equal(F.extract_text_features(model, tok, texts, 8, device="cpu"), out)
