"""Square matrices drawn as heatmaps with each value written in its cell: the confusion
matrix of a classifier and the pairwise similarity of embeddings.
Lessons 00 and 01.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

__all__ = ["plot_confusion_matrix", "plot_similarity"]


def plot_confusion_matrix(
    cm: torch.Tensor,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    title: str = "confusion matrix",
) -> Figure:
    """Rows are true classes, columns predictions; `normalize` shows each row as fractions."""
    m = cm.double()
    if normalize:
        m = m / m.sum(1, keepdim=True).clamp(min=1)
    n = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    fig = Figure(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax = fig.subplots()
    im = ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(n):
        for j in range(n):
            v = m[i, j].item()
            text = f"{v:.2f}" if normalize else f"{int(v)}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v > (0.5 if normalize else m.max().item() / 2) else "black",
            )
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_similarity(
    sim: torch.Tensor, labels: Sequence[str], title: str = "cosine similarity"
) -> Figure:
    """A heatmap of pairwise similarities with the values written in each cell."""
    n = len(labels)
    fig = Figure(figsize=(2.5 + 0.6 * n, 1.5 + 0.5 * n), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(sim.detach().cpu().numpy(), cmap="viridis", vmin=-0.2, vmax=1)
    for i in range(n):
        for j in range(n):
            v = sim[i, j].item()
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if v > 0.6 else "white",
            )
    short = [s if len(s) <= 40 else s[:37] + "..." for s in labels]
    ax.set_xticks(range(n), range(n), fontsize=8)
    ax.set_yticks(range(n), [f"{i}: {s}" for i, s in enumerate(short)], fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig
