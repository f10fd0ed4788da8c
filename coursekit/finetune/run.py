"""`finetune(data, out_dir)`: your data to an evaluated, exported model in one call (lesson 07).

One run, top to bottom: load and split the data (`data.py`) -> report it (`report.py`) -> choose
and print every setting (`build.py`) -> load the pre-trained model with a new head -> pick what
trains -> `fit` with warm-up + cosine learning rate, class weights, checkpoints (an interrupted run
resumes from `out_dir/checkpoints`) -> test on the held-out split (`evaluate.py`) -> export
(`export.py`) -> `out_dir/run.json`, which `Predictor(out_dir)` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from coursekit.heads import text_classifier
from coursekit.models import load_pretrained, load_tokenizer
from coursekit.params import count_parameters
from coursekit.runtime.config import settings
from coursekit.runtime.device import pick_device, seed_everything
from coursekit.training.evaluation import predict
from coursekit.training.history import History
from coursekit.training.loop import fit
from coursekit.training.optim import make_optimizer
from coursekit.viz import plot_confusion_matrix

from . import build
from .data import load_data
from .evaluate import most_confidently_wrong, plot_wrong, test_metrics, write_report
from .export import (
    PREPROCESSING,
    export_onnx,
    export_text,
    save_lora_adapter,
    write_json,
    write_preprocessing,
)
from .images import take_pixels
from .report import data_report, imbalance
from .userdata import DataError, UserData

__all__ = ["FinetuneResult", "finetune"]


@dataclass
class FinetuneResult:
    """What a run produced: the trained model, the data and its split, the test metrics (see
    `evaluate.test_metrics`), test probabilities, every choice made, and the files written."""

    model: nn.Module
    data: UserData
    history: History
    metrics: dict
    test_probs: torch.Tensor
    choices: dict[str, Any]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    tokenizer: Any = None


def _cap_per_class(data: UserData, n: int | None, seed: int) -> np.ndarray:
    """The training positions, at most `n` per class (quick mode trains on a sample)."""
    train = data.splits["train"]
    if n is None:
        return train
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(train[data.labels[train] == c])[:n] for c in range(data.num_classes)]
    return np.sort(np.concatenate(keep))


def _choose(name: str, value: Any, default: Any, why: str, choices: dict) -> Any:
    """Record and print one setting: the caller's value, or the default and the reason for it."""
    chosen = default if value is None else value
    note = why if value is None else "as asked"
    choices[name] = f"{chosen} ({note})"
    print(f"  {name:<15} {chosen}  <- {note}")
    return chosen


def _inputs(data: UserData, plan: Plan) -> dict[str, Any]:
    """train / val / test datasets in the model's input format (training ones augmented). Images
    come from the uint8 copies the data check made: no file is decoded again, in any epoch."""
    out = {}
    pixels = take_pixels(data, plan.image_size) if data.kind == "image" else None
    for split, idx in data.splits.items():
        items, labels = [data.items[i] for i in idx], data.labels[idx]
        if pixels is not None:
            augment = build.default_augmentation(plan.image_size) if plan.augment else None
            out[split] = build.image_dataset_for(
                build.channels_first(pixels[idx]),
                labels,
                plan.model,
                augment if split == "train" else None,
            )
        else:
            out[split] = build.text_tensors(items, labels, plan.tokenizer, plan.max_length)
    return out


@dataclass
class Plan:
    """Every setting of a run, decided before it starts (`choices`: each with its reason)."""

    model: str
    strategy: str
    epochs: int
    lr: float
    batch_size: int
    weighted_loss: bool
    choices: dict[str, Any]
    image_size: int | None = None
    augment: bool = False
    max_length: int | None = None
    tokenizer: Any = None


def _plan(data: UserData, seed: int, warmup: float, asked: dict[str, Any]) -> Plan:
    """Decide (and print) every setting the caller left at None, for this data and run mode."""
    cfg, choices = settings(), {}
    mode = f"{cfg.mode} mode"

    def choose(name: str, default: Any, why: str) -> Any:
        return _choose(name, asked[name], default, why, choices)

    model = choose(
        "model",
        "minilm" if data.kind == "text" else "efficientnet_lite0",
        f"the course's offline {data.kind} model",
    )
    cap = choose(
        "train_per_class",
        cfg.train_per_class if cfg.mode == "quick" else None,
        f"at most this many per class in {mode}",
    )
    data.splits["train"] = _cap_per_class(data, cap, seed)
    smallest = int(np.bincount(data.labels[data.splits["train"]]).min())
    strategy = choose("strategy", *build.choose_strategy(data.kind, smallest))
    if strategy not in build.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {build.STRATEGIES}")
    n_train, ratio = len(data.splits["train"]), imbalance(data)
    small = n_train < 1000  # small data: smaller batches give more optimizer steps per epoch
    plan = Plan(
        model,
        strategy,
        epochs=choose("epochs", cfg.epochs, mode),
        lr=choose("lr", build.DEFAULT_LR[strategy], f"usual for '{strategy}'"),
        batch_size=choose(
            "batch_size",
            16 if small else cfg.batch_size,
            f"{n_train} training examples" if small else mode,
        ),
        weighted_loss=choose("weighted_loss", ratio > 1.5, f"classes {ratio:.1f}x imbalanced"),
        choices=choices,
    )
    choices["schedule"] = f"linear warm-up over {warmup:.0%} of the steps, then cosine decay"
    print(f"  {'schedule':<15} {choices['schedule']}")
    if data.kind == "image":
        plan.image_size = choose("image_size", cfg.image_size, mode)
        plan.augment = choose("augment", True, "random crops + flips (v2)")
    else:
        plan.tokenizer = load_tokenizer(model)
        texts = [data.items[i] for i in data.splits["train"]]
        plan.max_length = choose(
            "max_length",
            build.text_length(plan.tokenizer, texts, cfg.max_length),
            "covers 95% of the training texts",
        )
    return plan


def finetune(
    data: Any,
    out_dir: str | Path,
    *,
    model: str | None = None,
    strategy: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    warmup: float = 0.1,
    batch_size: int | None = None,
    augment: bool | None = None,
    weighted_loss: bool | None = None,
    image_size: int | None = None,
    max_length: int | None = None,
    train_per_class: int | None = None,
    early_stopping: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    **load_kwargs: Any,
) -> FinetuneResult:
    """Fine-tune a pre-trained model on `data` (a folder, a CSV/TSV/JSONL file, a
    `datasets.Dataset`, or `load_data`'s result) and write everything to `out_dir`.

    Every argument left at None is chosen for the data and the run mode, and printed with the
    reason. The weights of the epoch with the lowest validation loss are the ones tested and
    exported; `early_stopping=N` also stops training after N epochs without a lower one
    (`callbacks.EarlyStopping`, lesson 00). `load_kwargs` go to `load_data` (text_column,
    label_column, encoding, skip_bad...).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = image_size if image_size is not None else settings().image_size
    problems = out_dir / "data_problems.txt"
    try:  # images: the check keeps the copies training reads (each file decoded once)
        data = load_data(data, seed=seed, image_size=size, **load_kwargs)
    except DataError as err:
        if not err.problems:
            raise
        raise err.listed_in(problems) from None
    problems.unlink(missing_ok=True)  # from an earlier run: fixed or skipped now
    print(f"Fine-tuning on {data.source} ({data.kind}, {data.num_classes} classes); choices:")
    plan = _plan(
        data,
        seed,
        warmup,
        dict(
            model=model,
            strategy=strategy,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            augment=augment,
            weighted_loss=weighted_loss,
            image_size=image_size,
            max_length=max_length,
            train_per_class=train_per_class,
        ),
    )
    print(data_report(data, plan.tokenizer, plan.max_length, more_in=out_dir / "report.md"))

    seed_everything(seed)
    device = torch.device(device) if device is not None else pick_device()
    chosen = build.strategy(
        plan.strategy, lambda: _pretrained(plan.model, data), data.kind, plan.lr
    )
    net = chosen.build()
    counts = count_parameters(net)
    plan.choices["trainable"] = f"{counts.trainable:,} of {counts.total:,} parameters"
    print(f"trainable: {plan.choices['trainable']} (strategy {plan.strategy})")
    sets = _inputs(data, plan)
    optimizer = make_optimizer(net, chosen.lr, device=device)  # the AdamW every lesson trains with
    steps = plan.epochs * -(-len(sets["train"]) // plan.batch_size)
    scheduler = build.warmup_cosine(optimizer, steps, warmup)
    weights = build.class_weights(data.labels[data.splits["train"]], data.num_classes)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device)) if plan.weighted_loss else None
    history = fit(
        net,
        sets["train"],
        sets["val"],
        epochs=plan.epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=loss_fn,
        batch_size=plan.batch_size,
        device=device,
        checkpoint_dir=out_dir / "checkpoints",
        restore_best=True,
        early_stopping=early_stopping,
    )

    logits, labels = predict(net, sets["test"], device)
    probs = logits.softmax(-1)
    metrics = test_metrics(probs, labels, data.classes)
    result = FinetuneResult(
        net.cpu().eval(),
        data,
        history,
        metrics,
        probs,
        plan.choices,
        out_dir,
        tokenizer=plan.tokenizer,
    )
    _export(result, plan.model, plan.image_size, sets["test"])
    _report(result, labels, data_report(data, plan.tokenizer, plan.max_length, limit=None))
    return result


def _pretrained(name: str, data: UserData) -> nn.Module:
    """The pre-trained model with a new head: for texts on MiniLM, the text classifier of lessons
    05 and 06 (`heads.text_classifier`: mean pooling, the pooling lesson 03 measured better)."""
    if data.kind == "text" and name == "minilm":
        return text_classifier(data.num_classes)
    return load_pretrained(name, data.num_classes)


def _export(result: FinetuneResult, name: str, size: int | None, test_set: Any) -> None:
    data, out = result.data, result.out_dir
    run = {"kind": data.kind, "classes": data.classes, "model": name, "choices": result.choices}
    if data.kind == "text":
        result.files["model"] = export_text(
            result.model, result.tokenizer, data.classes, out / "model"
        )
        adapter = save_lora_adapter(result.model, out / "adapter", name)
        if adapter is not None:
            result.files["adapter"] = adapter
        run["max_length"] = int(test_set.encodings["input_ids"].shape[1])
    else:
        check = test_set.images[:16].float() / 255
        path = out / "model.onnx"
        run["onnx_max_abs_diff"] = export_onnx(result.model, name, size, path, check)
        run.update(image_size=size, input=PREPROCESSING)
        result.files["model"] = path
        result.files["preprocess"] = write_preprocessing(out)
    _write_test_predictions(result, out / "test_predictions.jsonl")
    m = result.metrics
    run["test"] = {k: m[k] for k in ("n", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci")}
    result.files["run"] = write_json(out / "run.json", run)


def _write_test_predictions(result: FinetuneResult, path: Path) -> None:
    """One JSON line per test example: input, true label, predicted label, probabilities (from
    the trained model before export: what the exported model must reproduce)."""
    data, classes = result.data, result.data.classes
    with path.open("w", encoding="utf-8") as f:
        for i, p in zip(data.splits["test"], result.test_probs.tolist(), strict=True):
            row = {
                "input": str(data.items[i]),
                "label": classes[data.labels[i]],
                "predicted": classes[max(range(len(p)), key=p.__getitem__)],
                "probabilities": p,
            }
            f.write(json.dumps(row) + "\n")


def _report(result: FinetuneResult, labels: torch.Tensor, data_text: str) -> None:
    data, probs = result.data, result.test_probs
    items = [data.items[i] for i in data.splits["test"]]
    cm = torch.tensor(result.metrics["confusion"])
    figures = {
        "confusion": plot_confusion_matrix(cm, data.classes, title="test confusion (row = true)"),
        "wrong": plot_wrong(items, probs, labels, data.classes),
    }
    wrong = [
        (
            str(items[i])[:120],
            data.classes[labels[i]],
            data.classes[probs[i].argmax()],
            float(probs[i].max()),
        )
        for i in most_confidently_wrong(probs, labels)
    ]
    result.files["report"] = write_report(
        result.out_dir, result.metrics, figures, data_text, result.choices, wrong
    )
