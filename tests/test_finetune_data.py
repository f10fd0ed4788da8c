"""Loading a learner's own data (coursekit.finetune.data/report): every format, every bad input.

Real data only: Fashion-MNIST test images written as PNG folders, tweets written as CSV/TSV/JSONL.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from coursekit.finetune import (
    DataError,
    bootstrap_interval,
    data_report,
    load_data,
    warmup_cosine,
)
from coursekit.finetune.examples import fashion_mnist_folder, tweets_csv

from conftest import require_asset


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    require_asset("fashion_mnist")
    root = tmp_path_factory.mktemp("images") / "clothes"
    return fashion_mnist_folder(root, per_class=12, classes=["Trouser", "Bag", "T-shirt/top"])


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    require_asset("tweets")
    return tweets_csv(tmp_path_factory.mktemp("texts") / "tweets.csv", per_class=20, binary=True)


@pytest.fixture
def images(image_root, tmp_path):
    """A private copy of the image folder that a test may break."""
    return shutil.copytree(image_root, tmp_path / "clothes")


def test_image_folder_is_split_stratified_and_reproducibly(image_root):
    data = load_data(image_root, seed=3)
    assert data.kind == "image" and data.classes == ["Bag", "T-shirt-top", "Trouser"]
    assert len(data.items) == 36 and data.skipped == []
    parts = [set(data.splits[k].tolist()) for k in ("train", "val", "test")]
    assert set.union(*parts) == set(range(36)) and sum(map(len, parts)) == 36  # disjoint
    for k, n in {"train": 8, "val": 2, "test": 2}.items():  # 12 per class: 15% -> 2
        assert np.bincount(data.labels[data.splits[k]]).tolist() == [n, n, n]
    again, other = load_data(image_root, seed=3), load_data(image_root, seed=4)
    assert again.splits["test"].tolist() == data.splits["test"].tolist()
    assert other.splits["test"].tolist() != data.splits["test"].tolist()


def test_csv_tsv_jsonl_and_a_dataset_give_the_same_data(csv_path, tmp_path):
    import datasets

    frame = pd.read_csv(csv_path)
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    loaded = [
        load_data(csv_path),
        load_data(tmp_path / "t.tsv"),
        load_data(tmp_path / "t.jsonl"),
        load_data(datasets.Dataset.from_pandas(frame)),
    ]
    for data in loaded:
        assert data.kind == "text" and data.classes == ["negative", "positive"]
        assert data.items == loaded[0].items and data.labels.tolist() == loaded[0].labels.tolist()
        assert data.splits["test"].tolist() == loaded[0].splits["test"].tolist()
    assert len(loaded[0].items) == 40


def test_a_corrupt_image_is_named_or_skipped_and_listed(images):
    bad = images / "Bag" / "broken.png"
    bad.write_bytes((images / "Bag").glob("*.png").__next__().read_bytes()[:60])  # truncated
    (images / "Bag" / "notes.txt").write_text("not an image", encoding="utf-8")
    with pytest.raises(DataError, match="(?s)broken.png: cannot read this image.*skip_bad=True"):
        load_data(images)
    data = load_data(images, skip_bad=True)
    reasons = dict(data.skipped)
    assert str(bad) in reasons and "not an image" in reasons[str(images / "Bag" / "notes.txt")]
    assert len(data.items) == 36


def test_an_empty_class_folder_is_an_error(images):
    (images / "Sandal").mkdir()
    with pytest.raises(DataError, match="Sandal.*holds no readable images.*remove the folder"):
        load_data(images)


def test_too_few_examples_to_split_names_the_class(images):
    for path in sorted((images / "Trouser").glob("*.png"))[2:]:
        path.unlink()
    with pytest.raises(DataError, match="class 'Trouser' has 2 example.*at least 3"):
        load_data(images)


def test_duplicates_are_dropped_and_listed_or_reported(images):
    first = sorted((images / "Bag").glob("*.png"))
    for i, path in enumerate(first[:6]):
        shutil.copy(path, images / "Bag" / f"copy{i}.png")
    data = load_data(images)
    assert len(data.items) == 36
    assert sum("duplicate of" in why for _, why in data.skipped) == 6
    kept = load_data(images, dedupe=False)
    assert len(kept.items) == 42
    report = data_report(kept)
    across = int(report.split("duplicates across splits: ")[1].split("\n")[0])
    assert 0 <= across <= 6 and "duplicates across splits: 0" in data_report(data)


def test_a_misspelled_column_gets_close_matches(csv_path):
    with pytest.raises(DataError, match="no column 'sentimnt'. Did you mean 'sentiment'"):
        load_data(csv_path, label_column="sentimnt")
    with pytest.raises(DataError, match="columns are: text, sentiment"):
        load_data(csv_path, text_column="body_text")


def test_mixed_label_types_are_an_error(csv_path, tmp_path):
    frame = pd.read_csv(csv_path)
    frame.loc[::4, "sentiment"] = "1"
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(DataError, match="mixes kinds of labels.*number such as '1'"):
        load_data(tmp_path / "mixed.csv")


def test_a_non_utf8_file_is_named_with_its_line_and_the_fix(csv_path, tmp_path):
    frame = pd.read_csv(csv_path)
    frame.loc[5, "text"] = "Caf\u00e9 at the airport was great"
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(DataError, match=r"latin.csv: not UTF-8 \(byte 0xe9 on line 7\).*encoding="):
        load_data(path)
    data = load_data(path, encoding="latin-1")
    assert "Caf\u00e9 at the airport was great" in data.items


def test_rows_without_text_or_label_are_listed(csv_path, tmp_path):
    frame = pd.read_csv(csv_path)
    frame.loc[3, "sentiment"] = None
    frame.loc[8, "text"] = ""
    frame.to_csv(tmp_path / "holes.csv", index=False)
    data = load_data(tmp_path / "holes.csv")
    assert dict(data.skipped) == {
        f"{tmp_path / 'holes.csv'}, line 5": "no label",
        f"{tmp_path / 'holes.csv'}, line 10": "no text",
    }
    assert len(data.items) == 38


def test_the_report_shows_counts_sizes_modes_and_token_lengths(image_root, csv_path):
    report = data_report(load_data(image_root))
    assert "Bag                8        2        2" in report
    assert "imbalance (largest / smallest class in train): 1.0x" in report
    assert "28x28 smallest" in report
    modes = "colour modes, each read as 8-bit RGB:\n  L             36  grey, copied to R, G and B"
    assert modes in report
    require_asset("minilm")
    from coursekit.models import load_tokenizer

    text_report = data_report(load_data(csv_path), load_tokenizer("minilm"), max_length=16)
    assert "text length in tokens: median" in text_report
    assert "longer than max_length=16 and will be cut" in text_report


def test_intervals_and_the_schedule():  # Wilson's interval: coursekit.claims, tests/test_claims.py
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    preds = torch.tensor([0, 1, 2, 0, 1, 1, 0, 2, 2, 0])
    lo, hi = bootstrap_interval(preds, labels, 3)
    assert 0 < lo < hi <= 1
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched, lrs = warmup_cosine(opt, total_steps=20, warmup_frac=0.1), []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:], strict=False)) and lrs[-1] < 0.01


def test_the_bootstrap_resamples_macro_f1_itself():
    from coursekit.training import macro_f1

    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 2])
    preds = torch.tensor([0, 1, 2, 0, 1, 1, 0, 2, 2, 0, 0, 2])
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(len(labels), (200, len(labels)), generator=gen)
    values = np.array([macro_f1(preds[i], labels[i], 3) for i in idx])
    want = np.percentile(values, [2.5, 97.5])
    assert bootstrap_interval(preds, labels, 3, n=200, seed=0) == pytest.approx(tuple(want))


def test_the_command_line_reports_bad_data_and_exits_2(csv_path, tmp_path, capsys):
    from coursekit.cli import main

    args = ["finetune", str(csv_path), "--out", str(tmp_path / "out"), "--label-column", "mood"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no column 'mood'" in err and "sentiment" in err
    assert main(["predict", str(tmp_path / "nothing-here"), "x.png"]) == 2
    assert "written by coursekit.finetune" in capsys.readouterr().err


def test_class_weights_balance_the_loss_and_hidden_folders_are_listed(images):
    from coursekit.finetune.build import class_weights

    weights = class_weights(np.array([0, 0, 0, 1]), 2)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0])
    (images / ".ipynb_checkpoints").mkdir()
    (images / "README.txt").write_text("clothes", encoding="utf-8")
    skipped = dict(load_data(images).skipped)
    assert skipped[str(images / ".ipynb_checkpoints")] == "a hidden folder"
    assert skipped[str(images / "README.txt")] == "a file, not a class folder"
