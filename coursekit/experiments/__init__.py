"""Experiments: trained models compared on the same data, over several seeds.

A lesson's claim ("pre-trained features beat a fair from-scratch model at small data", "LoRA
keeps more of what the encoder knew") is the result of an experiment: several *methods* trained
on the same examples and scored on the same untouched test split. This package holds those
experiments; the statistics that read them live in `coursekit.claims`, the fine-tuning strategy
sweep of lessons 05-06 in `coursekit.strategies`.

    data_efficiency.py  the runner: every method at n examples per class, one tidy row per run
                        (`data_efficiency`, `aggregate`, `to_markdown`, `tune_lr`; lessons 02, 03)
    methods.py          what a method is (`Method`, `run_record`), a whole network trained with
                        `fit` (`train_method`), a course model with random weights (`from_scratch`)
    probes.py           the linear probe on cached features (`linear_probe`, `choose_probe_lr`)
    baselines.py        fair from-scratch baselines: a small CNN, a bag of words + linear head
    gaps.py             the pre-trained vs from-scratch gap read over seeds (`show_transfer`)
    forgetting.py       what fine-tuning cost: held-out ability, embedding drift (lesson 06)
"""

from .baselines import SmallCNN, Tfidf, bag_of_words_method, cnn_method
from .data_efficiency import (
    ExperimentError,
    aggregate,
    data_efficiency,
    subsample_indices,
    to_markdown,
    tune_lr,
)
from .forgetting import (
    ForgettingProbe,
    encoder_of,
    measure_forgetting,
    sentence_embeddings,
    similarity_drift,
    without_lora,
)
from .gaps import gap, gap_change, gap_sentence, mean_accuracy, seed_table, show_transfer
from .methods import (
    Method,
    cosine_schedule,
    epochs_for,
    from_scratch,
    image_batches,
    optimizer_steps,
    run_record,
    train_method,
)
from .probes import Standardize, choose_probe_lr, linear_probe, probe_method, standardized_head

__all__ = [
    "ExperimentError",
    "ForgettingProbe",
    "Method",
    "SmallCNN",
    "Standardize",
    "Tfidf",
    "aggregate",
    "bag_of_words_method",
    "choose_probe_lr",
    "cnn_method",
    "cosine_schedule",
    "data_efficiency",
    "encoder_of",
    "epochs_for",
    "from_scratch",
    "gap",
    "gap_change",
    "gap_sentence",
    "image_batches",
    "linear_probe",
    "mean_accuracy",
    "measure_forgetting",
    "optimizer_steps",
    "probe_method",
    "run_record",
    "seed_table",
    "sentence_embeddings",
    "show_transfer",
    "similarity_drift",
    "standardized_head",
    "subsample_indices",
    "to_markdown",
    "train_method",
    "tune_lr",
    "without_lora",
]
