"""Read JSON, JSONL, CSV and Parquet files into (where, record) pairs with precise errors.

`where` is "line N" for line-based files (JSONL, CSV) and "row N" (1-based) otherwise, so
every later error can point at the exact place in the user's file.

JSONL and CSV are streamed line by line (memory stays flat however large the file is); JSON
and Parquet are read whole, so every file is checked against a size limit before a byte of it
is parsed: `max_mb`, else the environment variable TUNELOOM_MAX_DATA_MB, else 1024 MB.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.data.errors import DataError

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
Record = tuple[str, dict]
DEFAULT_MAX_MB = 1024.0
MAX_MB_ENV = "TUNELOOM_MAX_DATA_MB"
SNIFF_BYTES = 8192
# Leading bytes of file types people rename or export by mistake.
MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx, a .docx or a zipped dataset)",
     "unzip it, or export the sheet as CSV"),
    (b"\x89PNG", "a PNG image", "upload the data file itself"),
    (b"\xff\xd8\xff", "a JPEG image", "upload the data file itself"),
    (b"%PDF", "a PDF document", "export the data as JSONL or CSV"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip)"),
    (b"PAR1", "a Parquet file", "rename it to .parquet"),
    (b"SQLite format 3", "an SQLite database", "export the table as CSV or JSONL"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Word file (.xls/.doc)", "export the sheet as CSV"),
)
BadRow = Callable[[DataError], None]


def max_bytes(max_mb: float | None = None) -> int:
    """The size limit in bytes: the argument, else TUNELOOM_MAX_DATA_MB, else 1024 MB."""
    if max_mb is None:
        text = os.environ.get(MAX_MB_ENV, "").strip()
        try:
            max_mb = float(text) if text else DEFAULT_MAX_MB
        except ValueError:
            raise DataError(MAX_MB_ENV, f"{text!r} is not a number of megabytes",
                            hint=f"set {MAX_MB_ENV} to a number such as 2048, or unset it") from None
    return int(max_mb * 1024 * 1024)


def check_file(path: str | Path, max_mb: float | None = None) -> Path:
    """Everything that can be said about a data file without parsing it; raises DataError."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(name, "file not found" if not path.exists() else "not a file",
                        hint=f"check the path {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(name, f"unsupported file type {suffix or '(none)'}",
                        hint=f"use one of {', '.join(SUFFIXES)}")
    size, limit = path.stat().st_size, max_bytes(max_mb)
    if size > limit:
        raise DataError(name, f"the file is {size / 2**20:,.1f} MB, above the {limit / 2**20:,.0f} MB limit",
                        hint=f"split it into smaller files, or raise the limit (environment variable "
                             f"{MAX_MB_ENV}={int(size / 2**20) + 1})")
    if size == 0:
        raise DataError(name, "the file is empty (0 bytes)", hint="add at least one example")
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if suffix != ".parquet":
        _sniff(head, name, suffix)
    return path


def _sniff(head: bytes, name: str, suffix: str) -> None:
    kind = suffix[1:].upper()
    for magic, what, todo in MAGIC:
        if head.startswith(magic):
            raise DataError(name, f"this is {what}, not {kind} text", hint=todo)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(name, "the file is UTF-16 encoded", where="line 1",
                        hint="save it as UTF-8 (most editors offer this under 'Save as' / 'Encoding')")
    if b"\x00" in head:
        raise DataError(name, f"this looks like a binary file, not {kind} text",
                        hint="export the data as UTF-8 text (JSONL, JSON or CSV)")


def iter_records(path: str | Path, on_bad: BadRow | None = None, max_mb: float | None = None,
                 split: str = "train", subset: str = "") -> Iterator[Record]:
    """Stream the records of a file, a `datasets` folder or a Hub dataset (engine/data/sources.py).

    A broken row of a file raises, or is handed to `on_bad` and skipped."""
    from engine.data import sources

    if sources.is_hub(path):
        yield from sources.hub_records(str(path), split, subset)
        return
    if Path(path).is_dir():
        yield from sources.folder_records(Path(path), split)
        return
    path = check_file(path, max_mb)
    suffix = path.suffix.lower()
    bad = 0

    def counted(error: DataError) -> None:
        nonlocal bad
        bad += 1
        on_bad(error)

    if suffix == ".parquet":
        records = _parquet(path)
    elif suffix == ".jsonl":
        records = _jsonl(path, counted if on_bad else None)
    elif suffix == ".csv":
        records = _csv(path)
    else:
        records = _json(path)
    empty = True
    for record in records:
        empty = False
        yield record
    if empty and not bad:
        raise DataError(path.name, "no examples found (the file holds no rows)", hint="add at least one example")


def read_records(path: str | Path, skip_bad_rows: bool = False, skipped: list | None = None,
                 max_mb: float | None = None) -> list[Record]:
    """All records of a file as a list (small files; prefer `iter_records` for large ones)."""
    sink = skipped if skipped is not None else []
    return list(iter_records(path, sink.append if skip_bad_rows else None, max_mb))


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for each line, read one at a time (memory stays flat)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, (raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw)


def _decode(name: str, number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(name, f"byte 0x{raw[err.start]:02x} at column {err.start + 1} is not valid UTF-8",
                        where=f"line {number}",
                        hint="save the file as UTF-8 (most editors offer this under 'Save as' / "
                             "'Encoding')") from None


def _jsonl(path: Path, on_bad: BadRow | None) -> Iterator[Record]:
    name = path.name
    for number, raw in _raw_lines(path):
        try:
            line = _decode(name, number, raw)
        except DataError as error:
            if on_bad is None:
                raise
            on_bad(error)
            continue
        record = _json_line(name, number, line, on_bad)
        if record is not None:
            yield record


def _json_line(name: str, number: int, line: str, on_bad: BadRow | None) -> Record | None:
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    try:
        value = json.loads(line)
        if not isinstance(value, dict):
            raise DataError(name, f"expected a JSON object, got {_kind(value)}", where=f"line {number}",
                            hint="each line must be one {...} object")
    except json.JSONDecodeError as err:
        error = DataError(name, f"invalid JSON at column {err.colno}: {err.msg}", where=f"line {number}",
                          hint="fix this line, or turn on 'skip bad rows' (--skip-bad-rows) to drop it")
        if on_bad is None:
            raise error from None
        on_bad(error)
        return None
    except DataError as error:
        if on_bad is None:
            raise
        on_bad(error)
        return None
    return f"line {number}", value


def _kind(value) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
            type(None): "null"}.get(type(value), type(value).__name__)


def _json(path: Path) -> Iterator[Record]:
    name = path.name
    raw = path.read_bytes()  # size already checked against the limit
    if not raw.strip():
        raise DataError(name, "the file holds only whitespace", hint="add at least one example")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(name, f"byte 0x{raw[err.start]:02x} at column {column} is not valid UTF-8",
                        where=f"line {line}",
                        hint="save the file as UTF-8 (most editors offer this under 'Save as' / 'Encoding')") from None
    del raw
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        hint = "fix the JSON syntax there"
        if err.lineno > 1 and text.lstrip().startswith("{"):
            hint += " (if this is one object per line, name the file .jsonl)"
        raise DataError(name, f"invalid JSON at column {err.colno}: {err.msg}", where=f"line {err.lineno}",
                        hint=hint) from None
    del text
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(r, dict) for r in value[lists[0]]):
            value = value[lists[0]]  # {"data": [...]}
        else:
            value = [value]
    if not isinstance(value, list):
        raise DataError(name, f"expected a list of examples, got {_kind(value)}",
                        hint="the file should hold [ {...}, {...} ]")
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise DataError(name, f"expected an object, got {_kind(item)}", where=f"row {index}",
                            hint="each example must be a {...} object")
        yield f"row {index}", item


def _csv(path: Path) -> Iterator[Record]:
    name = path.name
    reader = csv.reader(_decode(name, number, raw) for number, raw in _raw_lines(path))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(name, "no header row", where="line 1", hint="the first line must name the columns")
        header = [h.strip() for h in header]
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise DataError(name, f"duplicate column name(s): {', '.join(duplicates)}", where="line 1",
                            hint="give every column its own name")
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(name, f"{len(row)} values for {len(header)} columns ({', '.join(header)})",
                                where=f"line {reader.line_num}",
                                hint="quote values that contain commas, e.g. \"a, b\"")
            yield f"line {reader.line_num}", dict(zip(header, row))
    except csv.Error as err:
        raise DataError(name, f"not valid CSV: {err}", where=f"line {reader.line_num}",
                        hint="check the quoting on this line") from None


csv.field_size_limit(64 * 1024 * 1024)  # long answers are normal in training data


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise DataError(path.name, f"not a readable Parquet file ({err})", hint="re-export the file") from None
    index = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            index += 1
            yield f"row {index}", row
