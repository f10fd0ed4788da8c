"""Experiment methods that train a whole network: from scratch (the baseline) or fully fine-tuned.

`train_method(make_model, to_data, ...)` is a method for `experiments.data_efficiency` that builds
a fresh model for every run and trains every layer with `fit`; `from_scratch(name, n)` builds a
course model's architecture with random weights (clearly labelled: the baseline that shows what
pre-training is worth). `ImageBatches` / `image_batches` prepare images one batch at a time, and
`recalibrate_batchnorm` fixes BatchNorm statistics after a short run. `make_optimizer` (AdamW
over the trainable parameters) is shared with the linear probe (`probes.py`) and `strategies.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .datasets import Split, prepare_images
from .device import pick_device
from .history import History
from .params import count_parameters
from .train import fit, predict

if TYPE_CHECKING:
    from .experiments import Method

__all__ = [
    "ImageBatches",
    "from_scratch",
    "image_batches",
    "make_optimizer",
    "recalibrate_batchnorm",
    "train_method",
]


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


def run_record(
    logits: torch.Tensor, history: History, trained: nn.Module, n_train: int, backbone_passes: int
) -> dict[str, Any]:
    """What one run of a `data_efficiency` method reports (the runner reads these keys)."""
    n_epochs = len(history.epochs)
    return {
        "logits": logits,
        "train_seconds": history.total_seconds,
        "epochs": n_epochs,
        "optimizer_steps": len(history.steps),  # compare methods at equal steps (or say why not)
        "trainable_params": count_parameters(trained).trainable,
        "examples_processed": n_epochs * n_train,
        "backbone_passes": backbone_passes,  # fwd+bwd passes through the backbone while training
    }


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
        # every training pass is a forward + backward through the whole network
        return run_record(logits, history, model, len(train), backbone_passes=n_epochs * len(train))

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
