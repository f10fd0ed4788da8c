"""coursekit: the tested toolkit behind the fine-tuning course.

Notebooks use this short list; each name lives in a small module named for its concept.
Every lesson (00-08) imports it as `ck`.

Two conventions hold across the package:
- A function that edits a model in place (`freezing.freeze`, `heads.replace_head`,
  `lora.add_lora`, `lora.merge_lora`, `freezing.recalibrate_batchnorm`, ...) returns the names of
  what it changed, a `list[str]`; `model.get_submodule(name)` gives a new layer.
- A function that builds or loads a model (`load_pretrained`, `heads.text_classifier`,
  `lora.load_adapter`) returns the model.
"""

import sys

from . import (
    claims,
    datasets,
    embeddings,
    exercises,
    experiments,
    features,
    freezing,
    heads,
    lora,
    measure,
    models,
    moved,
    runtime,
    strategies,
    training,
)
from .doctor import doctor
from .finetune import Predictor, finetune
from .models import load_pretrained, load_tokenizer
from .params import count_parameters, parameter_table
from .runtime import (
    AssetCorruptError,
    AssetMissingError,
    describe_hardware,
    get_mode,
    on_colab,
    peak_memory,
    pick_device,
    precision_policy,
    seed_everything,
    set_mode,
    settings,
    show_mode,
    warn_if_no_gpu,
)
from .training import (
    Callback,
    CheckpointError,
    History,
    accuracy,
    confusion_matrix,
    evaluate,
    fit,
    load_checkpoint,
    load_weights,
    macro_f1,
    optim,  # `ck.optim.make_optimizer` (lesson 04); the module is coursekit/training/optim.py
    predict,
    save_checkpoint,
    save_weights,
)

__version__ = "0.1.0"

moved.install(sys.modules[__name__])  # ck.cost, coursekit.device...: old names, warned


__all__ = [
    "AssetCorruptError",
    "AssetMissingError",
    "Callback",
    "CheckpointError",
    "History",
    "accuracy",
    "claims",
    "confusion_matrix",
    "count_parameters",
    "datasets",
    "describe_hardware",
    "embeddings",
    "exercises",
    "doctor",
    "evaluate",
    "experiments",
    "features",
    "finetune",
    "fit",
    "freezing",
    "get_mode",
    "heads",
    "load_checkpoint",
    "lora",
    "measure",
    "load_pretrained",
    "load_tokenizer",
    "load_weights",
    "macro_f1",
    "models",
    "optim",
    "on_colab",
    "parameter_table",
    "peak_memory",
    "pick_device",
    "precision_policy",
    "predict",
    "Predictor",
    "save_checkpoint",
    "save_weights",
    "seed_everything",
    "set_mode",
    "settings",
    "show_mode",
    "strategies",
    "runtime",
    "training",
    "warn_if_no_gpu",
]
