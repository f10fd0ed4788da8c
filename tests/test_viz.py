import nbformat
import torch
from matplotlib.figure import Figure

from coursekit import viz
from coursekit.params import ParamCount, count_parameters, parameter_table
from coursekit.training import History, fit

from helpers import blobs, mlp


def _history():
    return History(
        steps=[1.0, 0.8, 0.7, 0.5, 0.4, 0.3],
        epochs=[
            {"epoch": 1, "train_loss": 0.83, "val_loss": 0.7, "val_accuracy": 0.6},
            {"epoch": 2, "train_loss": 0.4, "val_loss": 0.45, "val_accuracy": 0.8},
        ],
    )


def test_plot_history_draws_losses_and_metrics():
    fig = viz.plot_history(_history())
    loss_ax, metric_ax = fig.axes
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert "train_loss" in labels and "val_loss" in labels
    (acc,) = [line for line in metric_ax.get_lines() if line.get_label() == "val_accuracy"]
    assert list(acc.get_ydata()) == [0.6, 0.8]


def test_live_plot_outside_a_notebook_renders_one_final_figure(tmp_path):
    live = viz.LivePlot(save_to=tmp_path / "curves.png", live=False)
    fit(mlp(), blobs(), blobs(seed=1), epochs=2, callbacks=[live], progress=False)
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_confusion_matrix_plot_normalises_rows():
    cm = torch.tensor([[8, 2], [1, 9]])
    fig = viz.plot_confusion_matrix(cm, ["cat", "dog"])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0.10", "0.20", "0.80", "0.90"]


def test_show_images_marks_wrong_predictions_in_red():
    fig = viz.show_images(
        torch.rand(3, 1, 8, 8), labels=[0, 1, 2], preds=[0, 1, 1], class_names=["a", "b", "c"]
    )
    titles = [ax.title for ax in fig.axes[:3]]
    assert [t.get_color() for t in titles] == ["black", "black", "red"]
    assert titles[2].get_text() == "b\n(true: c)"


def test_parameter_counts_table_and_plot():
    model = mlp()
    model[0].requires_grad_(False)
    total = count_parameters(model)
    assert (total.trainable, total.frozen) == (32 * 3 + 3, 10 * 32 + 32)
    rows = parameter_table(model)
    assert [r.name for r in rows] == ["0", "3"]
    assert rows[0] == ParamCount("0", 0, 352)
    fig = viz.plot_param_counts(rows)
    assert "99 of 451 trainable" in fig.axes[0].get_title()


def test_saved_figures_are_legible_and_report_text_that_runs_off():
    """The notebooks' PNG formatter: at least 320 px on the shorter side, and text outside the
    figure's area recorded in the image's metadata (read by coursekit.teach.outputs)."""
    import base64

    from coursekit.teach.outputs import image_size, output_problems
    from coursekit.viz._common import OUTSIDE_KEY, _png_and_metadata

    wide = Figure(figsize=(8, 1.5))
    wide.subplots().plot([0, 1])
    wide.tight_layout()
    png, metadata = _png_and_metadata(wide)
    width, height = image_size(base64.b64encode(png).decode())
    assert min(width, height) >= 320 and width > 4 * height and metadata == {}
    cut = Figure(figsize=(4, 3))
    ax = cut.subplots()
    ax.plot([0, 1])
    ax.set_ylabel("a label far too long for a figure three inches high " * 2)
    _, metadata = _png_and_metadata(cut)
    assert metadata[OUTSIDE_KEY] == [ax.get_ylabel().strip()[:60], "the y axis of 'a plot'"]
    out = {"output_type": "display_data", "data": {"image/png": base64.b64encode(png).decode()},
           "metadata": {"image/png": metadata}}  # fmt: skip
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[out])])
    assert output_problems(nb) == [
        f"cell 0: figure text runs off the figure: {metadata[OUTSIDE_KEY]}"
    ]


def test_explore_shows_the_default_as_plain_output_and_a_slider_with_a_static_text(monkeypatch):
    import IPython.display

    from coursekit.viz import explore

    shown, displayed = [], []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: displayed.append(obj))
    explore(shown.append, "k", [0, 3, 8])
    assert shown == [3], "the middle option, shown now (kept in a saved notebook)"
    (bundle,) = displayed
    assert bundle["text/plain"].startswith("(a slider: run the notebook")
    assert "application/vnd.jupyter.widget-view+json" in bundle
