"""What a learner should never see in a saved (executed) notebook, as concrete detectors.

A lesson's saved outputs are read on GitHub, in a static viewer and in the learner's own copy
long after the kernel is gone, so every output must read well as it is:

- no raw reprs of objects (`Verdict(name_a=...`, `Measure(...)`, `<... object at 0x...>`,
  `<Figure size ...>` standing in for a plot): print a sentence or a table instead;
- no widget reprs (`interactive(children=...`, `HBox(children=...`, `FloatProgress(...`): a
  static view shows them as nothing; show a static figure;
- no progress-bar fragments (`%|`): bars are off in saved runs (`COURSEKIT_PROGRESS=0`);
- no library warnings on stderr (`FutureWarning`, `UserWarning`...): silence them at the source;
- no paths of the machine that ran it (`/root/`, `/home/`, `/tmp/`, `site-packages`...);
- no figure whose text runs off it (`coursekit.viz` records that in the image's metadata when
  it draws the figure) and no image under 300 px on a side;
- no code cell over 15 lines in a lesson (`code_cell_problems`): helpers belong in the package;
  and no `matplotlib.pyplot` in a lesson: importing it replaces the course's figure formatter
  (small images, no checks); plot with `coursekit.viz` or a `matplotlib.figure.Figure`.

`tests/test_lessons.py` runs these over every lesson as executed by the tests (and over any
executed copies found in build/notebooks/).
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

__all__ = [
    "MAX_CODE_LINES",
    "MIN_IMAGE_PX",
    "code_cell_problems",
    "image_size",
    "output_problems",
    "text_problems",
]

MAX_CODE_LINES = 15
MIN_IMAGE_PX = 300
CUT_OFF = "coursekit/text_outside"  # image metadata written by coursekit.viz._common

TEXT_RULES: list[tuple[str, re.Pattern]] = [
    (
        "a raw repr of an object",
        re.compile(
            r"\b(?:Verdict|Measure|Settings|NotebookRun|HardwareInfo|PrecisionPolicy|ParamCount|"
            r"FitState|History|Question|Result|Row|Run|Report)\([a-z_]\w*="
            r"|<[\w.]+ object at 0x[0-9a-f]+>|<Figure size \d+x\d+ with \d+ Axes>"
        ),
    ),
    (
        "a widget repr (a static view shows nothing)",
        re.compile(
            r"\b(?:interactive|HBox|VBox|Tab|Accordion)\(children=|(?:Int|Float)Progress\(|"
            r"(?:SelectionSlider|IntSlider|FloatSlider|Dropdown|Output)\(\w*="
        ),
    ),
    ("a progress-bar fragment", re.compile(r"\d%\|")),
    ("a path of this machine", re.compile(r"/root/|/home/\w|/tmp/|/Users/\w|site-packages|/work/")),
]
WARNING = re.compile(r"\b\w*Warning\b:?|warnings\.warn")


def text_problems(text: str, stream: str = "stdout") -> list[str]:
    """What is wrong with one text output (`stream`: stdout, stderr or a display's text)."""
    found = [
        f"{what}: {m.group(0)!r}" for what, rule in TEXT_RULES for m in [rule.search(text)] if m
    ]
    if stream == "stderr" and WARNING.search(text):
        line = next(x for x in text.splitlines() if WARNING.search(x))
        found.append(f"a warning on stderr: {line.strip()[:120]!r}")
    return found


def image_size(png_base64: str) -> tuple[int, int]:
    """(width, height) in pixels of a base64-encoded PNG, read from its header."""
    head = base64.b64decode(png_base64[:64])
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", head[16:24])


def _texts(output: Any) -> list[tuple[str, str]]:
    kind = output.get("output_type")
    if kind == "stream":
        return [(output.get("name", "stdout"), output.get("text", ""))]
    if kind == "error":
        return [("error", f"{output.get('ename')}: {output.get('evalue')}")]
    data = output.get("data", {})
    if "image/png" in data:  # the text/plain beside a picture is never shown
        return []
    return [("display", data[k]) for k in ("text/plain", "text/html", "text/markdown") if k in data]


def output_problems(nb: Any) -> list[str]:
    """Every problem of the executed notebook `nb`'s saved outputs, as "cell N: ..." lines."""
    problems = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            for stream, text in _texts(output):
                text = "".join(text) if isinstance(text, list) else text
                if stream == "error":
                    problems.append(f"cell {i}: an error: {text[:200]}")
                    continue
                problems += [f"cell {i}: {p}" for p in text_problems(text, stream)]
            png = output.get("data", {}).get("image/png")
            if png:
                width, height = image_size(png)
                if min(width, height) < MIN_IMAGE_PX:
                    problems.append(
                        f"cell {i}: a {width}x{height} px image (under {MIN_IMAGE_PX} px a side)"
                    )
                outside = output.get("metadata", {}).get("image/png", {}).get(CUT_OFF)
                if outside:
                    problems.append(f"cell {i}: figure text runs off the figure: {outside}")
    return problems


PYPLOT = re.compile(r"^\s*(?:import matplotlib\.pyplot|from matplotlib import pyplot)", re.M)


def code_cell_problems(nb: Any, max_lines: int = MAX_CODE_LINES) -> list[str]:
    """Code cells of a lesson longer than `max_lines` lines (the Colab setup cell excepted), and
    cells that import matplotlib.pyplot."""
    from ..runtime.colab import is_setup_cell

    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_setup_cell(cell.source):
            continue
        if PYPLOT.search(cell.source):
            problems.append(f"cell {i}: imports matplotlib.pyplot (use coursekit.viz or a Figure)")
        lines = [x for x in cell.source.splitlines() if x.strip() and not x.startswith("#@title")]
        if len(lines) > max_lines:
            problems.append(f"cell {i}: {len(lines)} lines of code (at most {max_lines})")
    return problems
