"""Progress bars that work in JupyterLab, Colab, VS Code, a terminal and a CI log.

In a notebook with ipywidgets the bar is a widget (`tqdm.notebook`); anywhere else it is text. In a
log that is not a terminal (CI), text bars refresh rarely so the log stays readable. Set
`COURSEKIT_PROGRESS=0` to turn bars off.
Every lesson that trains or extracts features (00, 02-06).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, VS Code notebooks)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in {"ZMQInteractiveShell", "Shell"}


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(
    total: int | None = None, desc: str = "", leave: bool = True, disable: bool = False, **kw: Any
):
    """A tqdm bar suited to where we run; `.set_postfix()` and `.update()` as usual."""
    disable = disable or os.environ.get("COURSEKIT_PROGRESS", "1") == "0"
    if in_notebook() and _widgets_available():
        from tqdm.notebook import tqdm

        return tqdm(total=total, desc=desc, leave=leave, disable=disable, **kw)
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        leave=leave,
        disable=disable,
        mininterval=0.1 if tty else 10.0,
        dynamic_ncols=tty,
        **kw,
    )
