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
    "plot_param_counts",
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
