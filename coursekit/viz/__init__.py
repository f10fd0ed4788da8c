"""Plots a learner would rather look at than read: learning curves (live during `fit`),
confusion matrices, image grids with predictions, comparisons of variants and strategies.

Every function returns the matplotlib Figure so notebooks can tweak or save it. The functions
live in one module per concept (`curves`, `efficiency`, `images`, `compare`, `heatmaps`,
`distributions`, `strategies`); import them from here: `from coursekit import viz`.

Importing this package (or any of its modules, which imports it first) registers, once, a PNG
formatter so a notebook displays the returned Figures inline without pyplot's global state.
Every lesson (00-08) plots through it.
"""

from __future__ import annotations

from ..runtime.progress import in_notebook
from ._common import show_figures_inline
from .compare import plot_param_counts, plot_tradeoff, plot_variants
from .curves import LivePlot, plot_histories, plot_history, plot_runs, plot_step_losses
from .distributions import plot_embedding_2d, plot_length_histogram
from .efficiency import plot_data_efficiency, plot_time_to_accuracy
from .explore import explore
from .heatmaps import plot_confusion_matrix, plot_similarity
from .images import plot_topk, show_feature_maps, show_images
from .strategy_plots import plot_forgetting, plot_strategies

if in_notebook():
    show_figures_inline()

__all__ = [
    "LivePlot",
    "explore",
    "plot_confusion_matrix",
    "plot_data_efficiency",
    "plot_embedding_2d",
    "plot_forgetting",
    "plot_histories",
    "plot_history",
    "plot_length_histogram",
    "plot_param_counts",
    "plot_runs",
    "plot_similarity",
    "plot_step_losses",
    "plot_strategies",
    "plot_time_to_accuracy",
    "plot_topk",
    "plot_tradeoff",
    "plot_variants",
    "show_feature_maps",
    "show_images",
]
