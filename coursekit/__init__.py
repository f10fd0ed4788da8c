"""coursekit: the tested toolkit behind the fine-tuning course.

Notebooks use this short list; each name lives in a small module named for its concept.
Every lesson (00-06) imports it as `ck`.
"""

from . import (
    claims,
    colab,
    cost,
    datasets,
    drive,
    embeddings,
    estimate,
    exercises,
    experiments,
    features,
    forgetting,
    freezing,
    full_training,
    heads,
    lora,
    lr_finder,
    models,
    probes,
    strategies,
    training,
)
from .assets import AssetCorruptError, AssetMissingError
from .config import get_mode, set_mode, settings, show_mode
from .device import (
    describe_hardware,
    on_colab,
    peak_memory,
    pick_device,
    precision_policy,
    seed_everything,
    warn_if_no_gpu,
)
from .doctor import doctor
from .finetune import Predictor, finetune
from .models import load_pretrained, load_tokenizer
from .params import count_parameters, parameter_table
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


__all__ = [
    "AssetCorruptError",
    "AssetMissingError",
    "Callback",
    "CheckpointError",
    "History",
    "accuracy",
    "claims",
    "colab",
    "confusion_matrix",
    "cost",
    "count_parameters",
    "datasets",
    "drive",
    "describe_hardware",
    "embeddings",
    "estimate",
    "exercises",
    "doctor",
    "evaluate",
    "experiments",
    "features",
    "finetune",
    "fit",
    "forgetting",
    "freezing",
    "full_training",
    "get_mode",
    "heads",
    "load_checkpoint",
    "lora",
    "lr_finder",
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
    "probes",
    "save_checkpoint",
    "save_weights",
    "seed_everything",
    "set_mode",
    "settings",
    "show_mode",
    "strategies",
    "training",
    "warn_if_no_gpu",
]
