"""Load a data file into normalised examples: read -> map columns -> detect format -> convert."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.data.errors import DataError, FieldError
from engine.data.formats import FORMATS, Example, detect, expected_fields
from engine.data.loading import read_records

__all__ = ["DataError", "Example", "LoadedData", "load_examples", "FORMATS"]


@dataclass
class LoadedData:
    file: str
    format: str
    examples: list[Example]
    fields: list[str]  # the fields found in the first record, after column mapping
    skipped: list[DataError] = field(default_factory=list)
    preview_rows: list[dict] = field(default_factory=list)


def load_examples(path: str | Path, fmt: str = "auto", columns: dict | None = None,
                  skip_bad_rows: bool = False) -> LoadedData:
    name = Path(path).name
    skipped: list[DataError] = []
    records = read_records(path, skip_bad_rows, skipped)
    if columns:
        records = [(where, {columns.get(k, k): v for k, v in rec.items()}) for where, rec in records]
    first_where, first = records[0]
    if fmt == "auto":
        fmt = detect(first)
        if fmt is None:
            raise DataError(name, f"cannot tell the data format from the fields {', '.join(map(str, first)) or '(none)'}",
                            where=first_where,
                            hint=f"expected one of [{expected_fields()}]; rename the fields, map columns "
                                 "(data.columns / the column mapping), or choose the format")
    converter = FORMATS.get(fmt).convert
    examples = []
    for where, record in records:
        try:
            example = converter(record)
        except FieldError as err:
            found = ", ".join(map(str, record)) or "none"
            hint = err.hint or ""
            if err.message == "missing":
                hint = (hint + "; " if hint else "") + f"fields found: {found}"
            error = DataError(name, err.message, where=where, field=err.field,
                              hint=(hint + "; " if hint else "") + "or turn on 'skip bad rows'")
            if not skip_bad_rows:
                raise error from None
            skipped.append(error)
            continue
        example.where = where
        examples.append(example)
    if not examples:
        raise DataError(name, f"none of the {len(records)} rows is usable", hint=str(skipped[0]) if skipped else "")
    return LoadedData(file=name, format=fmt, examples=examples, fields=list(map(str, first)),
                      skipped=skipped, preview_rows=[r for _, r in records[:20]])
