"""What every plot module shares: showing the returned Figures inline in a notebook, legibly.

The functions here return plain `matplotlib.figure.Figure`s (no pyplot global state), so a
notebook needs a PNG formatter for them; `coursekit.viz` registers it once, on import. The
formatter first wraps titles and axis labels longer than their plot (`wrap_labels`: a y label
built from a column name and its notes, a long title) and lays out a figure whose labels fall
off its edges (one made without a layout), then saves the figure's tight bounding
box (nothing is cut off), at a resolution that makes the image at least `MIN_SIDE_PX` on its
shorter side, and records in the image's metadata any text that still runs off the figure's own
area, which the output checks of `coursekit.teach.outputs` report.
Every lesson that shows a figure (00-07).
"""

from __future__ import annotations

import math
import textwrap

from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

MIN_SIDE_PX = 320  # saved notebooks: no image under 300 px on a side
DPI = 90
OUTSIDE_KEY = "coursekit/text_outside"  # read by coursekit.teach.outputs


def text_outside(fig: Figure, renderer=None) -> list[str]:
    """The texts of `fig` that extend beyond the figure's own area (more than 2 px): titles,
    axis labels and figure texts by their text, an axis (its tick labels) by its plot's title.
    With a `renderer`, `fig` must have been laid out with it (drawn) already."""
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


def _wrapped(text, length_in: float) -> bool:
    """Wrap matplotlib Text `text` to lines that fit `length_in` inches; True if it changed."""
    content = text.get_text()
    chars = max(12, int(length_in * 72 / (0.55 * text.get_fontsize())))
    if not content or "\n" in content or len(content) <= chars:
        return False
    text.set_text(textwrap.fill(content, chars, break_long_words=False))
    return True


def wrap_labels(fig: Figure) -> bool:
    """Wrap every title and axis label longer than its plot's side (the suptitle: the figure's
    width), and lay the figure out again if anything changed; True if it did."""
    width, height = fig.get_size_inches()
    changed = False
    supers = (getattr(fig, name, None) for name in ("_suptitle", "_supxlabel"))
    for text in (t for t in supers if t is not None):
        changed |= _wrapped(text, width)
    for ax in fig.axes:
        box = ax.get_position()
        changed |= _wrapped(ax.title, box.width * width)
        changed |= _wrapped(ax.xaxis.label, box.width * width)
        changed |= _wrapped(ax.yaxis.label, box.height * height)
    if changed and not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.tight_layout()  # (a constrained layout redoes itself when drawn)
    return changed


def _png_and_metadata(fig: Figure) -> tuple[bytes, dict]:
    """The PNG of `fig`'s tight bounding box, at least MIN_SIDE_PX on its shorter side, and the
    metadata naming text that runs off the figure. Lays the figure out once, renders it once."""
    from io import BytesIO

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    wrap_labels(fig)
    fig.draw_without_rendering()
    outside = text_outside(fig, renderer)
    if outside and not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.tight_layout()  # a figure drawn without a layout: labels fall off its edges
        fig.draw_without_rendering()
        outside = text_outside(fig, renderer)
    tight = fig.get_tightbbox(renderer).padded(0.1)  # inches, as savefig's bbox_inches="tight"
    dpi = max(DPI, math.ceil(MIN_SIDE_PX / max(min(tight.width, tight.height), 0.1)))
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=min(dpi, 4 * DPI), bbox_inches=tight)
    return buf.getvalue(), ({OUTSIDE_KEY: outside} if outside else {})


def _figure_png(fig: Figure):
    png, metadata = _png_and_metadata(fig)
    return (png, metadata) if metadata else png


def show_figures_inline() -> None:
    """Let notebooks display the Figures these functions return (without pyplot's global state)."""
    from IPython import get_ipython

    formatter = get_ipython().display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)
