"""Plots for a strategy sweep (`strategies.run_strategies`) and a forgetting table
(`forgetting.measure_forgetting`): what each strategy bought, and what it cost.
Lesson 06.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from .compare import label_y_axis

__all__ = ["COST_AXES", "plot_forgetting", "plot_strategies"]

# (column, axis label, log scale) for each cost panel of `plot_strategies`
COST_AXES = (
    ("trainable", "trainable parameters (log scale)", True),
    ("seconds", "seconds, pre-trained to trained", False),
    ("peak_mb", "peak memory added by training (MB)", False),
)


def plot_strategies(
    rows: Sequence[dict],
    metric: str = "accuracy",
    costs: Sequence[tuple[str, str, bool]] = COST_AXES,
    title: str = "",
) -> Figure:
    """One panel per cost (x) against `metric` (y), one colour per strategy, shared y axis.

    A strategy up and to the left of another is better on both counts; the legend under the
    panels names the colours, so no label hides a point. Rows with a `<metric>_se` column (as
    `run_strategies` gives for accuracy) get error bars of ± 1 standard error: strategies whose
    bars overlap are not distinguishable on this test set.
    """
    missing = {c for c, *_ in costs} | {metric, "strategy"}
    missing -= set().union(*(r.keys() for r in rows)) if rows else set()
    if not rows or missing:
        raise ValueError(f"need rows from run_strategies with the columns {sorted(missing)}")
    ncol = min(len(rows), 3)
    legend_rows = (len(rows) + ncol - 1) // ncol
    height = 3.2 + 0.25 * legend_rows
    fig = Figure(figsize=(4 * len(costs), height))
    axes = fig.subplots(1, len(costs), sharey=True, squeeze=False)[0]
    markers = "osD^vP*X"
    for ax, (column, label, log) in zip(axes, costs, strict=True):
        for i, r in enumerate(rows):
            ax.scatter(
                r[column],
                r[metric],
                s=70,
                color=f"C{i}",
                marker=markers[i % len(markers)],
                zorder=3,
                label=r["strategy"],
            )
            if f"{metric}_se" in r:
                ax.errorbar(r[column], r[metric], r[f"{metric}_se"], color=f"C{i}", capsize=3)
        if log:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.margins(x=0.12, y=0.15)
        ax.set_xlabel(label)
    label_y_axis(axes[0], metric, "1 SE" if f"{metric}_se" in rows[0] else None)
    if title:
        fig.suptitle(title)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, (0.1 + 0.25 * legend_rows) / height, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    return fig


def plot_forgetting(rows: Sequence[dict], title: str = "") -> Figure:
    """Two bar panels per model of a forgetting table: the held-out ability (accuracy, with the
    reference's as a dashed line) and the drift of the embedding geometry."""
    if not rows or any(k not in r for k in ("model", "ability", "drift") for r in rows):
        raise ValueError("need rows from measure_forgetting (model, ability, drift)")
    names = [r["model"] for r in rows]
    fig = Figure(figsize=(max(8.0, 1.7 * len(rows) + 3), 3.8))
    left, right = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(len(rows))]
    bars = left.bar(range(len(rows)), [r["ability"] for r in rows], color=colors)
    left.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    left.axhline(rows[0]["ability"], color="0.4", ls="--", lw=1)
    left.set_ylim(0, 1.08)
    left.set(ylabel="held-out accuracy (nearest centroid)", title="ability kept")
    bars = right.bar(range(len(rows)), [r["drift"] for r in rows], color=colors)
    right.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    right.margins(y=0.2)
    right.set(ylabel="1 - similarity correlation", title="embedding drift (0 = unchanged)")
    for ax in (left, right):
        ax.set_xticks(range(len(rows)), names, rotation=20, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
