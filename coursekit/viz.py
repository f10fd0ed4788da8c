"""Plots a learner would rather look at than read: learning curves (live during `fit`),
confusion matrices, image grids with predictions, and trainable-vs-frozen parameter bars.

Every function returns the matplotlib Figure so notebooks can tweak or save it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .history import Callback, FitState, History
from .params import ParamCount
from .progress import in_notebook


def _figure_png(fig: Figure) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _show_figures_inline() -> None:
    """Let notebooks display the Figures these functions return (without pyplot's global state)."""
    from IPython import get_ipython

    formatter = get_ipython().display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)


if in_notebook():
    _show_figures_inline()

__all__ = [
    "LivePlot",
    "plot_confusion_matrix",
    "plot_history",
    "plot_embedding_2d",
    "plot_param_counts",
    "plot_similarity",
    "plot_topk",
    "show_feature_maps",
    "show_images",
]


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def plot_history(history: History, fig: Figure | None = None, title: str = "") -> Figure:
    """Loss per step (smoothed) and per epoch on the left, accuracy-like metrics on the right."""
    fig = fig or Figure(figsize=(10, 3.6))
    fig.clear()
    ax_loss, ax_metric = fig.subplots(1, 2)
    if history.steps:
        n_ep = max(len(history.epochs), 1)
        per_epoch = len(history.steps) / n_ep
        x = np.arange(1, len(history.steps) + 1) / per_epoch
        window = max(1, len(history.steps) // 50)
        smooth = _smooth(history.steps, window)
        ax_loss.plot(x, history.steps, color="C0", alpha=0.2, lw=0.8)
        ax_loss.plot(x[window - 1 :] if window > 1 else x, smooth, color="C0", label="train (step)")
    epochs = history.metric("epoch")
    for name, color in (("train_loss", "C1"), ("val_loss", "C2")):
        if history.metric(name):
            ax_loss.plot(epochs, history.metric(name), "o-", color=color, label=name)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend(fontsize=8)
    metric_names = [
        k for k in history.last if k not in ("epoch", "lr", "seconds") and "loss" not in k
    ]
    for i, name in enumerate(metric_names):
        ax_metric.plot(epochs, history.metric(name), "o-", color=f"C{i + 3}", label=name)
    ax_metric.set(xlabel="epoch", title="metrics")
    if metric_names:
        ax_metric.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class LivePlot(Callback):
    """A `fit` callback: learning curves that redraw after every epoch in a notebook; elsewhere
    (scripts, CI) one final figure at the end, saved to `save_to` if given."""

    def __init__(
        self, title: str = "", save_to: str | Path | None = None, live: bool | None = None
    ):
        self.title = title
        self.save_to = Path(save_to) if save_to else None
        self.live = in_notebook() if live is None else live
        self.fig = Figure(figsize=(10, 3.6))
        self._handle = None

    def on_epoch_end(self, state: FitState) -> None:
        if not self.live:
            return
        from IPython.display import display

        plot_history(state.history, self.fig, self.title)
        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)

    def on_fit_end(self, state: FitState) -> None:
        plot_history(state.history, self.fig, self.title)
        if self.save_to is not None:
            self.save_to.parent.mkdir(parents=True, exist_ok=True)
            self.fig.savefig(self.save_to, dpi=100)
        if self.live:
            if self._handle is not None:
                self._handle.update(self.fig)
            else:
                from IPython.display import display

                display(self.fig)


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


def plot_similarity(sim: torch.Tensor, labels: Sequence[str], title: str = "cosine similarity"
                    ) -> Figure:
    """A heatmap of pairwise similarities with the values written in each cell."""
    n = len(labels)
    fig = Figure(figsize=(2.5 + 0.6 * n, 1.5 + 0.5 * n))
    ax = fig.subplots()
    im = ax.imshow(sim.detach().cpu().numpy(), cmap="viridis", vmin=-0.2, vmax=1)
    for i in range(n):
        for j in range(n):
            v = sim[i, j].item()
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.6 else "white")
    short = [s if len(s) <= 40 else s[:37] + "..." for s in labels]
    ax.set_xticks(range(n), range(n), fontsize=8)
    ax.set_yticks(range(n), [f"{i}: {s}" for i, s in enumerate(short)], fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_embedding_2d(points: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                      title: str = "") -> Figure:
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


def plot_param_counts(
    rows: Sequence[ParamCount], title: str = "parameters per module", log: bool = False
) -> Figure:
    """Horizontal bars of trainable (coloured) and frozen (grey) parameters per module."""
    names = [r.name for r in rows]
    trainable = np.array([r.trainable for r in rows])
    frozen = np.array([r.frozen for r in rows])
    fig = Figure(figsize=(8, 0.5 + 0.32 * len(rows)))
    ax = fig.subplots()
    y = np.arange(len(rows))
    ax.barh(y, frozen, color="0.7", label="frozen")
    ax.barh(y, trainable, left=frozen, color="C0", label="trainable")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    total_t, total = trainable.sum(), trainable.sum() + frozen.sum()
    ax.set(
        xlabel="parameters",
        title=f"{title}: {total_t:,} of {total:,} trainable ({100 * total_t / max(total, 1):.2f}%)",
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
