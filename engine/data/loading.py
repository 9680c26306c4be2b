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

from engine.core.messages import Message as M
from engine.data.errors import DataError

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt", ".md")
Record = tuple[str, dict]
DEFAULT_MAX_MB = 1024.0
MAX_MB_ENV = "TUNELOOM_MAX_DATA_MB"
SNIFF_BYTES = 8192
# Leading bytes of file types people rename or export by mistake: what the file is, what to do (catalogue codes)
MAGIC = (
    (b"PK\x03\x04", "magic.zip", "magic.zip_todo"),
    (b"\x89PNG", "magic.png", "magic.upload_data"),
    (b"\xff\xd8\xff", "magic.jpeg", "magic.upload_data"),
    (b"%PDF", "magic.pdf", "magic.pdf_todo"),
    (b"\x1f\x8b", "magic.gzip", "magic.gzip_todo"),
    (b"PAR1", "magic.parquet", "magic.parquet_todo"),
    (b"SQLite format 3", "magic.sqlite", "magic.sqlite_todo"),
    (b"\xd0\xcf\x11\xe0", "magic.office", "magic.office_todo"),
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
        raise DataError(name, M("data.file_not_found") if not path.exists() else M("data.not_a_file"),
                        hint=M("data.check_path", path=str(path)))
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(name, M("data.unsupported_type", suffix=suffix or "(none)"),
                        hint=M("data.use_one_of", choices=", ".join(SUFFIXES)))
    size, limit = path.stat().st_size, max_bytes(max_mb)
    if size > limit:
        raise DataError(name, M("data.too_large", size_mb=size / 2**20, limit_mb=limit / 2**20),
                        hint=M("data.too_large_hint", env=MAX_MB_ENV, needed_mb=int(size / 2**20) + 1))
    if size == 0:
        raise DataError(name, M("data.empty_file"), hint=M("data.add_example"))
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if suffix != ".parquet":
        _sniff(head, name, suffix)
    return path


def _sniff(head: bytes, name: str, suffix: str) -> None:
    kind = suffix[1:].upper()
    for magic, what, todo in MAGIC:
        if head.startswith(magic):
            raise DataError(name, M("data.wrong_kind", what=M(what), kind=kind), hint=M(todo))
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(name, M("data.utf16"), where="line 1", hint=M("data.save_utf8"))
    if b"\x00" in head:
        raise DataError(name, M("data.binary", kind=kind), hint=M("data.export_utf8"))


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
    elif suffix in (".txt", ".md"):
        records = _plain_text(path)
    else:
        records = _json(path)
    empty = True
    for record in records:
        empty = False
        yield record
    if empty and not bad:
        raise DataError(path.name, M("data.no_rows"), hint=M("data.add_example"))


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
        raise DataError(name, M("data.bad_utf8", byte=raw[err.start], column=err.start + 1),
                        where=f"line {number}", hint=M("data.save_file_utf8")) from None


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
            raise DataError(name, M("data.not_object_line", got=_kind(value)), where=f"line {number}",
                            hint=M("data.one_object_per_line"))
    except json.JSONDecodeError as err:
        error = DataError(name, M("data.invalid_json", column=err.colno, detail=err.msg), where=f"line {number}",
                          hint=M("data.fix_line"))
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
        raise DataError(name, M("data.only_whitespace"), hint=M("data.add_example"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(name, M("data.bad_utf8", byte=raw[err.start], column=column), where=f"line {line}",
                        hint=M("data.save_file_utf8")) from None
    del raw
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        one_per_line = err.lineno > 1 and text.lstrip().startswith("{")
        raise DataError(name, M("data.invalid_json", column=err.colno, detail=err.msg), where=f"line {err.lineno}",
                        hint=M("data.fix_json_jsonl" if one_per_line else "data.fix_json")) from None
    del text
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(r, dict) for r in value[lists[0]]):
            value = value[lists[0]]  # {"data": [...]}
        else:
            value = [value]
    if not isinstance(value, list):
        raise DataError(name, M("data.not_list", got=_kind(value)), hint=M("data.list_hint"))
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise DataError(name, M("data.not_object", got=_kind(item)), where=f"row {index}",
                            hint=M("data.object_hint"))
        yield f"row {index}", item


def _csv(path: Path) -> Iterator[Record]:
    name = path.name
    reader = csv.reader(_decode(name, number, raw) for number, raw in _raw_lines(path))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(name, M("data.no_header"), where="line 1", hint=M("data.header_hint"))
        header = [h.strip() for h in header]
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise DataError(name, M("data.duplicate_columns", columns=", ".join(duplicates)), where="line 1",
                            hint=M("data.unique_columns"))
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(name, M("data.csv_count", values=len(row), columns=len(header),
                                        names=", ".join(header)),
                                where=f"line {reader.line_num}", hint=M("data.csv_quote"))
            yield f"line {reader.line_num}", dict(zip(header, row))
    except csv.Error as err:
        raise DataError(name, M("data.bad_csv", detail=str(err)), where=f"line {reader.line_num}",
                        hint=M("data.csv_quoting")) from None


csv.field_size_limit(64 * 1024 * 1024)  # long answers are normal in training data


def _plain_text(path: Path) -> Iterator[Record]:
    """Raw text for continued pre-training, as `text` records: a .md file is one document; a .txt file holds
    one document per non-empty line, as the `datasets` text loader (and LLaMA-Factory) read it."""
    name = path.name
    if path.suffix.lower() == ".md":
        text = "".join(_decode(name, number, raw) for number, raw in _raw_lines(path))
        if text.strip():
            yield "line 1", {"text": text}
        return
    for number, raw in _raw_lines(path):
        line = _decode(name, number, raw).rstrip("\r\n")
        if line.strip():
            yield f"line {number}", {"text": line}


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise DataError(path.name, M("data.bad_parquet", detail=str(err)), hint=M("data.reexport")) from None
    index = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            index += 1
            yield f"row {index}", row
