"""Lesson 02's from-scratch baselines (SmallCNN, TF-IDF + linear head) learn from few examples;
the gaps between methods are read over seeds, paired by test example; tune_lr uses validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coursekit import experiments as ex
from coursekit.datasets import Split
from coursekit.experiments.baselines import SmallCNN, Tfidf


class WordTokenizer:
    """A stand-in for a Hugging Face tokenizer: [CLS]=1, words from a fixed list, padding=0."""

    all_special_ids = [0, 1]

    def __init__(self, words: list[str]) -> None:
        self.ids = {w: i + 2 for i, w in enumerate(words)}

    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        rows = [[1, *(self.ids[w] for w in t.split())][:max_length] for t in texts]
        ids = torch.tensor([r + [0] * (max_length - len(r)) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def tokens(rows: list[list[int]], length: int = 6) -> dict[str, torch.Tensor]:
    ids = torch.tensor([r + [0] * (length - len(r)) for r in rows])
    return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def test_small_cnn_size_and_shapes():
    model = SmallCNN(10)
    convs = (1 * 16 + 16 * 32 + 32 * 64) * 9 + 16 + 32 + 64
    norms = 2 * (16 + 32 + 64)
    assert sum(p.numel() for p in model.parameters()) == convs + norms + 64 * 10 + 10 == 24_170
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 10), "global pooling: any size"
    assert model.coursekit_init == "random"
    assert SmallCNN(5, in_channels=3, width=8)(torch.zeros(1, 3, 28, 28)).shape == (1, 5)


def test_tfidf_counts_weights_and_normalises():
    train = tokens([[1, 5, 5, 7], [1, 5, 9]])  # 1 is [CLS]: never a feature
    tfidf = Tfidf(ignore_ids=[0, 1]).fit(train)
    assert tfidf.vocab.tolist() == [5, 7, 9]
    # token 5 is in both texts: idf ln(3/3) + 1 = 1; 7 and 9 in one: ln(3/2) + 1
    assert torch.allclose(tfidf.idf, torch.tensor([1.0, math.log(1.5) + 1, math.log(1.5) + 1]))
    x = tfidf.transform(train)
    assert torch.allclose(x.norm(dim=1), torch.ones(2))
    raw = torch.tensor([math.log(3) * 1.0, math.log(2) * (math.log(1.5) + 1), 0.0])
    assert torch.allclose(x[0], raw / raw.norm())
    unseen = tfidf.transform(tokens([[1, 8, 8], [1, 7, 30]]))  # 8 and 30 were never seen
    assert unseen[0].abs().sum() == 0 and unseen[1].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(RuntimeError, match="fit"):
        Tfidf().transform(train)
    with pytest.raises(ValueError, match="special"):
        Tfidf(ignore_ids=[0, 1]).fit(tokens([[1], [1]]))


def word_splits(per_class: int, seed: int) -> Split:
    """Texts of 3 topics: each has one topic word among shared filler words."""
    rng = np.random.default_rng(seed)
    topics, filler = ["apple", "stone", "cloud"], ["the", "a", "of", "and"]
    texts, labels = [], []
    for c, word in enumerate(topics):
        for _ in range(per_class):
            words = list(rng.choice(filler, 3)) + [word]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(c)
    return Split(texts, labels)


def test_bag_of_words_learns_topic_words_from_few_examples():
    tok = WordTokenizer(["the", "a", "of", "and", "apple", "stone", "cloud"])
    train, test, val = word_splits(10, 0), word_splits(10, 1), word_splits(4, 2)
    method = ex.bag_of_words_method(tok, 8, lr=3e-2, min_steps=200, val=val, device="cpu")
    (row,) = ex.data_efficiency({"bow": method}, (train, test), shots=(8,), progress=False)
    assert row["accuracy"] == 1.0 and row["distinct_predictions"] == 3
    assert row["trainable_params"] == 7 * 3 + 3, "one weight per seen word and class, and biases"
    assert len(row["history"].metric("val_accuracy")) == row["epochs"]
    assert row["correct"].tolist() == [True] * 30


def bars(per_class: int, seed: int) -> Split:
    """28 x 28 gray images: a bright bar at the top (class 0) or the bottom (class 1), noisy."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (2 * per_class, 28, 28), generator=g)
    y = torch.arange(2).repeat_interleave(per_class)
    for i, c in enumerate(y):
        rows = slice(2, 8) if c == 0 else slice(20, 26)
        x[i, rows] += 180
    return Split(x.to(torch.uint8), y)


def test_cnn_method_learns_and_repeats_a_tiny_training_set():
    train, test, val = bars(4, 0), bars(20, 1), bars(5, 2)
    method = ex.cnn_method(2, lr=1e-2, epochs=2, min_steps=20, batch_size=4, epoch_steps=6,
                           val=val, device="cpu")  # fmt: skip
    (row,) = ex.data_efficiency({"cnn": method}, (train, test), shots=(2,), progress=False)
    assert row["accuracy"] >= 0.9 and row["distinct_predictions"] == 2
    # 4 images, 6 steps of 4 an epoch: the set is repeated 6 times (24 images, 6 steps)
    assert row["optimizer_steps"] >= 20 and row["optimizer_steps"] % 6 == 0
    assert row["backbone_passes"] == row["epochs"] * 24
    assert row["examples_processed"] == row["epochs"] * 4
    lrs = row["history"].metric("lr")
    assert lrs[-1] < 1e-9 < lrs[0] < 1e-2, "the cosine schedule ends at zero"
    assert len(row["history"].metric("val_loss")) == row["epochs"]


def test_train_method_rejects_an_unknown_schedule():
    with pytest.raises(ValueError, match="schedule"):
        ex.train_method(SmallCNN, lambda s, t: s, epochs=1, lr=1e-3, schedule="linear")


def rows_from(correct: dict[tuple[str, int, int], list[int]]) -> list[dict]:
    return [
        {"method": m, "shots": n, "seed": s, "correct": np.array(c)}
        for (m, n, s), c in correct.items()
    ]


def test_gaps_pair_seeds_and_test_examples():
    rows = rows_from({
        ("pre", 1, 0): [1, 1, 1, 0], ("scratch", 1, 0): [1, 0, 0, 0],
        ("pre", 1, 1): [1, 1, 0, 1], ("scratch", 1, 1): [0, 1, 0, 0],
        ("pre", 9, 0): [1, 1, 1, 1], ("scratch", 9, 0): [1, 1, 1, 0],
        ("pre", 9, 1): [1, 1, 1, 0], ("scratch", 9, 1): [1, 1, 1, 0],
    })  # fmt: skip
    acc = ex.mean_accuracy(rows, "pre", 1)
    assert acc.mean == pytest.approx(0.75) and acc.values == (0.75, 0.75) and acc.se > 0
    gap = ex.gap(rows, "pre", "scratch", 1)
    assert gap.mean == pytest.approx(0.5) and gap.values == (0.5, 0.5)
    change = ex.gap_change(rows, "pre", "scratch", 1, 9)
    assert change.values == (0.25, 0.5) and change.mean == pytest.approx(0.375)
    with pytest.raises(ValueError, match=r"no runs of 'pre' with 5.*\('pre', 1\)"):
        ex.gap(rows, "pre", "scratch", 5)
    with pytest.raises(ValueError, match="different seeds"):
        ex.gap(rows[:-1], "pre", "scratch", 9)


def answers(n_right: int, n: int = 200) -> list[int]:
    return [1] * n_right + [0] * (n - n_right)


def test_show_transfer_checks_lesson_02s_phenomena(capsys):
    from coursekit.claims import ClaimContradicted, PhenomenonNotShown

    right = {("pre", 1): 150, ("scratch", 1): 70, ("pre", 20): 180, ("scratch", 20): 178}
    rows = rows_from({(m, n, s): answers(k + s) for (m, n), k in right.items() for s in range(3)})
    learned, closes = ex.show_transfer(rows, "pre", "scratch", chance=0.1, task="toy")
    assert learned.winner is not None and closes.winner is not None
    assert "toy: with 1 per class, pre beats scratch" in capsys.readouterr().out
    tie = {**right, ("scratch", 1): 150}  # no gap at the smallest size
    with pytest.raises((PhenomenonNotShown, ClaimContradicted)):
        ex.show_transfer(rows_from({(m, n, s): answers(k + s) for (m, n), k in tie.items()
                                    for s in range(3)}), "pre", "scratch", chance=0.1)  # fmt: skip
    at_chance = {**right, ("scratch", 1): 20}  # a baseline that learned nothing is refused
    with pytest.raises((PhenomenonNotShown, ClaimContradicted)):
        ex.show_transfer(rows_from({(m, n, s): answers(k + s) for (m, n), k in at_chance.items()
                                    for s in range(3)}), "pre", "scratch", chance=0.1)  # fmt: skip


def test_data_efficiency_keeps_each_test_answer():
    train, test = word_splits(4, 0), word_splits(3, 1)

    def half_right(tr: Split, te: Split) -> dict:
        guess = te.y.clone()
        guess[::2] = (guess[::2] + 1) % 3
        return {"logits": torch.nn.functional.one_hot(guess, 3).float()}

    (row,) = ex.data_efficiency({"m": half_right}, (train, test), shots=(2,), progress=False)
    assert row["correct"].tolist() == [i % 2 == 1 for i in range(9)]
    assert row["accuracy"] == pytest.approx(row["correct"].mean())


def test_tune_lr_scores_on_validation_and_keeps_the_first_best():
    train, val = word_splits(4, 0), word_splits(3, 1)
    seen = []

    def make(lr: float):
        def method(tr: Split, te: Split) -> dict:
            seen.append(te)
            right = lr in (0.01, 0.1)  # two equally good rates: the first one wins
            guess = te.y if right else (te.y + 1) % 3
            return {"logits": torch.nn.functional.one_hot(guess, 3).float()}

        return method

    best, rows = ex.tune_lr(make, (0.001, 0.01, 0.1), train, val, shots=2)
    assert best == 0.01 and [r["lr"] for r in rows] == [0.001, 0.01, 0.1]
    assert {r["method"] for r in rows} == {"lr=0.001", "lr=0.01", "lr=0.1"}
    assert ex.tune_lr(make, (0.1,), train, val, shots=2, name="m")[1][0]["method"] == "m"
    assert [r["accuracy"] for r in rows] == [0.0, 1.0, 1.0]
    assert all(te is val for te in seen), "candidates are scored on validation data"
    with pytest.raises(ValueError, match="at least one"):
        ex.tune_lr(make, (), train, val, shots=2)
