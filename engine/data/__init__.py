"""Load a data file into normalised examples: read -> map columns -> detect format -> convert.

Records are streamed from the file; `keep` bounds how many converted examples stay in memory
(None keeps all, as training needs; a check of a huge file keeps none and only counts).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.messages import Message as M
from engine.core.messages import joined
from engine.data.errors import DataError, FieldError
from engine.data.formats import FORMATS, Example, also_fits, detect, expected_fields
from engine.data.loading import iter_records, read_records
from engine.data.turns import apply_reasoning, has_reasoning, media_refusal

__all__ = ["DataError", "Example", "LoadedData", "load_examples", "FORMATS", "read_records"]
MAX_SKIPPED_KEPT = 200  # bad-row messages kept for display; all of them are counted


@dataclass
class LoadedData:
    file: str
    format: str
    examples: list[Example]
    fields: list[str]  # the fields found in the first record, after column mapping
    skipped: list[DataError] = field(default_factory=list)  # the first MAX_SKIPPED_KEPT bad rows
    preview_rows: list[dict] = field(default_factory=list)
    count: int = 0  # usable examples in the file (== len(examples) unless `keep` bounded them)
    skipped_count: int = 0  # every bad row skipped, even beyond the ones kept in `skipped`
    also_fits: list[str] = field(default_factory=list)  # auto-detection: other formats the first record fits
    note: str = ""  # auto-detection: which format was chosen over which, and how to pick the other (a Message)
    reasoning_count: int = 0  # examples with reasoning traces (how they are rendered: data.reasoning)
    tool_count: int = 0  # examples with tool calls or a tools list


def _refuse_media(name: str, where: str, record: dict) -> None:
    """Images, audio and video cannot be trained by a text model: refused by name, never trained as text."""
    found = media_refusal(record)
    if found:
        field_name, what = found
        raise DataError(name, M("data.media", what=what), where=where, field=field_name, hint=M("data.media_hint"))


def _did_you_mean(found: list[str]) -> str:
    required = {f for fmt in FORMATS.entries.values() for f in fmt.required}
    known = sorted(required | {"input", "system", "history", "prompt"})
    pairs = []
    for name in found:
        match = difflib.get_close_matches(str(name), known, n=1, cutoff=0.75)
        if match and match[0] != name:
            pairs.append(f"'{name}' -> '{match[0]}'")
    return M("data.did_you_mean", pairs=", ".join(pairs)) if pairs else ""


def load_examples(path: str | Path, fmt: str = "auto", columns: dict | None = None,
                  skip_bad_rows: bool = False, keep: int | None = None,
                  max_mb: float | None = None, split: str = "train", subset: str = "",
                  reasoning: str = "auto") -> LoadedData:
    """Read, detect and convert every row; raise one DataError naming file, line/row and field.

    With `skip_bad_rows`, broken rows are counted in `skipped_count` instead of raising. `reasoning` is
    data.reasoning (auto | inline | drop, engine/data/turns.py apply_reasoning).
    """
    name = Path(str(path)).name
    skipped: list[DataError] = []
    skipped_count = 0

    def skip(error: DataError) -> None:
        nonlocal skipped_count
        skipped_count += 1
        if len(skipped) < MAX_SKIPPED_KEPT:
            skipped.append(error)

    examples: list[Example] = []
    preview: list[dict] = []
    first: dict | None = None
    count = rows = 0
    converter = None
    others: list[str] = []
    reasoning_count = tool_count = 0
    for where, record in iter_records(path, skip if skip_bad_rows else None, max_mb, split, subset):
        rows += 1
        if columns:
            record = {columns.get(k, k): v for k, v in record.items()}
        _refuse_media(name, where, record)
        if first is None:
            first = record
            if fmt == "auto":
                fmt = detect(record)
                if fmt is None:
                    found = [str(k) for k in record]
                    raise DataError(name, M("data.unknown_format", fields=", ".join(found) or "(none)"),
                                    where=where, hint=M("data.unknown_format_hint", did_you_mean=_did_you_mean(found),
                                                        expected=expected_fields()))
                others = also_fits(record, fmt)
            converter = FORMATS.get(fmt).convert
        if len(preview) < 20:
            preview.append(record)
        try:
            example = converter(record)
        except FieldError as err:
            found = [str(k) for k in record]
            hints = [err.hint]
            if err.message == "missing":
                hints.append(M("data.fields_found", did_you_mean=_did_you_mean(found),
                               fields=", ".join(found) or "none"))
            error = DataError(name, err.message, where=where, field=err.field,
                              hint=joined([*hints, M("data.or_skip")]))
            if not skip_bad_rows:
                raise error from None
            skip(error)
            continue
        example.where = where
        if example.messages is not None and example.kind == "conversation":
            reasoning_count += has_reasoning(example.messages)
            tool_count += bool(example.tools) or any(m["role"] == "tool" or m.get("tool_calls")
                                                     for m in example.messages)
            example.messages = apply_reasoning(example.messages, reasoning)
        count += 1
        if keep is None or len(examples) < keep:
            examples.append(example)
    if not count:
        total = rows + skipped_count - (rows - count)  # rows read + lines that could not be read
        raise DataError(name, M("data.none_usable", total=total),
                        hint=M("data.first_problem", problem=str(skipped[0])) if skipped else "")
    note = M("data.also_fits", chosen=fmt, others=", ".join(others), pick=others[0]) if others else ""
    return LoadedData(file=name, format=fmt, examples=examples, fields=[str(k) for k in first],
                      skipped=skipped, preview_rows=preview, count=count, skipped_count=skipped_count,
                      also_fits=others, note=note, reasoning_count=reasoning_count, tool_count=tool_count)
