"""Plots of a data-efficiency table (`experiments.data_efficiency`): test accuracy against
labelled examples per class, and against the seconds it took, one panel per task.
Lesson 02.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_data_efficiency", "plot_time_to_accuracy"]


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
