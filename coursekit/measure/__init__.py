"""Measurements: what a run costs, what it will cost, and the settings found by trying.

A lesson compares strategies by what they cost as well as by what they reach. Two files keep the
measured apart from the predicted:

    measured.py   measured by running: seconds per step, optimizer memory, inference latency,
                  file sizes; counted: multiply-adds, FLOPs, model FLOPs utilization
                  (lessons 01, 05, 07, 08: `ck.measure.measure_step`, `ck.measure.file_size_mb`)
    predicted.py  predicted before running, from counted work: a notebook's time and GPU memory
                  on a given GPU (`ck.measure.announce("05")` at the top of every lesson)
    lr_finder.py  the learning-rate range test (lesson 04: `lr_find`, `plot_lr_find`)
    batch_size.py the largest batch size that fits in memory (try one, halve it on out-of-memory)

Whether a measured difference is real is the business of `coursekit.claims`.
"""

from .batch_size import find_batch_size, free_memory, is_out_of_memory, training_step_probe
from .lr_finder import LRFindResult, lr_find, plot_lr_find, suggest_lr
from .measured import (
    StepCost,
    count_multiply_adds,
    file_size_mb,
    inference_latency,
    measure_step,
    model_flops_utilization,
    optimizer_state_bytes,
    peak_flops,
    training_flops,
)
from .predicted import (
    BANDWIDTH_EFFICIENCY,
    BATCH_OVERHEAD_S,
    FLOP_EFFICIENCY,
    GPUS,
    ExampleCost,
    Work,
    announce,
    estimate_seconds,
    markdown_table,
    model_cost,
    notebook_gpu_gb,
    notebook_seconds,
    notebook_work,
    peak_gpu_bytes,
    per_example_cost,
    roofline_seconds,
)

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "BATCH_OVERHEAD_S",
    "ExampleCost",
    "FLOP_EFFICIENCY",
    "GPUS",
    "LRFindResult",
    "StepCost",
    "Work",
    "announce",
    "count_multiply_adds",
    "estimate_seconds",
    "file_size_mb",
    "find_batch_size",
    "free_memory",
    "inference_latency",
    "is_out_of_memory",
    "lr_find",
    "markdown_table",
    "measure_step",
    "model_cost",
    "model_flops_utilization",
    "notebook_gpu_gb",
    "notebook_seconds",
    "notebook_work",
    "optimizer_state_bytes",
    "peak_flops",
    "peak_gpu_bytes",
    "per_example_cost",
    "plot_lr_find",
    "roofline_seconds",
    "suggest_lr",
    "training_flops",
    "training_step_probe",
]
