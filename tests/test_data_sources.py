"""Data from a `datasets` folder (save_to_disk, Parquet / Arrow shards) or a Hub dataset id, with split and
column mapping; errors name the folder, the field and what to do."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.data import DataError, load_examples

ROOT = Path(__file__).resolve().parent.parent
ROWS = [json.loads(line) for line in (ROOT / "presets" / "data" / "identity.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("sources")
    renamed = [{"question": r["instruction"], "answer": r["output"]} for r in ROWS]
    data = datasets.Dataset.from_list(renamed)
    datasets.DatasetDict({"train": data.select(range(10)), "test": data.select(range(10, 14))}).save_to_disk(
        str(root / "saved_dict"))
    data.select(range(6)).save_to_disk(str(root / "saved_one"))
    (root / "shards" / "data").mkdir(parents=True)
    data.select(range(5)).to_parquet(str(root / "shards" / "data" / "train-00000-of-00002.parquet"))
    data.select(range(5, 9)).to_parquet(str(root / "shards" / "data" / "train-00001-of-00002.parquet"))
    data.select(range(9, 12)).to_parquet(str(root / "shards" / "data" / "test-00000-of-00001.parquet"))
    (root / "arrow").mkdir()
    for i in range(2):
        chunk = data.select(range(3 * i, 3 * i + 3))
        chunk.save_to_disk(str(root / "tmp"))
        next((root / "tmp").glob("*.arrow")).rename(root / "arrow" / f"part-{i}.arrow")
    (root / "empty").mkdir()
    return root


MAPPING = {"question": "instruction", "answer": "output"}


@pytest.mark.parametrize("folder, split, count", [
    ("saved_dict", "train", 10), ("saved_dict", "test", 4), ("saved_one", "train", 6),
    ("shards", "train", 9), ("shards", "test", 3), ("arrow", "train", 6),
])
def test_a_datasets_folder_is_read_by_split_with_the_column_mapping(folders, folder, split, count):
    loaded = load_examples(folders / folder, columns=MAPPING, split=split)
    assert loaded.format == "alpaca" and loaded.count == count
    assert loaded.examples[0].messages[-1]["role"] == "assistant" and loaded.examples[0].where == "row 1"


@pytest.mark.parametrize("folder, split, words", [
    ("saved_dict", "validation", "field 'data.split': no split 'validation'. choose one of: train, test"),
    ("shards", "dev", "field 'data.split': no shards for split 'dev'. choose one of: test, train"),
    ("empty", "train", "this folder holds no dataset"),
])
def test_folder_errors_say_what_to_do(folders, folder, split, words):
    with pytest.raises(DataError) as caught:
        load_examples(folders / folder, columns=MAPPING, split=split)
    assert words in str(caught.value)


def test_a_missing_column_mapping_is_reported_with_the_row(folders):
    with pytest.raises(DataError, match=r"cannot tell the data format from the fields question, answer"):
        load_examples(folders / "saved_one")


def test_a_hub_dataset_offline_fails_at_once_with_the_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError) as caught:
        load_examples("hub:someone/not-cached-anywhere")
    assert "the Hub is not reachable (offline mode" in str(caught.value) and "not in the local datasets cache" in \
        str(caught.value)
    with pytest.raises(DataError, match="write it as hub:owner/name"):
        load_examples("hub:justaname")


def test_cli_and_preflight_accept_a_folder(folders, tiny_model, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNELOOM_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "engine", "data", "check", str(folders / "saved_dict"), "--split",
                             "test", "--column", "question=instruction", "--column", "answer=output"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "format alpaca, 4 examples" in result.stdout, result.stderr[-2000:]
    from engine.core.config import RunConfig
    from engine.training.preflight import static_problems

    raw = RunConfig.from_dict({"model": tiny_model, "data": {"train": str(folders / "saved_dict"),
                                                             "columns": MAPPING}}).to_dict()
    assert not [p for p in static_problems(raw) if p.startswith("data.train")]
    assert static_problems({**raw, "data": {**raw["data"], "train": "hub:owner/name"}}) == static_problems(raw)


def test_web_paths_allow_hub_ids_but_confine_folders(folders):
    from engine.core.security import web_config_problems

    assert web_config_problems({"data": {"train": "hub:owner/name"}}) == []
    assert "outside the folders this server may read" in web_config_problems({"data": {"train": str(folders)}})[0]
