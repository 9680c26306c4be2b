"""Encoded data is cached per examples + tokenizer + settings and shared by the Data tab and trainer."""
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from engine.data import dataset as prep
from engine.data import load_examples

CHAT = Path(__file__).resolve().parent.parent / "presets" / "data" / "chat_multiturn.jsonl"


@pytest.fixture()
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def cached_folders(home: Path) -> set:
    folder = home / "cache" / "encoded"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_second_encode_reads_the_cache_and_settings_change_the_key(workspace, tokenizer):
    loaded = load_examples(CHAT)
    first = prep.encode_all(loaded, tokenizer, "assistant", 256)
    assert len(cached_folders(workspace)) == 1
    again = prep.encode_all(loaded, tokenizer, "assistant", 256)
    assert len(cached_folders(workspace)) == 1
    assert [(e.input_ids, e.labels) for e in again[0]] == [(e.input_ids, e.labels) for e in first[0]]
    prep.encode_all(loaded, tokenizer, "last_assistant", 256)
    prep.encode_all(loaded, tokenizer, "assistant", 32)
    tokenizer.chat_template = tokenizer.chat_template.replace("<|im_start|>", "<|im_start|> ")
    prep.encode_all(loaded, tokenizer, "assistant", 256)
    assert len(cached_folders(workspace)) == 4


def test_parallel_encoding_gives_the_same_result(workspace, tokenizer, monkeypatch):
    loaded = load_examples(CHAT)
    serial = prep.encode_all(loaded, tokenizer, "assistant", 256)
    monkeypatch.setattr(prep, "PARALLEL_FROM", 1)
    monkeypatch.setattr(prep, "CACHE_VERSION", "parallel-test")  # a fresh cache entry
    parallel = prep.encode_all(loaded, tokenizer, "assistant", 256)
    assert [(e.input_ids, e.labels) for e in parallel[0]] == [(e.input_ids, e.labels) for e in serial[0]]


def test_dropped_rows_are_counted_with_their_reason(workspace, tokenizer):
    kept, dropped, rows = prep.encode_all(load_examples(CHAT), tokenizer, "assistant", 24)
    assert sum(dropped.values()) == len(rows) > 0
    assert all(r.startswith("line ") and "max_seq_len" in r for r in rows)
