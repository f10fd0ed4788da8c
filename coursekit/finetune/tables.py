"""Tables of texts (CSV, TSV, JSONL, JSON, or a `datasets.Dataset`) -> `UserData`.

Read through Hugging Face `datasets`; the text and label columns are found by their usual names
or given; a misspelled name gets the closest real ones; labels are names or whole numbers, never
a mix; rows without a text or label are listed by line number; a file that is not UTF-8 is
named with the line of its first bad byte.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

import numpy as np

from .userdata import DataError, UserData

__all__ = ["from_table", "read_table"]

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json"}
TEXT_NAMES = ("text", "sentence", "review", "content", "tweet", "body", "document")
LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "topic")


def _check_utf8(path: Path, encoding: str) -> None:
    if encoding.lower().replace("-", "") not in ("utf8", "utf8sig"):
        return
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not UTF-8 (byte {raw[err.start]:#x} on line {line}). Save it as UTF-8, "
            "or say which encoding it has, e.g. load_data(path, encoding='latin-1') "
            "(`--encoding latin-1` on the command line)."
        ) from err


def read_table(path: Path, encoding: str) -> Any:
    import datasets

    builder = TABLE_SUFFIXES.get(path.suffix.lower())
    if builder is None:
        raise DataError(
            f"{path}: unknown file type {path.suffix!r}. Use a CSV, TSV, JSONL or JSON file of "
            "texts and labels, or a folder with one sub-folder of images per class."
        )
    _check_utf8(path, encoding)
    kwargs: dict[str, Any] = {"encoding": encoding}
    if path.suffix.lower() == ".tsv":
        kwargs["delimiter"] = "\t"
    was_on = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as err:  # pandas / pyarrow parse errors carry the line
        raise DataError(f"{path}: could not be read as {builder.upper()}: {err}") from err
    finally:
        if was_on:
            datasets.utils.logging.enable_progress_bar()


def _pick_column(
    columns: list[str], wanted: str | None, guesses: tuple[str, ...], role: str, where: str
) -> str:
    if wanted is not None:
        if wanted in columns:
            return wanted
        close = difflib.get_close_matches(wanted, columns, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"{where}: no column {wanted!r}.{hint} The columns are: {', '.join(columns)}. "
            f"Pass the {role} column's name ({role}_column=...)."
        )
    by_lower = {c.lower(): c for c in columns}
    for guess in guesses:
        if guess in by_lower:
            return by_lower[guess]
    raise DataError(
        f"{where}: no {role} column found among {', '.join(columns)}. "
        f"Name it with {role}_column=... (`--{role}-column` on the command line)."
    )


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer()):
        return "number"
    if isinstance(v, str):
        return "number" if v.strip().lstrip("-").isdigit() else "text"
    return type(v).__name__


def _label_names(values: list[Any], where: str, column: str) -> tuple[list[str], list[int]]:
    """Class names (sorted; numbers in numeric order) and each row's class index."""
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1 or not kinds <= {"number", "text"}:
        examples = {k: next(repr(v) for v in values if _kind(v) == k) for k in sorted(kinds)}
        raise DataError(
            f"{where}: the label column {column!r} mixes kinds of labels "
            f"({', '.join(f'{k} such as {e}' for k, e in examples.items())}). Use one name "
            "(or one whole number) per class throughout the column."
        )
    if kinds == {"number"}:
        numbers = [int(float(v)) for v in values]
        order = sorted(set(numbers))
        index = {n: i for i, n in enumerate(order)}
        return [str(n) for n in order], [index[n] for n in numbers]
    names = sorted(set(values))
    index = {n: i for i, n in enumerate(names)}
    return names, [index[v] for v in values]


def from_table(
    table: Any, where: str, text_column: str | None, label_column: str | None
) -> UserData:
    columns = list(table.column_names)
    text_col = _pick_column(columns, text_column, TEXT_NAMES, "text", where)
    label_col = _pick_column(columns, label_column, LABEL_NAMES, "label", where)
    feature = table.features.get(label_col)
    label_names = getattr(feature, "names", None)  # a datasets.ClassLabel column
    texts, raw_labels, skipped = [], [], []
    for row, (text, label) in enumerate(zip(table[text_col], table[label_col], strict=True)):
        missing = (
            "no text"
            if not isinstance(text, str) or not text.strip()
            else (
                "no label"
                if label is None or (isinstance(label, float) and math.isnan(label))
                else ""
            )
        )
        if missing:
            skipped.append((f"{where}, {_row_name(where, row)}", missing))
            continue
        texts.append(" ".join(text.split()))
        raw_labels.append(label_names[label] if label_names else label)
    if not texts:
        raise DataError(f"{where}: no rows with both a text and a label.")
    classes, labels = _label_names(raw_labels, where, label_col)
    return UserData(
        "text",
        texts,
        np.asarray(labels, np.int64),
        classes,
        where,
        skipped=skipped,
        info={"key": list(texts)},
    )


def _row_name(where: str, row: int) -> str:
    """How a user finds row `row` (0-based) again: a file's line number (after a CSV header)."""
    if where.lower().endswith((".csv", ".tsv")):
        return f"line {row + 2}"
    if where.lower().endswith(".jsonl"):
        return f"line {row + 1}"
    return f"row {row}"
