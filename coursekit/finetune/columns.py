"""Which column holds the text and which the label, when a table does not say (lesson 07).

A spreadsheet export rarely names its columns `text` and `label`: it has 'description' and
'Section', or blank headers (which pandas and `datasets` call 'Unnamed: 0', 'Unnamed: 1', ...).
`pick_columns` takes the name you give, else a usual name ("text", "review", ...; "label",
"class", ...), else the column whose content makes the choice plain:

- the text: the string column with the most words per row, by a clear margin (1.5 times the
  runner-up's); columns where most rows repeat a value are not candidates (labels do that);
- the label: a string column, or failing one a whole-number column, with few distinct values
  for its rows (at least 2 values, at least 3 rows per value on average), other than the text.

What was picked is said (in `notes`, printed by `load_data` and in the data report) with how to
pick otherwise. When the content does not decide (two texts of similar length, two label-like
string columns) it refuses, listing the candidates. Large tables are judged on 5,000 rows spread
evenly through the file.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .userdata import DataError, option

__all__ = ["LABEL_NAMES", "TEXT_NAMES", "header_is_data", "pick_columns", "value_kind"]

TEXT_NAMES = ("text", "sentence", "review", "content", "tweet", "body", "document")
LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "topic")
SAMPLE_ROWS = 5000
CLEAR_MARGIN = 1.5  # the text column has this many times the runner-up's words per row
ROWS_PER_VALUE = 3  # a label column has at least this many rows per distinct value
MOSTLY_DISTINCT = 0.5  # a text column: at least this fraction of its rows are distinct


def value_kind(v: Any) -> str:
    """'number' (a whole number, also written as text), 'text', 'bool' or the type's name."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer()):
        return "number"
    if isinstance(v, str):
        return "number" if v.strip().lstrip("-").isdigit() else "text"
    return type(v).__name__


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v)


@dataclass
class _Column:
    """What a column's (sampled) content looks like."""

    name: str
    kind: str  # "text", "number", or "mixed"/other: never a text or label
    rows: int  # non-missing values in the sample
    distinct: int
    words: float  # mean words per value (text columns)

    def describe(self) -> str:
        if self.kind == "text" and self.distinct > self.rows * MOSTLY_DISTINCT:
            return f"{self.name!r} ({self.words:.1f} words per row)"
        return f"{self.name!r} ({self.distinct:,} distinct values in {self.rows:,} rows)"


def _profile(table: Any) -> list[_Column]:
    n = len(table)
    if n > SAMPLE_ROWS:
        table = table.select(np.linspace(0, n - 1, SAMPLE_ROWS).astype(int).tolist())
    out = []
    for name in table.column_names:
        names = getattr(table.features.get(name), "names", None)  # a datasets.ClassLabel
        values = [v for v in table[name] if not _missing(v)]
        kinds = {"text"} if names else {value_kind(v) for v in values}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        words = float(np.mean([len(str(v).split()) for v in values])) if values else 0.0
        out.append(_Column(name, kind, len(values), len({str(v) for v in values}), words))
    return out


def _named(columns: list[str], wanted: str | None, guesses: tuple[str, ...], role: str,
           where: str) -> str | None:  # fmt: skip
    """The column the user named (an error with the closest names if there is none), else one
    with a usual name for `role`, else None."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        close = difflib.get_close_matches(wanted, columns, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"{where}: no column {wanted!r}.{hint} The columns are: {', '.join(columns)}. "
            f"Name the {role} column with {option(f'{role}_column')}."
        )
    by_lower = {c.lower(): c for c in columns}
    return next((by_lower[g] for g in guesses if g in by_lower), None)


def _refuse(where: str, role: str, why: str, candidates: list[_Column]) -> DataError:
    usual = ", ".join(TEXT_NAMES if role == "text" else LABEL_NAMES)
    listed = ": " + ", ".join(c.describe() for c in candidates) if candidates else ""
    example = option(f"{role}_column", candidates[0].name if candidates else ...)
    return DataError(
        f"{where}: no column is named like a {role} ({usual}) and {why}{listed}. "
        f"Say which column holds the {role}, e.g. {example}."
    )


def _text_by_content(profile: list[_Column], other: str | None, where: str) -> tuple[str, str]:
    texts = [c for c in profile if c.kind == "text" and c.name != other]
    varied = [c for c in texts if c.distinct > c.rows * MOSTLY_DISTINCT] or texts
    ranked = sorted(varied, key=lambda c: -c.words)
    if not ranked:
        raise _refuse(where, "text", "no column holds text", [])
    best, rest = ranked[0], ranked[1:]
    if rest and best.words < CLEAR_MARGIN * rest[0].words:
        raise _refuse(where, "text", "several columns hold texts of similar length", ranked)
    runner = f"; next {rest[0].describe()}" if rest else ""
    return best.name, f"the one with the most words per row: {best.describe()}{runner}"


def _label_by_content(profile: list[_Column], text: str, where: str) -> tuple[str, str]:
    fits = [
        c
        for c in profile
        if c.name != text
        and c.kind in ("text", "number")
        and 2 <= c.distinct <= c.rows / ROWS_PER_VALUE
    ]
    strings = [c for c in fits if c.kind == "text"]
    chosen = strings or fits
    if not chosen:
        raise _refuse(where, "label", "no column has few distinct values for its rows", [])
    if len(chosen) > 1:
        raise _refuse(where, "label", "several columns could be it", chosen)
    others = [c for c in fits if c is not chosen[0]]
    also = (
        f" (names preferred to numbers: {', '.join(c.describe() for c in others)})"
        if others
        else ""
    )
    kind = "names" if chosen[0].kind == "text" else "whole numbers"
    return chosen[0].name, f"{kind} with few distinct values: {chosen[0].describe()}{also}"


def pick_columns(
    table: Any, text_column: str | None, label_column: str | None, where: str
) -> tuple[str, str, list[str]]:
    """(text column, label column, notes saying which were picked by content and why)."""
    columns = list(table.column_names)
    text = _named(columns, text_column, TEXT_NAMES, "text", where)
    label = _named(columns, label_column, LABEL_NAMES, "label", where)
    if text is not None and label is not None:
        return text, label, []
    profile, notes = _profile(table), []
    if text is None:
        text, why = _text_by_content(profile, label, where)
        notes.append(f"text column: {text!r}, picked by content as {why}.")
    if label is None:
        label, why = _label_by_content(profile, text, where)
        notes.append(f"label column: {label!r}, picked by content as {why}.")
    notes.append(f"  (to choose others: {option('text_column')}, {option('label_column')})")
    return text, label, notes


def header_is_data(table: Any) -> str:
    """Why the first line of a CSV looks like a row of data rather than column names (a column
    named after one of its own values, like 'positive' in a column of positive/negative), or ''."""
    sample = table.select(range(min(len(table), SAMPLE_ROWS)))
    for name in table.column_names:
        if name.startswith("Unnamed: "):
            continue
        values = {str(v).strip() for v in sample[name] if not _missing(v)}
        if name.strip() in values:
            return f"its {name!r} is also a value of that column"
    return ""
