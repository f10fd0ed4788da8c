"""From-scratch baselines that learn: what the labelled examples alone can teach a model.

Lesson 02 asks what pre-training is worth. The honest answer compares the pre-trained network
with the best model one can train *without* pre-training on the same examples: a **fair**
baseline, with its own tuned learning rate and enough optimizer steps to converge, that visibly
learns (accuracy well above chance, every class predicted). Training the pre-trained network's
own architecture from random weights is no such baseline: EfficientNet-Lite0's 3.4 million or
MiniLM's 22.7 million parameters cannot be fitted from 50 examples in a few CPU seconds (a
from-scratch MiniLM trained for 20-32 steps predicted one topic for every article). Two small
models that are fitted in seconds stand in:

    SmallCNN              three convolution blocks (24,170 weights at width 16, 10 classes) for
                          small gray images at their own size: 28 x 28 Fashion-MNIST
    cnn_method            a `data_efficiency` method: a fresh SmallCNN per run, trained by `fit`
                          (`methods.train_method`) with a cosine learning-rate schedule
    Tfidf                 a bag of words: how often each token occurs in a text, weighted by how
                          rare it is in the training texts (TF-IDF), one unit-length row per text
    bag_of_words_method   a `data_efficiency` method: TF-IDF of the same tokens MiniLM reads,
                          then a linear head from scratch (`probes.linear_probe`): the classical
                          text classifier, which must learn every word's meaning from the labels

Both reach well above chance with 5 examples per class, and keep improving with more data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..datasets import Split, tokenize
from ..training.evaluation import predict
from .methods import Method, image_batches, run_record, train_method
from .probes import linear_probe

__all__ = ["SmallCNN", "Tfidf", "bag_of_words_method", "cnn_method"]


class SmallCNN(nn.Sequential):
    """conv3x3 -> BatchNorm -> ReLU blocks of `width`, 2x`width` and 4x`width` channels (max-pooled
    after the first two), global average pooling and a linear head: 24,170 parameters at
    width 16. Sized for 28 x 28 images; any size works (the pooling is global)."""

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16) -> None:
        widths = (in_channels, width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:], strict=False)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            layers.append(nn.MaxPool2d(2) if i < 2 else nn.AdaptiveAvgPool2d(1))
        super().__init__(*layers, nn.Flatten(), nn.Linear(widths[-1], num_classes))
        self.coursekit_init = "random"


def cnn_method(
    num_classes: int,
    *,
    lr: float,
    epochs: int,
    min_steps: int,
    batch_size: int = 32,
    width: int = 16,
    epoch_steps: int = 16,
    val: Split | None = None,
    device: torch.device | str | None = None,
) -> Method:
    """A method for `data_efficiency` on gray image splits (uint8 N x H x W): a fresh `SmallCNN`
    per run, trained at the images' own size with `fit`, AdamW at `lr` with a cosine schedule,
    for `epochs` (at least `min_steps` optimizer steps). Pixels are scaled with the mean and
    spread of the run's own training images. `val`: an image split, evaluated after every epoch
    (learning curves). A tiny training set is repeated (reshuffled every pass) so that an epoch
    has about `epoch_steps` steps: 50 images would otherwise make 75 two-step epochs, each with
    a validation pass. `epochs` counts passes over the original examples."""

    def run(train: Split, test: Split) -> dict[str, Any]:
        pixels = train.x.float() / 255
        to_data = image_batches(None, float(pixels.mean()), float(pixels.std()), rgb=False)
        copies = max(1, epoch_steps * batch_size // len(train))
        method = train_method(lambda: SmallCNN(num_classes, width=width), to_data,
                              epochs=math.ceil(epochs / copies), lr=lr, min_steps=min_steps,
                              batch_size=batch_size, schedule="cosine", val=val,
                              device=device)  # fmt: skip
        out = method(Split(train.x.repeat(copies, 1, 1), train.y.repeat(copies)), test)
        out["examples_processed"] //= copies  # passes over the original examples
        return out

    return run


class Tfidf:
    """TF-IDF features of token ids: `fit` on the training texts' tokens, `transform` any.

    The vocabulary is the set of tokens that occur in the training texts (special tokens such as
    [CLS], [SEP] and padding excluded); a token never seen in training is ignored. A text's
    feature for token t is log(1 + count) x idf(t), with idf(t) = ln((1 + N) / (1 + df(t))) + 1
    over the N training texts (df: how many contain t; scikit-learn's smoothed idf), and each row
    is scaled to unit length, so long and short texts compare.
    """

    def __init__(self, ignore_ids: Sequence[int] = ()) -> None:
        self.ignore_ids = [int(i) for i in ignore_ids]
        self.vocab: torch.Tensor | None = None  # token id of each feature column
        self.idf: torch.Tensor | None = None

    def _counts(self, tokens: dict[str, torch.Tensor], lookup: torch.Tensor) -> torch.Tensor:
        ids, mask = tokens["input_ids"], tokens["attention_mask"].bool()
        column = lookup[ids.clamp(0, len(lookup) - 1)]
        column[~mask | (ids >= len(lookup))] = -1
        counts = torch.zeros(len(ids), len(self.vocab) + 1)  # last column: unknown tokens
        counts.scatter_add_(1, torch.where(column < 0, len(self.vocab), column),
                            torch.ones(column.shape))  # fmt: skip
        return counts[:, :-1]

    def fit(self, tokens: dict[str, torch.Tensor]) -> Tfidf:
        """Learn the vocabulary and the idf weights from training tokens (`datasets.tokenize`)."""
        seen = tokens["input_ids"][tokens["attention_mask"].bool()].unique()
        self.vocab = seen[~torch.isin(seen, torch.tensor(self.ignore_ids, dtype=seen.dtype))]
        if len(self.vocab) == 0:
            raise ValueError("the training texts have no tokens besides special ones")
        self._lookup = torch.full((int(seen.max()) + 1,), -1, dtype=torch.long)
        self._lookup[self.vocab] = torch.arange(len(self.vocab))
        df = (self._counts(tokens, self._lookup) > 0).float().sum(0)
        n = len(tokens["input_ids"])
        self.idf = torch.log((1 + n) / (1 + df)) + 1
        return self

    def transform(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """N x vocabulary TF-IDF rows of unit length (all zero for a text of unknown tokens)."""
        if self.idf is None:
            raise RuntimeError("call fit(training tokens) before transform")
        tf = torch.log1p(self._counts(tokens, self._lookup))
        return nn.functional.normalize(tf * self.idf, dim=1)


def bag_of_words_method(
    tokenizer: Any,
    max_length: int,
    *,
    lr: float,
    epochs: int = 30,
    min_steps: int = 100,
    batch_size: int = 64,
    val: Split | None = None,
    device: torch.device | str | None = None,
) -> Method:
    """A method for `data_efficiency` on text splits (x: list of str): the first `max_length`
    tokens of each text (the same tokens MiniLM reads), as TF-IDF over the run's training texts,
    and a linear head trained from scratch on them (`linear_probe`, AdamW at `lr`).
    `val`: a text split for learning curves."""

    def run(train: Split, test: Split) -> dict[str, Any]:
        tfidf, tokens = Tfidf(tokenizer.all_special_ids), tokenize(train.x, tokenizer, max_length)
        x_train = tfidf.fit(tokens).transform(tokens)
        x_val = None if val is None else tfidf.transform(tokenize(val.x, tokenizer, max_length))
        num_classes = int(max(train.y.max(), test.y.max())) + 1
        head, history = linear_probe(x_train, train.y, num_classes, epochs=epochs,
                                     min_steps=min_steps, lr=lr, batch_size=batch_size,
                                     val=None if val is None else (x_val, val.y),
                                     device=device)  # fmt: skip
        x_test = tfidf.transform(tokenize(test.x, tokenizer, max_length))
        logits, _ = predict(head, TensorDataset(x_test, test.y), device)
        return run_record(logits, history, head, len(train), backbone_passes=0)

    return run
