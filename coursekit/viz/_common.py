"""What every plot module shares: showing the returned Figures inline in a notebook.

The functions here return plain `matplotlib.figure.Figure`s (no pyplot global state), so a
notebook needs a PNG formatter for them; `coursekit.viz` registers it once, on import.
Every lesson that shows a figure (00-06).
"""

from __future__ import annotations

from matplotlib.figure import Figure


def _figure_png(fig: Figure) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def show_figures_inline() -> None:
    """Let notebooks display the Figures these functions return (without pyplot's global state)."""
    from IPython import get_ipython

    formatter = get_ipython().display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _figure_png)
