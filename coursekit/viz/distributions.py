"""How a set of examples is spread out: embeddings projected to 2-D, one colour per class,
and text lengths against the cutoffs that would truncate them.
Lessons 01 and 03.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["plot_embedding_2d", "plot_length_histogram"]


def plot_embedding_2d(
    points: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], title: str = ""
) -> Figure:
    """A 2-D scatter of projected embeddings, one colour per class."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    pts = points.detach().cpu().numpy()
    for c, name in enumerate(class_names):
        mask = (labels == c).cpu().numpy()
        ax.scatter(pts[mask, 0], pts[mask, 1], s=10, alpha=0.7, color=f"C{c}", label=name)
    ax.legend(fontsize=8, markerscale=2)
    ax.set(xlabel="component 1", ylabel="component 2", title=title)
    fig.tight_layout()
    return fig


def plot_length_histogram(
    lengths: Sequence[int],
    cutoffs: Sequence[int] = (),
    bins: int = 40,
    title: str = "",
    xlabel: str = "tokens per text",
) -> Figure:
    """A histogram of text lengths with a dashed line per cutoff (e.g. max_length), each
    labelled with the share of texts longer than it (those get truncated). The x axis stops at
    the 99th percentile (or the largest cutoff) so a few very long texts don't squash the rest."""
    v = np.asarray(lengths)
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    right = max(float(np.percentile(v, 99)), *cutoffs, 1) * 1.05
    ax.hist(v[v <= right], bins=bins, range=(0, right), color="0.65")
    for i, c in enumerate(cutoffs):
        ax.axvline(c, color=f"C{i}", ls="--", label=f"cut at {c}: {np.mean(v > c):.1%} truncated")
    ax.set_xlim(0, right)
    title = title or f"{len(v)} texts, median {np.median(v):.0f}"
    ax.set(xlabel=xlabel, ylabel="texts", title=title)
    if len(cutoffs):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
