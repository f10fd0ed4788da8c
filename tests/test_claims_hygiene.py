"""A claim is code: no lesson's markdown states a numeric result of the run in static text.

Results of the run (accuracies, percentages, speed-ups) are printed by code cells from the run's
own numbers, or checked with `coursekit.claims.expect`. Static prose may still quote numbers that
are not results of this run, under one rule a reviewer can apply by eye:

    a markdown paragraph that contains a result-like number (a percentage, a decimal fraction such
    as 0.88, or a multiplier such as "3x faster") must also contain a citation (a link, or a
    footnote marker `[^1]`) or mark itself as an expectation (the words "expect"/"expected"/
    "expectation", as in "What to expect in full mode"), or be followed by a code cell that
    checks it against the run (`claims.expect(...)`).

Numbers inside `inline code` are settings or formulas (`lr=1e-3`, `ln 10 = 2.303`), not results,
and are ignored; so are code cells (their output is measured) and the Colab badge.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks" / "source").glob("[0-9][0-9]_*.ipynb"))

RESULT_LIKE = re.compile(
    r"\d+(?:\.\d+)?\s?%(?!\s?(?:confidence|interval))"  # 94 %, 0.3% (not "95 % interval")
    r"|(?<![\w.])0?\.\d{2,}\b"  # 0.880, .94 (accuracy-like fractions)
    r"|\b\d+(?:\.\d+)?\s?(?:x|×)\s+(?:faster|slower|smaller|larger|bigger|more|fewer|less|"
    r"cheaper|the time)\b"
    r"|\b\d+(?:\.\d+)?\s?times\s+(?:faster|slower|cheaper|more expensive)\b",
    re.IGNORECASE,
)
CITED_OR_EXPECTED = re.compile(r"\]\(https?://|\[\^|\bexpect(?:ed|ation|ations|s)?\b", re.I)
INLINE_CODE = re.compile(r"`[^`]*`")

ALLOWED: dict[str, set[str]] = {}


def offending_paragraphs(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(cell id, paragraph) for every markdown paragraph that breaks the rule above."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        following = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        if following is not None and "claims.expect(" in following.source:
            continue  # the claim is checked right below
        for para in re.split(r"\n\s*\n", cell.source):
            text = INLINE_CODE.sub("", para)
            if RESULT_LIKE.search(text) and not CITED_OR_EXPECTED.search(text):
                found.append((cell.get("id", "?"), para.strip()))
    return found


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_markdown_states_no_uncited_result_of_the_run(path):
    nb = nbformat.read(path, as_version=4)
    allowed = ALLOWED.get(path.stem, set())
    bad = [(cid, para) for cid, para in offending_paragraphs(nb) if cid not in allowed]
    assert not bad, "\n".join(
        f"cell {cid}: {RESULT_LIKE.search(INLINE_CODE.sub('', para)).group(0)!r} in {para[:160]!r}"
        " -- print it from the run's numbers, check it with ck.claims.expect, cite its source, "
        "or mark it as a full-mode expectation"
        for cid, para in bad
    )


@pytest.mark.parametrize(
    "text, offends",
    [
        ("LoRA at 0.3% of the parameters matches full fine-tuning.", True),
        ("The head reached 0.880 against 0.940.", True),
        ("LoRA is 3x faster per step.", True),
        ("Expected in full mode: at least 90 % accuracy.", False),
        ("ImageNet has 1.28 million photos ([paper](https://arxiv.org/abs/1409.0575)), 80 % train.",
         False),
        ("The loss starts at `ln 10 = 2.303` and the rate is `0.001`.", False),
        ("We use 5, 20 and 100 examples per class, and a 95 % confidence interval.", False),
        ("A learning rate 10 times smaller.", False),
        ("The merged model is 2.5 times faster.", True),
    ],
)  # fmt: skip
def test_the_rule_flags_results_and_spares_citations_expectations_and_settings(text, offends):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    assert bool(offending_paragraphs(nb)) is offends
