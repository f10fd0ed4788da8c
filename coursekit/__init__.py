"""coursekit: the tested toolkit behind the fine-tuning course.

Notebooks use this short list; each name lives in a small module named for its concept.
"""

from . import (
    colab,
    cost,
    datasets,
    embeddings,
    estimate,
    exercises,
    experiments,
    feature_cache,
    features,
    forgetting,
    freezing,
    full_training,
    heads,
    layerwise,
    lora,
    lora_adapters,
    lr_finder,
    models,
    probes,
    strategies,
)
from .assets import AssetCorruptError, AssetMissingError
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .checkup import doctor
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
from .history import Callback, History
from .metrics import accuracy, confusion_matrix, macro_f1
from .models import load_pretrained, load_tokenizer
from .params import count_parameters, parameter_table
from .train import evaluate, fit, predict

__version__ = "0.1.0"


__all__ = [
    "AssetCorruptError",
    "AssetMissingError",
    "Callback",
    "CheckpointError",
    "History",
    "accuracy",
    "colab",
    "confusion_matrix",
    "cost",
    "count_parameters",
    "datasets",
    "describe_hardware",
    "embeddings",
    "estimate",
    "exercises",
    "doctor",
    "evaluate",
    "experiments",
    "feature_cache",
    "features",
    "fit",
    "forgetting",
    "freezing",
    "full_training",
    "get_mode",
    "heads",
    "layerwise",
    "load_checkpoint",
    "lora",
    "lora_adapters",
    "lr_finder",
    "load_pretrained",
    "load_tokenizer",
    "load_weights",
    "macro_f1",
    "models",
    "on_colab",
    "parameter_table",
    "peak_memory",
    "pick_device",
    "precision_policy",
    "predict",
    "probes",
    "save_checkpoint",
    "save_weights",
    "seed_everything",
    "set_mode",
    "settings",
    "show_mode",
    "strategies",
    "warn_if_no_gpu",
]
