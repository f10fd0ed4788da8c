"""Data-efficiency methods (lesson 02): what a method is, what its run reports, and the method
that trains a whole network, from scratch (the baseline) or fully fine-tuned.

A `Method` maps (train split, test split) to the test logits and what the run cost; `run_record`
is what every method reports, `epochs_for` / `optimizer_steps` keep methods at comparable steps
(the linear probe in `probes.py` uses them too). `train_method(make_model, to_data, ...)` is a
method for `experiments.data_efficiency` that builds a fresh model for every run and trains every
layer with `fit`; `from_scratch(name, n)` builds a course model's architecture with random
weights (clearly labelled: the baseline that shows what pre-training is worth); `image_batches`
gives images as `datasets.ImageDataset` (uint8, prepared one batch at a time).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..datasets import ImageDataset, Split, image_dataset
from ..freezing import recalibrate_batchnorm
from ..params import count_parameters
from ..runtime.device import resolve_device
from ..training.batches import as_loader
from ..training.evaluation import predict
from ..training.history import History
from ..training.loop import fit
from ..training.optim import make_optimizer

# A data-efficiency method: (train split, test split) -> {"logits": test logits, ...extras}.
Method = Callable[[Split, Split], dict[str, Any]]
SCHEDULES = (None, "cosine")

__all__ = [
    "Method",
    "cosine_schedule",
    "epochs_for",
    "from_scratch",
    "image_batches",
    "optimizer_steps",
    "run_record",
    "train_method",
]


def epochs_for(
    n: int, batch_size: int, epochs: int, min_steps: int, steps_per_epoch: int | None = None
) -> int:
    """`epochs`, raised so that tiny training sets still get at least `min_steps` updates
    (`steps_per_epoch` defaults to ceil(n / batch_size))."""
    steps_per_epoch = max(1, steps_per_epoch or math.ceil(n / batch_size))
    return max(epochs, math.ceil(min_steps / steps_per_epoch))


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int) -> Any:
    """The learning rate from its starting value down to 0 along a half cosine over `steps`
    optimizer steps (stepped once per step, `fit(scheduler_interval="step")`)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))


def image_batches(
    size: int | None,
    mean: Sequence[float] | float | None,
    std: Sequence[float] | float | None,
    *,
    batch_size: int | None = None,
    eval_batch_size: int | None = None,
    rgb: bool = True,
) -> Callable[[Split, bool], ImageDataset]:
    """A `to_data` for `train_method`: each split as an `ImageDataset` (uint8, prepared per batch,
    on the GPU when training runs there; `rgb=False` keeps one gray channel), batched by
    `train_method`'s `batch_size` (training, shuffled) and `predict`'s 256 (testing, in order).

    `batch_size` / `eval_batch_size` are deprecated (one release): the batch size is
    `train_method`'s, so the two cannot disagree."""
    if batch_size is not None or eval_batch_size is not None:
        warnings.warn(
            "image_batches(batch_size=...) is deprecated and ignored: train_method's batch_size "
            "batches the images (predict's 256 the test images); drop the argument.",
            DeprecationWarning,
            stacklevel=2,
        )

    def to_data(split: Split, train: bool) -> ImageDataset:
        return image_dataset(split, size, rgb=rgb, mean=mean, std=std)

    return to_data


def optimizer_steps(batches: int, batches_per_epoch: int, grad_accum_steps: int = 1) -> int:
    """Optimizer steps in `batches` training batches under gradient accumulation: one step every
    `grad_accum_steps` batches, and one for an epoch's last, shorter group."""
    per_epoch = math.ceil(batches_per_epoch / grad_accum_steps)
    full_epochs, rest = divmod(batches, batches_per_epoch)
    return full_epochs * per_epoch + math.ceil(rest / grad_accum_steps)


def run_record(
    logits: torch.Tensor,
    history: History,
    trained: nn.Module,
    n_train: int,
    backbone_passes: int,
    steps: int | None = None,
) -> dict[str, Any]:
    """What one run of a `data_efficiency` method reports (the runner reads these keys).
    `steps`: optimizer steps, when not one per recorded batch (gradient accumulation).
    `history` is the run's `History`: its learning curves, to plot (`viz.plot_learning_curves`)."""
    n_epochs = len(history.epochs)
    return {
        "logits": logits,
        "history": history,
        "train_seconds": history.total_seconds,
        "epochs": n_epochs,
        # compare methods at equal steps (or say why not)
        "optimizer_steps": len(history.steps) if steps is None else steps,
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
    grad_accum_steps: int = 1,
    weight_decay: float = 0.01,
    recalibrate_bn: bool = True,
    schedule: str | None = None,
    val: Split | None = None,
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
    `grad_accum_steps`: one optimizer step every that many batches, so a step sees
    `batch_size x grad_accum_steps` examples while only `batch_size` are in memory at once (the
    same steps as a method with the larger batch, a fraction of the activation memory).
    `schedule="cosine"` lowers the learning rate from `lr` to 0 along a cosine over the run's
    optimizer steps (a from-scratch network ends on small steps, so its last weights are not
    a noisy snapshot). `val`: a split (same kind as the training split) evaluated after every
    epoch, so the run's `history` holds validation learning curves.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    prepared: dict[int, tuple[Split, Any]] = {}

    def test_data(split: Split) -> Any:  # prepared once, not once per shot
        key = id(split)
        if key not in prepared or prepared[key][0] is not split:
            prepared[key] = (split, to_data(split, False))
        return prepared[key][1]

    def run(train: Split, test: Split) -> dict[str, Any]:
        model = make_model()
        where = resolve_device(device)
        train_data = as_loader(to_data(train, True), batch_size, True, where, "the training data")
        n_batches = len(train_data)
        steps_per_epoch = math.ceil(n_batches / grad_accum_steps)
        n_epochs = epochs_for(len(train), batch_size, epochs, min_steps, steps_per_epoch)
        optimizer = make_optimizer(model, lr, weight_decay=weight_decay, device=device)
        history = fit(
            model,
            train_data,
            None if val is None else test_data(val),
            epochs=n_epochs,
            optimizer=optimizer,
            scheduler=cosine_schedule(optimizer, n_epochs * steps_per_epoch) if schedule else None,
            batch_size=batch_size,
            grad_accum_steps=grad_accum_steps,
            device=device,
            precision=precision,
            progress=False,
        )
        if recalibrate_bn:  # running statistics averaged over one pass (any order)
            recalibrate_batchnorm(model, train_data, device=device)
        logits, _ = predict(model, test_data(test), device, precision)
        # every training pass is a forward + backward through the whole network
        steps = optimizer_steps(len(history.steps), n_batches, grad_accum_steps)
        passes = n_epochs * len(train)
        return run_record(logits, history, model, len(train), backbone_passes=passes, steps=steps)

    return run


def from_scratch(name: str, num_classes: int) -> nn.Module:
    """A course model's *architecture* with random weights and a `num_classes` head.

    This is the baseline, clearly not pre-trained: "efficientnet_lite0" is `EfficientNetLite0`
    freshly initialised; "minilm" is `AutoModelForSequenceClassification.from_config` on the
    packaged all-MiniLM-L6-v2 config (same layers and sizes, random weights). The model carries
    `model.coursekit_init = "random"` so plots and tables can label it.
    """
    if name == "efficientnet_lite0":
        from ..models import EfficientNetLite0

        model: nn.Module = EfficientNetLite0(num_classes=num_classes)
    elif name == "minilm":
        from transformers import AutoConfig, AutoModelForSequenceClassification

        from ..models.text import minilm_dir

        config = AutoConfig.from_pretrained(minilm_dir(), num_labels=num_classes)
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        raise ValueError(
            f"from_scratch knows 'efficientnet_lite0' and 'minilm', not {name!r}; for another "
            "architecture build it with random weights yourself"
        )
    model.coursekit_init = "random"
    return model.train()
