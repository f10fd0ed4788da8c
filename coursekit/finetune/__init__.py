"""Your own data to a model that runs anywhere: lesson 07 in one package.

    load_data(source)            an image folder (one sub-folder per class), a CSV/TSV/JSONL file
                                 of texts and labels, or a datasets.Dataset; checked and split
    read_image(path, size)       one image as people see it (EXIF orientation, 16 bits scaled)
    data_report(data)            counts, imbalance, image sizes / text lengths, duplicates, skipped
    finetune(data, out_dir)      every choice printed; fit with warm-up + cosine, class weights,
                                 checkpoints; tested with intervals; exported; report.md written
    Predictor(out_dir)           labels and probabilities from the exported model

The modules, in the order of a run: data (with images, pixels, tables, columns), report, build,
run, evaluate, export, predict.
"""

from .build import STRATEGIES, warmup_cosine
from .data import load_data
from .evaluate import (
    bootstrap_interval,
    most_confidently_wrong,
    plot_wrong,
    test_metrics,
)
from .export import ONNX_TOLERANCE
from .images import read_image
from .predict import Predictions, Predictor
from .report import data_report
from .run import FinetuneResult, finetune
from .userdata import DataError, UserData

__all__ = [
    "ONNX_TOLERANCE",
    "STRATEGIES",
    "DataError",
    "FinetuneResult",
    "Predictions",
    "Predictor",
    "UserData",
    "bootstrap_interval",
    "data_report",
    "finetune",
    "load_data",
    "most_confidently_wrong",
    "plot_wrong",
    "read_image",
    "test_metrics",
    "warmup_cosine",
]
