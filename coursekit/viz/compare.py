"""Comparing variants of a model or a training recipe: a metric per variant (bars or lines),
a metric against a cost (one labelled point each), trainable vs frozen parameters.
Lessons 01, 03, 04 and 05.

Differences between variants are only worth reading next to their noise: pass `err` (a column of
standard errors, e.g. `accuracy_se` from `coursekit.claims.accuracy_se`) to draw error bars. An
axis that does not start at zero says so in its label (`label_y_axis`), so a small gap is never
silently magnified."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..params import ParamCount

__all__ = ["label_y_axis", "plot_param_counts", "plot_tradeoff", "plot_variants"]


def label_y_axis(ax, label: str, err: str | None = None) -> None:
    """Set the y label (a column name reads as words), naming the error bars and saying when the
    axis does not start at 0; the notes go on a line of their own, so the label fits the plot."""
    notes = []
    if err:
        notes.append("bars: ± 1 SE" if err.endswith("_se") else f"bars: ± {err.replace('_', ' ')}")
    low = ax.get_ylim()[0]
    if low > 0:
        notes.append(f"axis from {low:.2g}, not 0")
    words = label.replace("_", " ")
    ax.set_ylabel(f"{words}\n({'; '.join(notes)})" if notes else words)


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
    ax.set(xlabel=x, title=title)
    label_y_axis(ax, y, err)
    if group is not None or reference_label:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_tradeoff(
    rows: Sequence[dict],
    x: str,
    y: str,
    label: str,
    logx: bool = True,
    title: str = "",
    err: str | None = None,
) -> Figure:
    """One labelled point per row: e.g. accuracy (`y`) against trainable parameters (`x`);
    `err` names a column of y error-bar half-widths (e.g. "accuracy_se")."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for i, r in enumerate(rows):
        ax.scatter(r[x], r[y], s=60, color=f"C{i}", zorder=3)
        if err:
            ax.errorbar(r[x], r[y], r[err], color=f"C{i}", capsize=3, zorder=2)
        ax.annotate(
            str(r[label]), (r[x], r[y]), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    ax.set(xlabel=x, title=title)
    label_y_axis(ax, y, err)
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
