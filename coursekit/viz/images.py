"""Looking at images and what a vision model makes of them: captioned image grids (wrong
predictions in red), top-k predictions for one photo, and feature maps per stage.
Lessons 00-03.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["plot_topk", "show_feature_maps", "show_images"]


def show_images(
    images: torch.Tensor | np.ndarray,
    labels: Sequence[int] | None = None,
    preds: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    title: str = "",
) -> Figure:
    """A grid of images (N×H×W, N×C×H×W or N×H×W×C) captioned with true and predicted labels;
    wrong predictions in red."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    x = x.detach().cpu().float()
    if x.ndim == 4 and x.shape[1] in (1, 3):
        x = x.permute(0, 2, 3, 1)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    lo, hi = (
        x.amin(dim=tuple(range(1, x.ndim)), keepdim=True),
        x.amax(dim=tuple(range(1, x.ndim)), keepdim=True),
    )
    x = (x - lo) / (hi - lo).clamp(min=1e-8)
    n = len(x)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(1.5 * ncols, 1.7 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()

    def name(i: int) -> str:
        return class_names[i] if class_names is not None else str(i)

    for k, ax in enumerate(axes):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(x[k].numpy(), cmap="gray" if x[k].ndim == 2 else None)
        if labels is not None and preds is not None:
            ok = int(labels[k]) == int(preds[k])
            ax.set_title(
                f"{name(int(preds[k]))}\n(true: {name(int(labels[k]))})",
                fontsize=7,
                color="black" if ok else "red",
            )
        elif labels is not None:
            ax.set_title(name(int(labels[k])), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_topk(
    image: np.ndarray, predictions: Sequence[tuple[str, float]], title: str = ""
) -> Figure:
    """A photo next to a bar chart of the model's top-k classes and their probabilities."""
    fig = Figure(figsize=(8, 2.6))
    ax_img, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    ax_img.imshow(np.asarray(image))
    ax_img.axis("off")
    ax_img.set_title(title, fontsize=9)
    names = [n for n, _ in predictions][::-1]
    probs = [p for _, p in predictions][::-1]
    ax_bar.barh(range(len(names)), probs, color=["0.6"] * (len(names) - 1) + ["C0"])
    ax_bar.set_yticks(range(len(names)), names, fontsize=8)
    ax_bar.set_xlim(0, 1)
    for i, p in enumerate(probs):
        ax_bar.text(min(p + 0.01, 0.85), i, f"{p:.2f}", va="center", fontsize=8)
    ax_bar.set_xlabel("probability")
    fig.tight_layout()
    return fig


def show_feature_maps(maps: dict[str, torch.Tensor], n: int = 6) -> Figure:
    """The first `n` channels of each stage's activations for one image: rows are stages."""
    fig = Figure(figsize=(1.4 * n + 1.2, 1.4 * len(maps)))
    axes = np.atleast_2d(fig.subplots(len(maps), n))
    for row, (name, fmap) in zip(axes, maps.items(), strict=True):
        fmap = fmap[0] if fmap.ndim == 4 else fmap
        for c, ax in enumerate(row):
            ax.imshow(fmap[c].detach().float().cpu().numpy(), cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{name}\n{tuple(fmap.shape[1:])}", fontsize=7)
    fig.tight_layout()
    return fig
