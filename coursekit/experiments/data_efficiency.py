"""Data efficiency: how much labelled data does each method need?

`data_efficiency` trains every method on exactly `n` examples per class for each `n` in `shots`
(the same examples for every method), evaluates each on the same untouched test split, and returns
a tidy table: one dict per (method, examples per class, seed). A *method* is any function
`(train_split, test_split) -> {"logits": test logits, ...extras}` (see methods.py); the runner
itself computes the accuracy and macro-F1 from the test logits, so no method can grade its own
homework. `aggregate` and `to_markdown` turn those rows into tables; `tune_lr` picks a method's
learning rate on validation data with the same runner. Lessons 02 and 03.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..claims import accuracy_se, over_seeds
from ..datasets import Split, per_class
from ..runtime.device import seed_everything
from ..training.limits import active_dry_run
from ..training.metrics import accuracy, macro_f1
from .methods import Method

__all__ = [
    "ExperimentError",
    "aggregate",
    "data_efficiency",
    "subsample_indices",
    "to_markdown",
    "tune_lr",
]

Pair = tuple[Split, Split]


class ExperimentError(RuntimeError):
    """A method failed inside an experiment; the message names the method, shot and seed."""


# --- the runner ------------------------------------------------------------------------------


def subsample_indices(labels: torch.Tensor, n: int, seed: int = 0) -> np.ndarray:
    """Positions of exactly `n` random examples of every class (as `datasets.per_class`)."""
    index_split = Split(torch.arange(len(labels)), labels)
    return per_class(index_split, n, seed=seed).x.numpy()


def _check_pairs(methods: Mapping[str, Method], splits: Pair | Mapping[str, Pair]) -> dict:
    if not methods:
        raise ValueError("no methods given: pass a dict {name: method}")
    if isinstance(splits, Mapping):
        missing = set(methods) - set(splits)
        if missing:
            raise ValueError(f"no (train, test) splits for method(s) {sorted(missing)}")
        pairs = {name: splits[name] for name in methods}
    else:
        pairs = dict.fromkeys(methods, splits)
    (train0, test0), name0 = next(iter(pairs.values())), next(iter(pairs))
    for name, (train, test) in pairs.items():
        if not (torch.equal(train.y, train0.y) and torch.equal(test.y, test0.y)):
            raise ValueError(
                f"method {name!r} has different train/test labels from {name0!r}: every method "
                "must see the same examples (e.g. images for one, their features for another)"
            )
    return pairs


def data_efficiency(
    methods: Mapping[str, Method],
    splits: Pair | Mapping[str, Pair],
    shots: Sequence[int],
    seeds: Sequence[int] = (0,),
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train and test every method on `n` labelled examples per class, for each n in `shots`.

    `splits` is one `(train, test)` pair for all methods, or a dict `{method: (train, test)}` when
    methods need different inputs for the same examples (images for one, their cached features
    for another); the labels must then agree. For each seed and n, one set of positions is drawn
    (`subsample_indices`) and every method trains on those same examples; every method is tested
    on the whole test split. Returns one row per (method, n, seed):
    `method, shots, seed, n_train, n_test, accuracy, accuracy_se, macro_f1, distinct_predictions,
    correct, seconds` (wall time of the call) plus whatever else the method returned (e.g.
    `train_seconds`, `optimizer_steps`, `history`). `accuracy_se` is the binomial standard error
    on the n_test examples; `correct` (1/0 per test example) lets `gaps` pair runs example by
    example.
    """
    pairs = _check_pairs(methods, splits)
    train0, test0 = next(iter(pairs.values()))
    smallest = min(train0.class_counts())
    for n in shots:
        if not 1 <= int(n) <= smallest:
            raise ValueError(
                f"shots={n} examples per class is impossible: the training split's smallest "
                f"class has {smallest} examples (use shots between 1 and {smallest})"
            )
    num_classes = int(max(train0.y.max(), test0.y.max())) + 1
    truth = test0.y.clone()  # graded against this copy, whatever a method does to its split
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for n in shots:
            idx = subsample_indices(train0.y, int(n), seed)
            for name, method in methods.items():
                train, test = pairs[name]
                seed_everything(seed)
                start = time.perf_counter()
                try:
                    out = method(train.subset(idx), test)
                    logits = _check_output(out, len(test), num_classes)
                    if not torch.equal(test.y, truth):
                        raise RuntimeError("it changed the test labels; it must not touch them")
                except Exception as err:
                    raise ExperimentError(
                        f"method {name!r} failed with {n} examples per class (seed {seed}): "
                        f"{type(err).__name__}: {err}"
                    ) from err
                graded = truth[: len(logits)]  # all of it, except in a dry run
                acc = accuracy(logits, graded)
                row = {
                    "method": name,
                    "shots": int(n),
                    "seed": seed,
                    "n_train": len(idx),
                    "n_test": len(graded),
                    "accuracy": acc,
                    "accuracy_se": accuracy_se(acc, len(graded)),
                    "macro_f1": macro_f1(logits, graded, num_classes),
                    # 1 means the model guesses the same class for every test example
                    "distinct_predictions": int(logits.argmax(1).unique().numel()),
                    "correct": (logits.argmax(1) == graded).numpy(),
                    "seconds": time.perf_counter() - start,
                }
                row.update({k: v for k, v in out.items() if k != "logits"})
                rows.append(row)
                if progress:
                    print(
                        f"{name:>24} | {n:>5}/class | seed {seed} | accuracy "
                        f"{acc:.3f} ± {row['accuracy_se']:.3f} | {row['seconds']:6.1f} s"
                    )
    return rows


def _check_output(out: Any, n_test: int, num_classes: int) -> torch.Tensor:
    """The test logits, checked: one row per test example (in a dry run, `training.limits`,
    the rows of the first batches only) and one column per class."""
    if not isinstance(out, Mapping) or "logits" not in out:
        raise TypeError("a method must return a dict with 'logits' for the test split")
    logits = torch.as_tensor(out["logits"]).detach().cpu()
    rows = len(logits) if active_dry_run() is not None and 0 < len(logits) <= n_test else n_test
    if logits.ndim != 2 or logits.shape != (rows, num_classes):
        raise ValueError(
            f"expected test logits of shape ({n_test}, {num_classes}), got {tuple(logits.shape)}"
        )
    return logits


def tune_lr(
    make_method: Callable[[float], Method],
    lrs: Sequence[float],
    train: Split,
    val: Split,
    shots: int,
    seed: int = 0,
    name: str = "",
) -> tuple[float, list[dict[str, Any]]]:
    """Pick a method's learning rate on validation data, with the `data_efficiency` runner.

    `make_method(lr)` builds the method; each candidate trains on the same `shots` examples per
    class of `train` (drawn with `seed`) and is scored on `val`, never on the test set. Returns
    (the lr with the highest validation accuracy, the first among equals; the rows, each with
    its `lr`, `val_accuracy` and `method` = `name`).
    """
    if not lrs:
        raise ValueError("give at least one learning rate to try")
    methods = {f"lr={lr:g}": make_method(lr) for lr in lrs}
    rows = data_efficiency(methods, (train, val), (shots,), (seed,), progress=False)
    for row, lr in zip(rows, lrs, strict=True):
        row.update(method=name or row["method"], lr=lr, val_accuracy=row["accuracy"])
    best = max(rows, key=lambda r: r["accuracy"])  # max keeps the first of equal ones
    return best["lr"], rows


# --- tables ----------------------------------------------------------------------------------


def aggregate(
    rows: Sequence[Mapping[str, Any]], by: Sequence[str] = ("method", "shots")
) -> list[dict[str, Any]]:
    """Average numeric columns over the rows sharing `by` (e.g. over seeds); adds `runs` and, for
    accuracy, `accuracy_std` (spread over seeds) and `accuracy_se`: the standard error of the mean
    accuracy, from the test-set size (binomial, shared by all seeds since they use one test set)
    plus the seed-to-seed spread over sqrt(runs). Keeps the order in which groups first appear."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        agg: dict[str, Any] = dict(zip(by, key, strict=True))
        for col in members[0]:
            values = [m[col] for m in members if col in m]
            if col in by or col == "seed":
                continue
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                agg[col] = float(np.mean(values))
        acc = [m["accuracy"] for m in members if "accuracy" in m]
        if acc:
            agg["accuracy_std"] = float(np.std(acc))
            if "n_test" in members[0]:
                agg["accuracy_se"] = over_seeds(acc, n_test=int(members[0]["n_test"])).se
        agg["runs"] = len(members)
        out.append(agg)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, list | tuple):  # e.g. one accuracy per seed
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of `rows` (all columns of the first row unless `columns` is given)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)
