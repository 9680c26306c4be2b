"""Read JSON, JSONL, CSV and Parquet files into (where, record) pairs with precise errors.

`where` is "line N" for line-based files (JSONL, CSV) and "row N" (1-based) otherwise, so
every later error can point at the exact place in the user's file.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterator

from engine.data.errors import DataError

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
Record = tuple[str, dict]


def read_records(path: str | Path, skip_bad_rows: bool = False, skipped: list | None = None) -> list[Record]:
    """All records of a file. Broken JSONL lines raise, or with `skip_bad_rows` go to `skipped`."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(name, "file not found", hint=f"check the path {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(name, f"unsupported file type {suffix or '(none)'}",
                        hint=f"use one of {', '.join(SUFFIXES)}")
    if suffix == ".parquet":
        return _parquet(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(name, "the file is empty", hint="add at least one example")
    if b"\x00" in raw[:8192]:
        raise DataError(name, f"this looks like a binary file, not {suffix[1:].upper()} text",
                        hint="export the data as UTF-8 text")
    text = _decode(raw, name)
    if suffix == ".jsonl":
        records = list(_jsonl(text, name, skip_bad_rows, skipped if skipped is not None else []))
    elif suffix == ".csv":
        records = _csv(text, name)
    else:
        records = _json(text, name)
    if not records:
        raise DataError(name, "no examples found", hint="the file holds no rows")
    return records


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(name, f"byte {err.start} is not valid UTF-8", where=f"line {line}",
                        hint="save the file as UTF-8 (most editors offer this under 'Save as')") from None


def _jsonl(text: str, name: str, skip_bad_rows: bool, skipped: list) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise DataError(name, f"expected a JSON object, got {type(value).__name__}",
                                where=f"line {number}", hint="each line must be one {...} object")
        except json.JSONDecodeError as err:
            error = DataError(name, f"invalid JSON at column {err.colno}: {err.msg}", where=f"line {number}",
                              hint="fix this line, or turn on 'skip bad rows' to drop it")
            if not skip_bad_rows:
                raise error from None
            skipped.append(error)
            continue
        except DataError as error:
            if not skip_bad_rows:
                raise
            skipped.append(error)
            continue
        yield f"line {number}", value


def _json(text: str, name: str) -> list[Record]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        hint = "fix the JSON syntax there"
        if err.lineno > 1 and text.lstrip().startswith("{"):
            hint += " (if this is one object per line, name the file .jsonl)"
        raise DataError(name, f"invalid JSON at column {err.colno}: {err.msg}", where=f"line {err.lineno}",
                        hint=hint) from None
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(r, dict) for r in value[lists[0]]):
            value = value[lists[0]]  # {"data": [...]}
        else:
            value = [value]
    if not isinstance(value, list):
        raise DataError(name, f"expected a list of examples, got {type(value).__name__}",
                        hint="the file should hold [ {...}, {...} ]")
    records = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise DataError(name, f"expected an object, got {type(item).__name__}", where=f"row {index}",
                            hint="each example must be a {...} object")
        records.append((f"row {index}", item))
    return records


def _csv(text: str, name: str) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise DataError(name, "no header row", hint="the first line must name the columns")
    records = []
    for row in reader:
        if None in row:
            raise DataError(name, f"{len(reader.fieldnames) + len(row[None])} values for "
                            f"{len(reader.fieldnames)} columns", where=f"line {reader.line_num}",
                            hint="quote values that contain commas")
        records.append((f"line {reader.line_num}", {k: v for k, v in row.items()}))
    return records


def _parquet(path: Path) -> list[Record]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise DataError(path.name, f"not a readable Parquet file ({err})", hint="re-export the file") from None
    return [(f"row {i}", row) for i, row in enumerate(rows, start=1)]
