"""Experiments that answer "how much labelled data, time and compute does each method need?".

`data_efficiency` trains every method on exactly `n` examples per class for each `n` in `shots`
(the same examples for every method), evaluates each on the same untouched test split, and returns
a tidy table: one dict per (method, examples per class, seed). A *method* is any function
`(train_split, test_split) -> {"logits": test logits, ...extras}`; the runner itself computes the
accuracy and macro-F1 from the test logits, so no method can grade its own homework.

Two method factories cover the lessons:
    probe_method(...)    a linear head on cached features (transfer learning, cheap)
    train_method(...)    a whole network trained with `fit` (from scratch, or fully fine-tuned)
and `from_scratch(name, n)` builds a course model's architecture with random weights, the
baseline that shows what pre-training is worth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .datasets import Split, per_class, prepare_images
from .device import pick_device, seed_everything
from .history import History
from .metrics import accuracy, macro_f1
from .params import count_parameters
from .train import fit, predict

__all__ = [
    "ExperimentError",
    "ImageBatches",
    "Method",
    "Standardize",
    "aggregate",
    "data_efficiency",
    "from_scratch",
    "image_batches",
    "linear_probe",
    "make_optimizer",
    "probe_method",
    "recalibrate_batchnorm",
    "subsample_indices",
    "to_markdown",
    "train_method",
]

Method = Callable[[Split, Split], dict[str, Any]]
Pair = tuple[Split, Split]


class ExperimentError(RuntimeError):
    """A method failed inside an experiment; the message names the method, shot and seed."""


# --- the runner ------------------------------------------------------------------------------


def subsample_indices(labels: torch.Tensor, n: int, seed: int = 0) -> np.ndarray:
    """Positions of exactly `n` random examples of every class (as `datasets.per_class`)."""
    index_split = Split(torch.arange(len(labels)), labels)
    return per_class(index_split, n, seed=seed).x.numpy()


def _check_pairs(methods: Mapping[str, Method], splits: Pair | Mapping[str, Pair]) -> dict:
    if not methods:
        raise ValueError("no methods given: pass a dict {name: method}")
    if isinstance(splits, Mapping):
        missing = set(methods) - set(splits)
        if missing:
            raise ValueError(f"no (train, test) splits for method(s) {sorted(missing)}")
        pairs = {name: splits[name] for name in methods}
    else:
        pairs = dict.fromkeys(methods, splits)
    (train0, test0), name0 = next(iter(pairs.values())), next(iter(pairs))
    for name, (train, test) in pairs.items():
        if not (torch.equal(train.y, train0.y) and torch.equal(test.y, test0.y)):
            raise ValueError(
                f"method {name!r} has different train/test labels from {name0!r}: every method "
                "must see the same examples (e.g. images for one, their features for another)"
            )
    return pairs


def data_efficiency(
    methods: Mapping[str, Method],
    splits: Pair | Mapping[str, Pair],
    shots: Sequence[int],
    seeds: Sequence[int] = (0,),
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train and test every method on `n` labelled examples per class, for each n in `shots`.

    `splits` is one `(train, test)` pair for all methods, or a dict `{method: (train, test)}` when
    methods need different inputs for the same examples (images for one, their cached features
    for another); the labels must then agree. For each seed and n, one set of positions is drawn
    (`subsample_indices`) and every method trains on those same examples; every method is tested
    on the whole test split. Returns one row per (method, n, seed):
    `method, shots, seed, n_train, n_test, accuracy, macro_f1, distinct_predictions, seconds`
    (wall time of the call) plus whatever else the method returned (e.g. `train_seconds`).
    """
    pairs = _check_pairs(methods, splits)
    train0, test0 = next(iter(pairs.values()))
    smallest = min(train0.class_counts())
    for n in shots:
        if not 1 <= int(n) <= smallest:
            raise ValueError(
                f"shots={n} examples per class is impossible: the training split's smallest "
                f"class has {smallest} examples (use shots between 1 and {smallest})"
            )
    num_classes = int(max(train0.y.max(), test0.y.max())) + 1
    truth = test0.y.clone()  # graded against this copy, whatever a method does to its split
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for n in shots:
            idx = subsample_indices(train0.y, int(n), seed)
            for name, method in methods.items():
                train, test = pairs[name]
                seed_everything(seed)
                start = time.perf_counter()
                try:
                    out = method(train.subset(idx), test)
                    logits = _check_output(out, len(test), num_classes)
                    if not torch.equal(test.y, truth):
                        raise RuntimeError("it changed the test labels; it must not touch them")
                except Exception as err:
                    raise ExperimentError(
                        f"method {name!r} failed with {n} examples per class (seed {seed}): "
                        f"{type(err).__name__}: {err}"
                    ) from err
                row = {
                    "method": name,
                    "shots": int(n),
                    "seed": seed,
                    "n_train": len(idx),
                    "n_test": len(test),
                    "accuracy": accuracy(logits, truth),
                    "macro_f1": macro_f1(logits, truth, num_classes),
                    # 1 means the model guesses the same class for every test example
                    "distinct_predictions": int(logits.argmax(1).unique().numel()),
                    "seconds": time.perf_counter() - start,
                }
                row.update({k: v for k, v in out.items() if k != "logits"})
                rows.append(row)
                if progress:
                    print(
                        f"{name:>24} | {n:>5}/class | seed {seed} | accuracy "
                        f"{row['accuracy']:.3f} | {row['seconds']:6.1f} s"
                    )
    return rows


def _check_output(out: Any, n_test: int, num_classes: int) -> torch.Tensor:
    if not isinstance(out, Mapping) or "logits" not in out:
        raise TypeError("a method must return a dict with 'logits' for the test split")
    logits = torch.as_tensor(out["logits"]).detach().cpu()
    if logits.ndim != 2 or logits.shape != (n_test, num_classes):
        raise ValueError(
            f"expected test logits of shape ({n_test}, {num_classes}), got {tuple(logits.shape)}"
        )
    return logits


# --- training pieces -------------------------------------------------------------------------


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float = 0.01
) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; the fused kernel where it exists (much faster on CPU
    for big models: one pass over all weights instead of one per tensor)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter of the model is frozen")
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without it
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _epochs_for(
    n: int, batch_size: int, epochs: int, min_steps: int, steps_per_epoch: int | None = None
) -> int:
    """`epochs`, raised so that tiny training sets still get at least `min_steps` updates."""
    steps_per_epoch = max(1, steps_per_epoch or math.ceil(n / batch_size))
    return max(epochs, math.ceil(min_steps / steps_per_epoch))


class Standardize(nn.Module):
    """Fixed `(x - mean) / std` with statistics from the training features (buffers, so they
    are saved with the head but never trained): centred, unit-scale inputs for the head."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp(min=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 30,
    min_steps: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, History]:
    """Train `Standardize -> nn.Linear(D, num_classes)` on cached features with `fit`.

    The features are centred with their training mean and divided by one overall spread.

    The backbone is not involved at all: each step costs one small matrix product, so the head
    can afford many epochs (at least `min_steps` updates, even for 5 examples per class).
    """
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(
            f"expected features N x D and N labels, got {tuple(features.shape)} and {len(labels)}"
        )
    features = features.float()
    # One scale for all features (their overall RMS spread), not one per feature: with 5
    # examples per class some features are constant by chance, and dividing by their ~0 spread
    # would blow up the same feature on test images.
    spread = features.std(0).pow(2).mean().sqrt() if len(features) > 1 else torch.tensor(1.0)
    head = nn.Sequential(
        Standardize(features.mean(0), spread.expand(features.shape[1])),
        nn.Linear(features.shape[1], num_classes),
    )
    n_epochs = _epochs_for(len(features), batch_size, epochs, min_steps)
    history = fit(
        head,
        TensorDataset(features, labels),
        epochs=n_epochs,
        optimizer=make_optimizer(head, lr, weight_decay),
        batch_size=batch_size,
        device=device,
        progress=False,
    )
    return head, history


def probe_method(
    *,
    epochs: int = 30,
    min_steps: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> Method:
    """A method for `data_efficiency` whose splits hold features (x: N x D): a linear probe."""

    def run(train: Split, test: Split) -> dict[str, Any]:
        num_classes = int(max(train.y.max(), test.y.max())) + 1
        head, history = linear_probe(
            train.x,
            train.y,
            num_classes,
            epochs=epochs,
            min_steps=min_steps,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            device=device,
        )
        logits, _ = predict(head, TensorDataset(test.x.float(), test.y), device)
        n_epochs = len(history.epochs)
        return {
            "logits": logits,
            "train_seconds": history.total_seconds,
            "epochs": n_epochs,
            "trainable_params": count_parameters(head).trainable,
            "examples_processed": n_epochs * len(train),
            "backbone_passes": 0,  # fwd+bwd passes through the backbone while training
        }

    return run


class ImageBatches:
    """Re-iterable `(images, labels)` batches prepared on the fly from a uint8 image split.

    Like `datasets.image_dataset` (resize, grayscale -> RGB, the model's normalisation), but one
    batch at a time, so 10,000 images at 224 px never sit in memory as 6 GB of floats. `fit` and
    `predict` take it as they take a DataLoader; with `shuffle` each pass has a new order (drawn
    from torch's global generator, so `seed_everything` makes it reproducible).
    """

    def __init__(
        self,
        split: Split,
        size: int,
        mean: Sequence[float] | float | None,
        std: Sequence[float] | float | None,
        *,
        batch_size: int = 32,
        shuffle: bool = False,
        rgb: bool = True,
    ):
        if not isinstance(split.x, torch.Tensor):
            raise TypeError("ImageBatches needs an image split (x a uint8 tensor)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.split, self.size, self.mean, self.std = split, size, mean, std
        self.batch_size, self.shuffle, self.rgb = batch_size, shuffle, rgb

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch_size)

    def __iter__(self):
        n = len(self.split)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            x = prepare_images(
                self.split.x[idx], self.size, rgb=self.rgb, mean=self.mean, std=self.std
            )
            yield x, self.split.y[idx]


def image_batches(
    size: int,
    mean: Sequence[float] | float | None,
    std: Sequence[float] | float | None,
    *,
    batch_size: int = 32,
    eval_batch_size: int = 256,
) -> Callable[[Split, bool], ImageBatches]:
    """A `to_data` for `train_method`: shuffled training batches, ordered test batches."""

    def to_data(split: Split, train: bool) -> ImageBatches:
        bs = batch_size if train else eval_batch_size
        return ImageBatches(split, size, mean, std, batch_size=bs, shuffle=train)

    return to_data


def _inputs(batch: Any) -> Any:
    if isinstance(batch, dict):
        return {k: v for k, v in batch.items() if k != "labels"}
    return batch[0]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    data: Iterable,
    *,
    max_examples: int = 512,
    device: torch.device | str | None = None,
) -> int:
    """Recompute BatchNorm running statistics from (up to about `max_examples` of) `data`.

    A network trained for only a few steps has running statistics still near their initial
    values (EfficientNet's BatchNorm momentum is 0.01), so in eval mode it would look worse than
    it is. This resets them and averages exactly over the given batches (an iterable of
    `(inputs, labels)`, e.g. `ImageBatches` or a DataLoader). Only the BatchNorm layers run in
    train mode, so dropout and stochastic depth stay off. Returns how many layers were updated.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    device = torch.device(device) if device is not None else pick_device()
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.eval().to(device)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    seen = 0
    try:
        for batch in data:
            x = _inputs(batch)
            model(x.to(device))
            seen += len(x)
            if seen >= max_examples:
                break
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return len(norms)


def train_method(
    make_model: Callable[[], nn.Module],
    to_data: Callable[[Split, bool], Any],
    *,
    epochs: int,
    lr: float,
    min_steps: int = 0,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    recalibrate_bn: bool = True,
    device: torch.device | str | None = None,
    precision: str = "auto",
) -> Method:
    """A method for `data_efficiency` that trains a whole network with `fit`.

    `make_model()` builds a fresh model for every run (e.g. `lambda: from_scratch(name, 10)`, or
    `lambda: load_pretrained(name, 10)` to fine-tune every layer); `to_data(split, train)` turns
    a split into what the model eats: `image_batches(size, mean, std)` for images, or e.g.
    `lambda split, train: text_dataset(split, tokenizer, 64)` (a Dataset is batched with
    `batch_size`, shuffled for training). Models with BatchNorm get their running statistics
    recalibrated on the training examples before testing (`recalibrate_bn`).
    """
    prepared: dict[int, tuple[Split, Any]] = {}

    def test_data(split: Split) -> Any:  # prepared once, not once per shot
        key = id(split)
        if key not in prepared or prepared[key][0] is not split:
            prepared[key] = (split, to_data(split, False))
        return prepared[key][1]

    def run(train: Split, test: Split) -> dict[str, Any]:
        model = make_model()
        train_data = to_data(train, True)
        steps_per_epoch = len(train_data) if isinstance(train_data, ImageBatches) else None
        n_epochs = _epochs_for(len(train), batch_size, epochs, min_steps, steps_per_epoch)
        history = fit(
            model,
            train_data,
            epochs=n_epochs,
            optimizer=make_optimizer(model, lr, weight_decay),
            batch_size=batch_size,
            device=device,
            precision=precision,
            progress=False,
        )
        if recalibrate_bn:
            batches = (
                train_data
                if not isinstance(train_data, Dataset)
                else DataLoader(train_data, batch_size=batch_size)
            )
            recalibrate_batchnorm(model, batches, device=device)
        logits, _ = predict(model, test_data(test), device, precision)
        return {
            "logits": logits,
            "train_seconds": history.total_seconds,
            "epochs": n_epochs,
            "trainable_params": count_parameters(model).trainable,
            "examples_processed": n_epochs * len(train),
            "backbone_passes": n_epochs * len(train),  # forward + backward, whole network
        }

    return run


def from_scratch(name: str, num_classes: int) -> nn.Module:
    """A course model's *architecture* with random weights and a `num_classes` head.

    This is the baseline, clearly not pre-trained: "efficientnet_lite0" is `EfficientNetLite0`
    freshly initialised; "minilm" is `AutoModelForSequenceClassification.from_config` on the
    packaged all-MiniLM-L6-v2 config (same layers and sizes, random weights). The model carries
    `model.coursekit_init = "random"` so plots and tables can label it.
    """
    if name == "efficientnet_lite0":
        from .models import EfficientNetLite0

        model: nn.Module = EfficientNetLite0(num_classes=num_classes)
    elif name == "minilm":
        from transformers import AutoConfig, AutoModelForSequenceClassification

        from .models.text import minilm_dir

        config = AutoConfig.from_pretrained(minilm_dir(), num_labels=num_classes)
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        raise ValueError(
            f"from_scratch knows 'efficientnet_lite0' and 'minilm', not {name!r}; for another "
            "architecture build it with random weights yourself"
        )
    model.coursekit_init = "random"
    return model.train()


# --- tables ----------------------------------------------------------------------------------


def aggregate(
    rows: Sequence[Mapping[str, Any]], by: Sequence[str] = ("method", "shots")
) -> list[dict[str, Any]]:
    """Average numeric columns over the rows sharing `by` (e.g. over seeds); adds `runs` and, for
    accuracy, `accuracy_std`. Keeps the order in which groups first appear."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        agg: dict[str, Any] = dict(zip(by, key, strict=True))
        for col in members[0]:
            values = [m[col] for m in members if col in m]
            if col in by or col == "seed":
                continue
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                agg[col] = float(np.mean(values))
        acc = [m["accuracy"] for m in members if "accuracy" in m]
        if acc:
            agg["accuracy_std"] = float(np.std(acc))
        agg["runs"] = len(members)
        out.append(agg)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of `rows` (all columns of the first row unless `columns` is given)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)
