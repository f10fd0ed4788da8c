"""Classification metrics in plain torch: accuracy, macro-F1, confusion matrix.

Each takes predicted class indices (or logits, which are arg-maxed) and true labels.
Every lesson (00-08) scores its models with it.
"""

from __future__ import annotations

import torch

__all__ = ["METRICS", "accuracy", "confusion_matrix", "macro_f1"]


def _preds(pred_or_logits: torch.Tensor) -> torch.Tensor:
    return pred_or_logits.argmax(-1) if pred_or_logits.ndim > 1 else pred_or_logits


def accuracy(pred_or_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct predictions."""
    preds = _preds(pred_or_logits)
    if preds.shape != labels.shape:
        raise ValueError(
            f"predictions {tuple(preds.shape)} and labels {tuple(labels.shape)} differ"
        )
    if labels.numel() == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return (preds == labels).float().mean().item()


def confusion_matrix(
    pred_or_logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """Counts `cm[true, predicted]` as an int64 tensor of shape (num_classes, num_classes)."""
    preds = _preds(pred_or_logits).long().flatten()
    labels = labels.long().flatten()
    if num_classes is None:
        num_classes = int(max(preds.max().item(), labels.max().item())) + 1
    idx = labels * num_classes + preds
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def macro_f1(
    pred_or_logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in labels or predictions."""
    cm = confusion_matrix(pred_or_logits, labels, num_classes).double()
    tp = cm.diag()
    support = cm.sum(1)
    predicted = cm.sum(0)
    denom = support + predicted
    present = denom > 0
    f1 = torch.where(present, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    return (f1[present].mean()).item()


METRICS = {"accuracy": accuracy, "macro_f1": macro_f1}
