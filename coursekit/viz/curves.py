"""Learning curves of one training run or several: loss and metrics per epoch, live during
`fit` (`LivePlot`), several runs overlaid with training and validation (`plot_histories`), the
first steps of several runs side by side, and the curves of several strategies trained over
several seeds (`plot_runs`, one colour per strategy). How to read them (under-training,
overfitting, early stopping) is lesson 00; lessons 01, 03, 05, 06 and 07 show them.

`LivePlot` redraws at most once per epoch, as a light PNG (no layout checks) while training
runs; when training ends it shows the figure itself, which the notebook's formatter saves as a
full PNG: a saved notebook, headless runs included, keeps a static image, never a widget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..runtime.progress import in_notebook
from ..training.callbacks import Callback, FitState
from ..training.history import History

__all__ = ["LivePlot", "plot_histories", "plot_history", "plot_runs", "plot_step_losses"]


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


def _by_name(runs: Mapping[str, Sequence[History]] | Sequence[dict]) -> dict[str, list[History]]:
    """{name: [History, ...]} from such a dict or from `strategies.run_strategies` rows."""
    if isinstance(runs, Mapping):
        out = {name: list(hs) if isinstance(hs, Sequence) else [hs] for name, hs in runs.items()}
    else:
        out = {}
        for row in runs:
            out.setdefault(row["strategy"], []).append(row["history"])
    if not out or not all(h.epochs for hs in out.values() for h in hs):
        raise ValueError("need runs with at least one recorded epoch each")
    return out


def plot_runs(
    runs: Mapping[str, Sequence[History]] | Sequence[dict],
    title: str = "",
    metric: str = "accuracy",
) -> Figure:
    """Learning curves of several strategies, each trained with one or more seeds.

    Left: training loss per step (smoothed; x in epochs) and, at each epoch's end, the
    validation loss (squares). Right: the validation `metric` per epoch. One colour per
    strategy; with several seeds, thin lines are the seeds and the thick line their mean.
    `runs`: `{name: [History, ...]}` or the rows of `strategies.run_strategies`.
    """
    by_name = _by_name(runs)
    fig = Figure(figsize=(11, 3.9))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for i, (name, histories) in enumerate(by_name.items()):
        color = f"C{i}"
        for h in histories:
            per_epoch = len(h.steps) / len(h.epochs)
            window = max(1, len(h.steps) // 12)
            smooth = _smooth(h.steps, window)
            x = (np.arange(len(smooth)) + window) / per_epoch
            ax_loss.plot(x, smooth, color=color, lw=0.8, alpha=0.45)
        for key, ax, style in (("val_loss", ax_loss, "s--"), (f"val_{metric}", ax_metric, "o-")):
            curves = [h.metric(key) for h in histories if h.metric(key)]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            mean = np.mean([c[:n] for c in curves], axis=0)
            if len(curves) > 1:
                for c in curves:
                    ax.plot(range(1, len(c) + 1), c, color=color, lw=0.6, alpha=0.35)
            ax.plot(range(1, n + 1), mean, style, color=color, lw=2, ms=6,
                    label=name if ax is ax_metric else None)  # fmt: skip
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training loss (lines), validation (squares)")
    ax_metric.set(xlabel="epoch", ylabel=f"validation {metric}", title=f"validation {metric}")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    seeds = max(len(hs) for hs in by_name.values())
    if seeds > 1:
        fig.text(0.5, 0.005, f"thin lines: each of {seeds} seeds; thick: their mean", ha="center",
                 fontsize=8, color="0.35")  # fmt: skip
    ncol = min(len(by_name), 4)
    rows = -(-len(by_name) // ncol)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05 + 0.07 * rows, 1, 1))
    handles, labels = ax_metric.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 0.03))  # fmt: skip
    return fig


class LivePlot(Callback):
    """A `fit` callback: learning curves that redraw after every epoch in a notebook (a light
    PNG), and the final figure at the end; elsewhere (scripts, CI) one final figure, saved to
    `save_to` if given."""

    def __init__(
        self, title: str = "", save_to: str | Path | None = None, live: bool | None = None
    ):
        self.title = title
        self.save_to = Path(save_to) if save_to else None
        self.live = in_notebook() if live is None else live
        self.fig = Figure(figsize=(10, 3.6))
        self._handle = None

    def on_fit_start(self, state: FitState) -> None:
        if self.live and self._handle is None:
            from IPython.display import display

            # Reserve the plot's place in the cell output now, above the epoch lines `fit`
            # prints, so every redraw lands in one spot instead of between those lines.
            self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def _frame(self):
        """The figure as it is now, as a light PNG (one draw at 72 dpi, no layout checks)."""
        from io import BytesIO

        from IPython.display import Image

        buf = BytesIO()
        self.fig.savefig(buf, format="png", dpi=72)
        return Image(buf.getvalue())

    def on_epoch_end(self, state: FitState) -> None:
        if not self.live:
            return
        from IPython.display import display

        plot_history(state.history, self.fig, self.title)
        if self._handle is None:
            self._handle = display(self._frame(), display_id=True)
        else:
            self._handle.update(self._frame())

    def on_fit_end(self, state: FitState) -> None:
        plot_history(state.history, self.fig, self.title)
        if self.save_to is not None:
            self.save_to.parent.mkdir(parents=True, exist_ok=True)
            self.fig.savefig(self.save_to, dpi=100, bbox_inches="tight")
        if self.live:
            if self._handle is not None:
                self._handle.update(self.fig)
            else:
                from IPython.display import display

                display(self.fig)


def plot_histories(
    histories: dict[str, History],
    metric: str = "accuracy",
    title: str = "",
    mark_best: str | None = "val_loss",
) -> Figure:
    """Several runs overlaid, one colour each: loss per epoch on the left, `metric` on the right;
    training dashed, validation solid. `mark_best` circles each run's best epoch by that
    validation number (where early stopping with `BestWeights` would keep the weights)."""
    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for i, (name, history) in enumerate(histories.items()):
        epochs = history.metric("epoch")
        for ax, key in ((ax_loss, "loss"), (ax_metric, metric)):
            for split, style in (("train", "--"), ("val", "-")):
                values = history.metric(f"{split}_{key}")
                if values:
                    label = f"{name}, {'training' if split == 'train' else 'validation'}"
                    ax.plot(epochs, values, style, color=f"C{i}", lw=1.4, label=label)
        if mark_best and history.metric(mark_best):
            best = history.best_epoch(mark_best)
            k = epochs.index(best)
            for ax, key in ((ax_loss, "val_loss"), (ax_metric, f"val_{metric}")):
                if history.metric(key):
                    ax.plot(best, history.metric(key)[k], "o", ms=9, mfc="none", color=f"C{i}")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss (dashed: training)")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"{metric} (circle: best epoch)")
    ax_loss.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_step_losses(
    histories: dict[str, History],
    steps: int | None = None,
    reference: float | None = None,
    reference_label: str = "",
    title: str = "training loss per step",
) -> Figure:
    """The per-step training loss of several runs on one plot (the first `steps` steps), to
    compare how they start; `reference` draws a dashed line (e.g. ln C, the loss of guessing)."""
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    for i, (name, history) in enumerate(histories.items()):
        values = history.steps[:steps] if steps else history.steps
        ax.plot(np.arange(1, len(values) + 1), values, color=f"C{i}", lw=1.2, label=name)
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=1, label=reference_label or None)
    ax.set(xlabel="optimizer step", ylabel="loss (batch)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
