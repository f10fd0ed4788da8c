"""Plots of a data-efficiency table (`experiments.data_efficiency`): test accuracy against
labelled examples per class, and against the seconds it took, one panel per task.
Lesson 02.

Every point carries an error bar of ± 1 standard error: from the test-set size (the binomial SE
of an accuracy, `coursekit.claims.accuracy_se`) and, with several seeds, the seed-to-seed spread.
Two methods whose bars overlap at a shot count are not distinguishable in this run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..claims import accuracy_se

__all__ = ["plot_data_efficiency", "plot_time_to_accuracy"]


def _panels(rows: Sequence[dict], key: str = "task") -> dict[str, list[dict]]:
    """Rows grouped by `key` (one subplot per task), in order of first appearance."""
    panels: dict[str, list[dict]] = {}
    for row in rows:
        panels.setdefault(str(row.get(key, "")), []).append(row)
    return panels


def _standard_error(rows: Sequence[dict], y: str) -> float:
    """SE of the mean of `y` over `rows` (seeds): binomial (accuracy with n_test) + seed spread."""
    values = [r[y] for r in rows]
    seeds = float(np.var(values, ddof=1)) / len(values) if len(values) > 1 else 0.0
    n_test = rows[0].get("n_test")
    binom = accuracy_se(float(np.mean(values)), int(n_test)) if y == "accuracy" and n_test else 0
    return float(np.sqrt(binom**2 + seeds))


def _mean_curve(rows: Sequence[dict], x: str, y: str) -> tuple[np.ndarray, ...]:
    """Per distinct `x`: mean of `y` over seeds and its standard error, sorted by x."""
    xs = sorted({r[x] for r in rows})
    groups = [[r for r in rows if r[x] == v] for v in xs]
    return (
        np.array(xs),
        np.array([np.mean([r[y] for r in g]) for g in groups]),
        np.array([_standard_error(g, y) for g in groups]),
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
    one panel per task. Points are means over seeds with error bars of ± 1 standard error.
    `chance` (one value, or one per task) draws the accuracy of guessing as a dotted line.
    """
    fig, axes, panels = _task_figure(rows)
    for ax, (task, task_rows) in zip(axes, panels.items(), strict=True):
        methods = list(dict.fromkeys(r["method"] for r in task_rows))
        for i, method in enumerate(methods):
            x, mean, se = _mean_curve(
                [r for r in task_rows if r["method"] == method], "shots", metric
            )
            ax.errorbar(x, mean, se, fmt="o-", color=f"C{i}", capsize=3, label=method)
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
            ylabel=f"test {metric} (bars: ± 1 SE)",
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
            se = [_standard_error([r], metric) for r in mine]
            ax.errorbar(t, [r[metric] for r in mine], se, fmt="o", color=f"C{i}", capsize=3,
                        label=method)  # fmt: skip
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
            xlabel=f"{time_key.replace('_', ' ')} (log scale)",
            ylabel=f"test {metric} (bars: ± 1 SE)",
            title=task,
        )
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[0])
    if title:
        fig.suptitle(title)
    return fig
