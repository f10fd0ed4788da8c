"""Evaluation a practitioner can trust: numbers with their uncertainty, and the errors themselves.

A test accuracy of 0.91 on 100 examples could well be 0.84 or 0.95 on the next 100: the
interval says how far to trust the number (Wilson's interval for a proportion; for macro-F1,
which is not a proportion, a bootstrap over the test examples). Accuracy also hides which
classes suffer: per-class precision (of the examples predicted c, how many are c) and recall (of
the examples that are c, how many were found), and the confusion matrix, show it. Finally, the
examples the model got wrong *with the most confidence* are where label mistakes and real
blind spots hide: look at them before trusting, or collecting more data.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from coursekit.claims import interval
from coursekit.training.metrics import accuracy, confusion_matrix, macro_f1

from .images import IMAGE_SUFFIXES, read_image

__all__ = [
    "bootstrap_interval",
    "most_confidently_wrong",
    "plot_wrong",
    "test_metrics",
    "write_report",
]


def bootstrap_interval(
    preds: torch.Tensor, labels: torch.Tensor, num_classes: int, n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of macro-F1: resample the test examples `n` times
    (all resamples' confusion matrices in one `bincount`; F1 as in `metrics.macro_f1`)."""
    k = num_classes
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(labels), (n, len(labels)), generator=gen)
    cells = labels.long()[idx] * k + preds.long()[idx] + torch.arange(n)[:, None] * k * k
    cm = torch.bincount(cells.flatten(), minlength=n * k * k).reshape(n, k, k).double()
    tp, denom = cm.diagonal(dim1=1, dim2=2), cm.sum(1) + cm.sum(2)
    present = denom > 0
    f1 = torch.where(present, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    values = (f1.sum(1) / present.sum(1)).numpy()
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def test_metrics(probs: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> dict:
    """Accuracy and macro-F1 with 95% intervals, per-class precision/recall/F1, confusion."""
    preds = probs.argmax(-1)
    k = len(classes)
    cm = confusion_matrix(preds, labels, k)
    tp, predicted, support = cm.diag(), cm.sum(0), cm.sum(1)
    per_class = []
    for c, name in enumerate(classes):
        p = tp[c].item() / max(predicted[c].item(), 1)
        r = tp[c].item() / max(support[c].item(), 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class.append(
            {"class": name, "precision": p, "recall": r, "f1": f1, "support": support[c].item()}
        )
    correct = int((preds == labels).sum())
    return {
        "n": len(labels),
        "accuracy": accuracy(preds, labels),
        "accuracy_ci": interval(correct / len(labels), len(labels)),
        "macro_f1": macro_f1(preds, labels, k),
        "macro_f1_ci": bootstrap_interval(preds, labels, k),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def most_confidently_wrong(probs: torch.Tensor, labels: torch.Tensor, k: int = 8) -> list[int]:
    """Positions of the wrong predictions, most confident first (at most `k`)."""
    confidence, preds = probs.max(-1)
    wrong = torch.nonzero(preds != labels).flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order][:k].tolist()


def plot_wrong(
    items: Sequence[Any],
    probs: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    k: int = 8,
) -> Figure:
    """The most confidently wrong test examples: images shown, texts quoted, each captioned
    `true -> predicted (probability)`."""
    chosen = most_confidently_wrong(probs, labels, k)
    is_image = bool(items) and Path(str(items[0])).suffix.lower() in IMAGE_SUFFIXES
    if not chosen:
        fig = Figure(figsize=(4, 1))
        fig.text(0.5, 0.5, "no wrong predictions on the test split", ha="center")
        return fig
    if is_image:
        ncols = min(4, len(chosen))
        nrows = math.ceil(len(chosen) / ncols)
        fig = Figure(figsize=(2.4 * ncols, 2.6 * nrows))
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    else:
        fig = Figure(figsize=(9, 1.1 * len(chosen)))
        axes = np.atleast_1d(fig.subplots(len(chosen), 1)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, chosen, strict=False):
        caption = (
            f"true {classes[labels[i]]} -> {classes[probs[i].argmax()]} ({probs[i].max():.2f})"
        )
        if is_image:
            ax.imshow(read_image(items[i]))
            ax.set_title(caption, fontsize=8, color="red")
        else:
            printable = "".join(ch if ch.isprintable() else "?" for ch in str(items[i]))
            quote = textwrap.shorten(printable, 160, placeholder=" ...")
            ax.text(0, 0.5, f"{caption}\n\u201c{quote}\u201d", fontsize=8, va="center", wrap=True)
    fig.suptitle("most confidently wrong test examples", fontsize=10)
    fig.tight_layout()
    return fig


def write_report(
    out_dir: Path,
    metrics: dict,
    figures: dict[str, Figure],
    data_report: str,
    choices: dict[str, Any],
    wrong: list[tuple[str, str, str, float]],
) -> Path:
    """`report.md` in `out_dir` with the figures saved next to it as PNGs (self-contained
    folder: open it in any Markdown viewer, or on GitHub)."""
    lo, hi = metrics["accuracy_ci"]
    flo, fhi = metrics["macro_f1_ci"]
    lines = [
        "# Fine-tuning report",
        "",
        "## Choices",
        *[f"- **{k}**: {v}" for k, v in choices.items()],
        "",
        "## Data",
        "```",
        data_report,
        "```",
        "",
        f"## Test results ({metrics['n']} held-out examples)",
        f"- accuracy **{metrics['accuracy']:.3f}** (95% Wilson interval {lo:.3f}-{hi:.3f})",
        f"- macro-F1 **{metrics['macro_f1']:.3f}** (95% bootstrap interval {flo:.3f}-{fhi:.3f})",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {r['class']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
            f"{r['support']} |"
            for r in metrics["per_class"]
        ],
        "",
    ]
    for name, fig in figures.items():
        fig.savefig(out_dir / f"{name}.png", dpi=110, bbox_inches="tight")
        lines += [f"![{name}]({name}.png)", ""]
    if wrong:
        lines += ["## Most confidently wrong", "", "| example | true | predicted | p |"]
        lines += ["|---|---|---|---:|"]
        lines += [f"| {w[0].replace('|', '/')} | {w[1]} | {w[2]} | {w[3]:.2f} |" for w in wrong]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
