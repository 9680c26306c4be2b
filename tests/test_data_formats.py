"""Every supported file type and data format loads into the same conversation form."""
import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data import DataError, load_examples

ALPACA = {"instruction": "Add", "input": "2 and 3", "output": "5", "system": "Be exact.",
          "history": [["Hi", "Hello!"]]}
SHAREGPT = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}
MESSAGES = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def write(path, rows):
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_alpaca_with_system_and_history(tmp_path, suffix):
    loaded = load_examples(write(tmp_path / f"d{suffix}", [ALPACA, ALPACA]))
    assert loaded.format == "alpaca" and len(loaded.examples) == 2
    assert loaded.examples[0].messages == [
        {"role": "system", "content": "Be exact."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Add\n\n2 and 3"},
        {"role": "assistant", "content": "5"}]


@pytest.mark.parametrize("row,fmt", [(SHAREGPT, "sharegpt"), (MESSAGES, "messages"), ({"text": "abc"}, "text")])
def test_other_formats_are_detected(tmp_path, row, fmt):
    loaded = load_examples(write(tmp_path / "d.jsonl", [row]))
    assert loaded.format == fmt
    if fmt == "text":
        assert loaded.examples[0].text == "abc"
    else:
        assert loaded.examples[0].messages == MESSAGES["messages"]


def test_csv_with_column_mapping(tmp_path):
    path = write(tmp_path / "d.csv", [{"question": "Who?", "answer": "Me."}])
    with pytest.raises(DataError, match="cannot tell the data format from the fields question, answer"):
        load_examples(path)
    loaded = load_examples(path, columns={"question": "instruction", "answer": "output"})
    assert loaded.format == "alpaca"
    assert loaded.examples[0].where == "line 2"
    assert loaded.examples[0].messages[-1] == {"role": "assistant", "content": "Me."}


def test_format_override_reports_the_missing_field(tmp_path):
    path = write(tmp_path / "d.jsonl", [MESSAGES])
    with pytest.raises(DataError) as info:
        load_examples(path, fmt="alpaca")
    assert info.value.field == "instruction" and info.value.where == "line 1"
    assert "fields found: messages" in str(info.value)


def test_shipped_samples_load():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "presets" / "data"
    assert load_examples(root / "identity.jsonl").format == "alpaca"
    chat = load_examples(root / "chat_multiturn.jsonl")
    assert chat.format == "messages" and all(len(e.messages) >= 4 for e in chat.examples)
