"""Training: `fit` and everything it calls, one concept per module (every lesson that trains).

Follow one training run through the files in this order:

    loop.py         `fit`: the driver. Prepare, then per epoch: train, validate, record, checkpoint
    fit_config.py   `FitConfig`: every setting of a run, typed and checked (what `fit` builds)
    backends.py     one process, or several through Accelerate: the few things that differ
    step.py         `train_step`: forward, loss, backward, optimizer step (also lr_find, cost)
    batches.py      what a batch is and how it meets a model (images: `datasets.ImageDataset`)
    evaluation.py   `predict` (every logit of a dataset) and `evaluate` (loss and metrics)
    by_length.py    text scored in batches of similar length, cut after their last token
    metrics.py      accuracy, macro-F1, confusion matrix
    optim.py        `make_optimizer`: the one AdamW every run trains with
    callbacks.py    `Callback` and `FitState` (hooking into a run), early stopping, best weights
    history.py      `History`: what a run leaves behind
    checkpoint.py   safetensors checkpoints, atomic, loaded without pickle
    resume.py       what a run saves every epoch and how it picks up where it stopped
    distributed.py  Accelerate helpers: launched? which process prints? gather, reduce
    limits.py       the full-mode dry run: a step cap installed from the outside, not a switch

`fit` never imports plotting or experiments: plots are callbacks (`viz.LivePlot`), experiments
call `fit`. Notebooks use `ck.fit`, `ck.evaluate`, `ck.predict` and the names below.
"""

from . import distributed
from .backends import AccelerateBackend, Backend, SingleProcess
from .batches import (
    ImageBatches,
    as_loader,
    check_labels,
    describe_inputs,
    forward_logits,
    split_batch,
    to_device,
)
from .callbacks import BestWeights, Callback, EarlyStopping, FitState, StepLimit
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    read_checkpoint_state,
    save_checkpoint,
    save_weights,
)
from .evaluation import evaluate, predict
from .fit_config import FitConfig
from .history import History
from .limits import DryRun, active_dry_run, dry_run, install_dry_run
from .loop import fit
from .metrics import METRICS, accuracy, confusion_matrix, macro_f1
from .optim import make_optimizer, optimizer_settings, trainable_parameters
from .step import LossFn, StepSetup, train_step

__all__ = [
    "METRICS",
    "AccelerateBackend",
    "Backend",
    "BestWeights",
    "Callback",
    "CheckpointError",
    "DryRun",
    "EarlyStopping",
    "FitConfig",
    "FitState",
    "History",
    "ImageBatches",
    "LossFn",
    "SingleProcess",
    "StepLimit",
    "StepSetup",
    "accuracy",
    "active_dry_run",
    "as_loader",
    "check_labels",
    "confusion_matrix",
    "describe_inputs",
    "distributed",
    "dry_run",
    "evaluate",
    "fit",
    "forward_logits",
    "install_dry_run",
    "load_checkpoint",
    "load_weights",
    "macro_f1",
    "make_optimizer",
    "optimizer_settings",
    "predict",
    "read_checkpoint_state",
    "save_checkpoint",
    "save_weights",
    "split_batch",
    "to_device",
    "train_step",
    "trainable_parameters",
]
