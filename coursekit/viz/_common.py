"""What every plot module shares: showing the returned Figures inline in a notebook, legibly.

The functions here return plain `matplotlib.figure.Figure`s (no pyplot global state), so a
notebook needs a PNG formatter for them; `coursekit.viz` registers it once, on import. The
formatter saves the figure's tight bounding box (nothing is cut off), at a resolution that makes
the image at least `MIN_SIDE_PX` on its shorter side, and records in the image's metadata any
text that runs off the figure's own area (a label too long for its layout), which the output
checks of `coursekit.teach.outputs` report.
Every lesson that shows a figure (00-07).
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure

MIN_SIDE_PX = 320  # saved notebooks: no image under 300 px on a side
DPI = 90
OUTSIDE_KEY = "coursekit/text_outside"  # read by coursekit.teach.outputs


def text_outside(fig: Figure, renderer=None) -> list[str]:
    """The texts of `fig` that extend beyond the figure's own area (more than 2 px): titles,
    axis labels and figure texts by their text, tick labels as "tick labels of <axes>"."""
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # lay out ticks and labels where they will be drawn
    box = fig.bbox

    def off(ext) -> bool:
        return (
            ext.x0 < box.x0 - 2 or ext.y0 < box.y0 - 2 or ext.x1 > box.x1 + 2 or ext.y1 > box.y1 + 2
        )

    outside = []
    supers = (getattr(fig, name, None) for name in ("_suptitle", "_supxlabel", "_supylabel"))
    named = list(fig.texts) + [t for t in supers if t is not None]
    for ax in fig.axes:
        named += [ax.title, ax.xaxis.label, ax.yaxis.label]
    for text in named:
        if text.get_visible() and text.get_text().strip() and off(text.get_window_extent(renderer)):
            outside.append(text.get_text().strip()[:60])
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            ext = axis.get_tightbbox(renderer)  # the visible ticks and the label
            if ext is not None and off(ext):
                outside.append(f"the {axis.axis_name} axis of {ax.get_title() or 'a plot'!r}")
    return outside


def _png_and_metadata(fig: Figure) -> tuple[bytes, dict]:
    from io import BytesIO

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)  # inches
    dpi = max(DPI, math.ceil(MIN_SIDE_PX / max(min(tight.width, tight.height), 0.1)))
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=min(dpi, 4 * DPI), bbox_inches="tight")
    outside = text_outside(fig)
    return buf.getvalue(), ({OUTSIDE_KEY: outside} if outside else {})


def _figure_png(fig: Figure):
    png, metadata = _png_and_metadata(fig)
    return (png, metadata) if metadata else png


def show_figures_inline() -> None:
    """Let notebooks display the Figures these functions return (without pyplot's global state)."""
    from IPython import get_ipython

    formatter = get_ipython().display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)
