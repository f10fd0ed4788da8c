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
    "plot_data_efficiency",
    "plot_time_to_accuracy",
    "plot_confusion_matrix",
    "plot_history",
    "plot_length_histogram",
    "plot_step_losses",
    "plot_variants",
    "plot_embedding_2d",
    "plot_param_counts",
    "plot_similarity",
    "plot_topk",
    "plot_tradeoff",
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


def plot_similarity(
    sim: torch.Tensor, labels: Sequence[str], title: str = "cosine similarity"
) -> Figure:
    """A heatmap of pairwise similarities with the values written in each cell."""
    n = len(labels)
    fig = Figure(figsize=(2.5 + 0.6 * n, 1.5 + 0.5 * n))
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
    fig.tight_layout()
    return fig


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


def plot_tradeoff(
    rows: Sequence[dict], x: str, y: str, label: str, logx: bool = True, title: str = ""
) -> Figure:
    """One labelled point per row: e.g. accuracy (`y`) against trainable parameters (`x`)."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for i, r in enumerate(rows):
        ax.scatter(r[x], r[y], s=60, color=f"C{i}", zorder=3)
        ax.annotate(
            str(r[label]), (r[x], r[y]), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    ax.set(xlabel=x, ylabel=y, title=title)
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


def plot_variants(
    rows: Sequence[dict],
    x: str,
    y: str,
    group: str | None = None,
    kind: str = "bar",
    title: str = "",
    reference: float | None = None,
    reference_label: str = "",
    ylim: tuple[float, float] | None = None,
    logx: bool = False,
    err: str | None = None,
) -> Figure:
    """Compare variants from a tidy table (one dict per run, e.g. {"variant": ..., "acc": ...}).

    kind="bar": one bar of `y` per value of `x` (side by side per `group`), labelled with its
    value; kind="line": `y` against a numeric `x` (ticks at its values; `logx` for a log2 axis),
    one line per `group`. `reference` draws a dashed horizontal line (chance level, ln C, ...);
    `err` names a column of error-bar half-widths (e.g. the standard error of each accuracy).
    """
    if kind not in ("bar", "line"):
        raise ValueError(f"kind must be 'bar' or 'line', got {kind!r}")
    columns = [c for c in (x, y, group, err) if c is not None]
    if not rows or any(c not in r for c in columns for r in rows):
        raise ValueError(f"every row needs the columns {columns}")
    groups = list(dict.fromkeys(r[group] for r in rows)) if group else [None]
    xs = list(dict.fromkeys(r[x] for r in rows))
    fig = Figure(figsize=(max(4.5, 0.9 * len(xs) * len(groups) + 2), 3.4))
    ax = fig.subplots()
    width = 0.8 / len(groups)
    for i, g in enumerate(groups):
        sub = [r for r in rows if group is None or r[group] == g]
        label = None if g is None else f"{group}={g}"
        yerr = [r[err] for r in sub] if err else None
        if kind == "line":
            xy = [r[x] for r in sub], [r[y] for r in sub]
            ax.errorbar(*xy, yerr, fmt="o-", color=f"C{i}", capsize=3, label=label)
            continue
        pos = [xs.index(r[x]) + (i - (len(groups) - 1) / 2) * width for r in sub]
        bars = ax.bar(
            pos, [r[y] for r in sub], width * 0.95, yerr=yerr, capsize=4, color=f"C{i}", label=label
        )
        inside = {"label_type": "center", "color": "white"} if err else {"padding": 2}
        ax.bar_label(bars, fmt="%.3g", fontsize=8, **inside)
    if kind == "bar":
        ax.set_xticks(range(len(xs)), [str(v) for v in xs], fontsize=8)
    else:
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(v) for v in xs])
        ax.minorticks_off()
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=1, label=reference_label or None)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:
        ax.margins(y=0.15)
    ax.set(xlabel=x, ylabel=f"{y} (bars: ± {err})" if err else y, title=title)
    if group is not None or reference_label:
        ax.legend(fontsize=8)
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


def _panels(rows: Sequence[dict], key: str = "task") -> dict[str, list[dict]]:
    """Rows grouped by `key` (one subplot per task), in order of first appearance."""
    panels: dict[str, list[dict]] = {}
    for row in rows:
        panels.setdefault(str(row.get(key, "")), []).append(row)
    return panels


def _mean_curve(rows: Sequence[dict], x: str, y: str) -> tuple[np.ndarray, ...]:
    """Per distinct `x`: mean and standard deviation of `y` over seeds, sorted by x."""
    xs = sorted({r[x] for r in rows})
    groups = [[r[y] for r in rows if r[x] == v] for v in xs]
    return (
        np.array(xs),
        np.array([np.mean(g) for g in groups]),
        np.array([np.std(g) for g in groups]),
    )


def _task_figure(rows: Sequence[dict]) -> tuple[Figure, np.ndarray, dict]:
    """A figure with one panel per task of a data-efficiency table: (fig, axes, panels)."""
    if not rows:
        raise ValueError("no rows to plot: run experiments.data_efficiency first")
    panels = _panels(rows)
    fig = Figure(figsize=(5.2 * len(panels), 3.8))
    return fig, np.atleast_1d(fig.subplots(1, len(panels))), panels


def _legend_below(fig: Figure, ax) -> None:
    """One legend for all panels, under them, so it never hides a curve."""
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)


def plot_data_efficiency(
    rows: Sequence[dict],
    metric: str = "accuracy",
    title: str = "",
    chance: dict[str, float] | float | None = None,
) -> Figure:
    """Test `metric` against labelled examples per class, one line per method.

    `rows` is the table from `experiments.data_efficiency`; rows with a "task" column are drawn in
    one panel per task. Several seeds give the mean with a band of one standard deviation.
    `chance` (one value, or one per task) draws the accuracy of guessing as a dotted line.
    """
    fig, axes, panels = _task_figure(rows)
    for ax, (task, task_rows) in zip(axes, panels.items(), strict=True):
        methods = list(dict.fromkeys(r["method"] for r in task_rows))
        for i, method in enumerate(methods):
            x, mean, std = _mean_curve(
                [r for r in task_rows if r["method"] == method], "shots", metric
            )
            ax.plot(x, mean, "o-", color=f"C{i}", label=method)
            if np.any(std > 0):
                ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.15)
            for xi, yi in zip(x, mean, strict=True):
                ax.annotate(
                    f"{yi:.2f}",
                    (xi, yi),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=7,
                    color=f"C{i}",
                )
        level = chance.get(task) if isinstance(chance, dict) else chance
        if level is not None:
            ax.axhline(level, color="0.5", ls=":", lw=1, label="chance")
        ax.set_xscale("log")
        shots = sorted({r["shots"] for r in task_rows})
        ax.set_xticks(shots, [str(s) for s in shots])
        ax.minorticks_off()
        ax.set_ylim(0, 1.05)
        ax.set(
            xlabel="labelled training examples per class (log scale)",
            ylabel=f"test {metric}",
            title=task,
        )
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[0])
    if title:
        fig.suptitle(title)
    return fig


def plot_time_to_accuracy(
    rows: Sequence[dict], time_key: str = "seconds", metric: str = "accuracy", title: str = ""
) -> Figure:
    """Test `metric` against seconds spent, one marker per run labelled with its examples per
    class: the further up and left, the better. `time_key` picks the column ("seconds" is the
    whole run including testing; "train_seconds" only the training)."""
    fig, axes, panels = _task_figure(rows)
    for ax, (task, task_rows) in zip(axes, panels.items(), strict=True):
        methods = list(dict.fromkeys(r["method"] for r in task_rows))
        for i, method in enumerate(methods):
            mine = sorted((r for r in task_rows if r["method"] == method), key=lambda r: r["shots"])
            t = [max(r[time_key], 1e-3) for r in mine]
            ax.plot(t, [r[metric] for r in mine], "o", color=f"C{i}", label=method)
            for k, (r, ti) in enumerate(zip(mine, t, strict=True)):
                ax.annotate(
                    f"{r['shots']}/class",
                    (ti, r[metric]),
                    textcoords="offset points",
                    xytext=(0, 7 if k % 2 == 0 else -13),  # alternate: neighbours never collide
                    ha="center",
                    fontsize=7,
                    color=f"C{i}",
                )
        ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set(
            xlabel=f"{time_key.replace('_', ' ')} (log scale)", ylabel=f"test {metric}", title=task
        )
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[0])
    if title:
        fig.suptitle(title)
    return fig
