"""Evaluation in batches of similar length: the same logits, in the dataset's order, for less
padding (training/by_length.py)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from coursekit.datasets import TensorDictDataset
from coursekit.training import predict
from coursekit.training.by_length import CPU_TOKENS, by_length, cut_padding
from coursekit.training.limits import dry_run

from helpers import tiny_classifier


def _texts(n: int = 40, width: int = 16, seed: int = 0) -> TensorDictDataset:
    """Right-padded token ids of random lengths 3..width, labels 0/1."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, width + 1, (n,), generator=g)
    mask = (torch.arange(width) < lengths[:, None]).long()
    ids = torch.randint(5, 50, (n, width), generator=g) * mask
    return TensorDictDataset({"input_ids": ids, "attention_mask": mask},
                             torch.randint(0, 2, (n,), generator=g))  # fmt: skip


def test_predict_gives_the_padded_batches_logits_in_the_datasets_order():
    data, model = _texts(), tiny_classifier().eval()
    logits, labels = predict(model, data, "cpu", batch_size=8)
    plain, plain_labels = predict(model, DataLoader(data, batch_size=8), "cpu")  # no grouping
    assert torch.equal(labels, data.labels) and torch.equal(plain_labels, data.labels)
    torch.testing.assert_close(logits, plain, atol=1e-5, rtol=1e-5)


def test_batches_are_sorted_by_length_and_cut_after_their_last_real_token():
    data = _texts()
    loader, order = by_length(data, 8, torch.device("cpu"))
    lengths = data.encodings["attention_mask"].sum(1)
    assert torch.equal(lengths[order], lengths.sort(stable=True).values)
    widths = [batch["input_ids"].shape[1] for batch in loader]
    assert widths == sorted(widths) and widths[0] < 16 and widths[-1] == 16
    for batch in loader:
        assert batch["attention_mask"][:, -1].any(), "the last column kept is a real token"
        assert batch["labels"].shape == (len(batch["input_ids"]),)


def test_a_cpu_batch_holds_at_most_cpu_tokens():
    loader, _ = by_length(_texts(300), 1000, torch.device("cpu"))
    assert max(len(batch["input_ids"]) for batch in loader) == CPU_TOKENS // 16


def test_left_padding_is_left_alone():
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    items = [{"input_ids": m * 7, "attention_mask": m, "labels": torch.tensor(0)} for m in mask]
    batch = cut_padding(items)
    assert torch.equal(batch["attention_mask"], mask)


def test_only_one_label_per_example_datasets_are_grouped():
    data = _texts(8)
    token_labels = TensorDictDataset({**data.encodings, "labels": data.encodings["input_ids"]})
    no_mask = TensorDictDataset({"input_ids": data.encodings["input_ids"]}, data.labels)
    cpu = torch.device("cpu")
    assert by_length(token_labels, 4, cpu) is None  # a decoder's labels follow the columns
    assert by_length(no_mask, 4, cpu) is None
    assert by_length(list(data), 4, cpu) is None


def test_a_dry_run_scores_the_same_first_examples_for_every_model():
    data, model = _texts(), tiny_classifier().eval()
    with dry_run(2):  # the full-mode check: only the first batches are scored
        _, labels = predict(model, data, "cpu", batch_size=8)
    assert len(labels) == 16 and torch.equal(labels, data.labels[:16])  # the first, in order
