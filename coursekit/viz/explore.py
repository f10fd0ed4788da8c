"""A slider over a few settings that also reads well in a saved notebook (lesson 04).

`ipywidgets.interactive` draws its output inside a widget: GitHub, nbviewer and a notebook
opened without a live kernel show nothing there, only a repr such as
`interactive(children=(SelectionSlider(...`. `explore` instead shows the default choice as plain
output first (kept in the saved notebook), then, where widgets work, a slider whose picks appear
below it; a saved copy shows one line of text in the slider's place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["explore"]

STATIC_TEXT = "(a slider: run the notebook in JupyterLab or Colab to pick another {name})"


def explore(
    show: Callable[[Any], None], name: str, options: Sequence[Any], value: Any = None
) -> None:
    """Call `show(value)` now (default: the middle option), then offer a slider over `options`
    that calls `show` again for each pick (where ipywidgets is installed)."""
    options = list(options)
    value = options[len(options) // 2] if value is None else value
    show(value)
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        return
    out = widgets.Output()
    slider = widgets.SelectionSlider(options=options, value=value, description=name)

    def picked(change: dict) -> None:
        out.clear_output(wait=True)
        with out:
            show(change["new"])

    slider.observe(picked, names="value")
    box = widgets.VBox([slider, out])
    bundle = getattr(box, "_repr_mimebundle_", None)
    if bundle is None:  # ipywidgets 7 (Colab): the view data its own display would send
        view = {"version_major": 2, "version_minor": 0, "model_id": box.model_id}
        data = {"application/vnd.jupyter.widget-view+json": view}
    else:
        data = bundle()
        data = data[0] if isinstance(data, tuple) else data
    display({**data, "text/plain": STATIC_TEXT.format(name=name)}, raw=True)
