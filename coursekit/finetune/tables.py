"""Tables of texts (CSV, TSV, JSONL, JSON, or a `datasets.Dataset`) -> `UserData`.

Read through Hugging Face `datasets`; the text and label columns are given, or found by their
usual names or their content (`columns.py`), and a first line that is data, not column names, is
read as data; a misspelled name gets the closest real ones; labels are names or whole numbers, never
a mix; rows without a text or label are listed by line number; a file that is not UTF-8 is
named with the line of its first bad byte.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .columns import header_is_data, pick_columns, value_kind
from .userdata import DataError, UserData, option

__all__ = ["from_table", "read_table"]

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json"}


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
            f"or say which encoding it has, e.g. {option('encoding', 'latin-1')}."
        ) from err


def read_table(path: Path, encoding: str, check_header: bool = True) -> tuple[Any, list[str]]:
    """(the table, notes). A CSV/TSV whose first line looks like data rather than column names
    (`columns.header_is_data`) is read again without a header when `check_header`."""
    table = _load(path, encoding)
    why = (
        header_is_data(table)
        if check_header and TABLE_SUFFIXES[path.suffix.lower()] == "csv"
        else ""
    )
    if not why:
        return table, []
    names = [f"column_{i + 1}" for i in range(len(table.column_names))]
    note = (
        f"{path.name}: the first line looks like data, not column names ({why}): read as a row, "
        f"the columns named {', '.join(names)}."
    )
    return _load(path, encoding, column_names=names, header=None), [note]


def _load(path: Path, encoding: str, **options: Any) -> Any:
    import datasets

    builder = TABLE_SUFFIXES.get(path.suffix.lower())
    if builder is None:
        raise DataError(
            f"{path}: unknown file type {path.suffix!r}. Use a CSV, TSV, JSONL or JSON file of "
            "texts and labels, or a folder with one sub-folder of images per class."
        )
    _check_utf8(path, encoding)
    kwargs: dict[str, Any] = {"encoding": encoding, **options}
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


def _label_names(values: list[Any], where: str, column: str) -> tuple[list[str], list[int]]:
    """Class names (sorted; numbers in numeric order) and each row's class index."""
    kinds = {value_kind(v) for v in values}
    if len(kinds) > 1 or not kinds <= {"number", "text"}:
        examples = {k: next(repr(v) for v in values if value_kind(v) == k) for k in sorted(kinds)}
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
    table: Any,
    where: str,
    text_column: str | None,
    label_column: str | None,
    notes: list[str] | None = None,
) -> UserData:
    """The rows of `table` with a text and a label (columns named, or picked: `columns.py`)."""
    text_col, label_col, picked = pick_columns(table, text_column, label_column, where)
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
        notes=[*(notes or []), *picked],
    )


def _row_name(where: str, row: int) -> str:
    """How a user finds row `row` (0-based) again: a file's line number (after a CSV header)."""
    if where.lower().endswith((".csv", ".tsv")):
        return f"line {row + 2}"
    if where.lower().endswith(".jsonl"):
        return f"line {row + 1}"
    return f"row {row}"
