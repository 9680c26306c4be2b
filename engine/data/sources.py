"""Data that is not one file: a `datasets` folder on disk, or a dataset on the Hugging Face Hub.

Both are read with the `datasets` library and come out as (where, record) pairs like a file's rows
(engine/data/loading.py), so the formats, column mapping, checks and preview are the same.
- a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (`load_from_disk`), or a folder
  of Arrow or Parquet shards (`load_dataset("parquet" | "arrow", data_files=...)`), the split chosen by
  a subfolder or a file-name prefix (`train-00000-of-00002.parquet`, `data/train/...`), as the Hub lays
  them out;
- `hub:owner/name` (`load_dataset(owner/name, subset, split=...)`): the Hub must be reachable, or the
  dataset in the local `datasets` cache; offline, the error says so at once.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from engine.data.errors import DataError

HUB_PREFIX = "hub:"
SHARD_SUFFIXES = (".parquet", ".arrow")


def is_hub(value) -> bool:
    return str(value).startswith(HUB_PREFIX)


def _rows(dataset, name: str) -> Iterator[tuple[str, dict]]:
    if len(dataset) == 0:
        raise DataError(name, "no examples found (the split holds no rows)", hint="pick another split")
    for index, row in enumerate(dataset, start=1):
        yield f"row {index}", dict(row)


def _pick_split(found: dict, split: str, name: str):
    if split in found:
        return found[split]
    raise DataError(name, f"no split {split!r}", field="data.split",
                    hint=f"choose one of: {', '.join(found) or '(none)'}")


def _shards(folder: Path, split: str) -> tuple[str, list[str]]:
    """(builder, files) of the split among the Arrow/Parquet shards under `folder`."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SHARD_SUFFIXES
                   and not p.name.startswith("cache-"))
    if not files:
        return "", []
    kinds = {p.suffix for p in files}
    if len(kinds) > 1:
        raise DataError(folder.name, "the folder holds both Arrow and Parquet files", hint="keep one kind of shard")

    def split_of(path: Path) -> str | None:
        parts = path.relative_to(folder).parts
        for part in parts[:-1]:  # data/train/xxx.parquet
            if part in SPLIT_WORDS:
                return part
        stem = path.name.split("-")[0].split(".")[0]  # train-00000-of-00002.parquet
        return stem if stem in SPLIT_WORDS else None

    named = {p: split_of(p) for p in files}
    if not any(named.values()):
        return kinds.pop()[1:], [str(p) for p in files]  # no split names: every shard is the data
    chosen = [str(p) for p, s in named.items() if s == split]
    if not chosen:
        raise DataError(folder.name, f"no shards for split {split!r}", field="data.split",
                        hint=f"choose one of: {', '.join(sorted({s for s in named.values() if s}))}")
    return kinds.pop()[1:], chosen


SPLIT_WORDS = ("train", "validation", "valid", "dev", "test", "eval")


def _cache_dir() -> str:
    """datasets' Arrow cache under the workspace (TUNELOOM_HOME/cache/datasets), not the user's home."""
    from engine.core.workspace import subdir

    return str(subdir("cache") / "datasets")


def folder_records(folder: Path, split: str = "train") -> Iterator[tuple[str, dict]]:
    """The rows of one split of a `datasets` folder: save_to_disk output, or Arrow / Parquet shards."""
    from datasets import DatasetDict, load_dataset, load_from_disk

    name = folder.name
    if (folder / "dataset_info.json").is_file() or (folder / "dataset_dict.json").is_file() \
            or (folder / "state.json").is_file():
        try:
            loaded = load_from_disk(str(folder))
        except Exception as err:  # datasets raises several types for a damaged folder
            raise DataError(name, f"not a readable save_to_disk folder ({err})",
                            hint="save it again with Dataset.save_to_disk") from None
        if isinstance(loaded, DatasetDict):
            loaded = _pick_split(dict(loaded), split, name)
        yield from _rows(loaded, name)
        return
    builder, files = _shards(folder, split)
    if not files:
        raise DataError(name, "this folder holds no dataset (no save_to_disk files, no .arrow or .parquet shards)",
                        hint="give a data file, a folder written by save_to_disk, or a folder of Parquet/Arrow files")
    try:
        dataset = load_dataset(builder, data_files=files, split="train", cache_dir=_cache_dir())
    except Exception as err:
        raise DataError(name, f"the {builder} shards could not be read ({err})", hint="re-export them") from None
    yield from _rows(dataset, name)


def hub_records(value: str, split: str = "train", subset: str = "") -> Iterator[tuple[str, dict]]:
    """The rows of a Hub dataset's split (from the local cache when offline and cached)."""
    from engine.core.model_source import hub_unreachable

    repo = value[len(HUB_PREFIX):].strip()
    if len(repo.split("/")) != 2 or not all(repo.split("/")):
        raise DataError(value, "not a Hub dataset id", field="data.train", hint="write it as hub:owner/name")
    import datasets

    why = hub_unreachable()
    try:
        if why:  # the cache only, without the client's retries
            datasets.config.HF_HUB_OFFLINE = True
        dataset = datasets.load_dataset(repo, subset or None, split=split, cache_dir=_cache_dir())
    except ValueError as err:  # unknown split or subset
        raise DataError(value, str(err).splitlines()[0], field="data.split" if "split" in str(err).lower()
                        else "data.subset", hint="check the dataset's splits and configurations") from None
    except Exception as err:
        reason = f"the Hub is not reachable ({why}) and it is not in the local datasets cache" if why \
            else f"it could not be loaded ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        raise DataError(value, reason, hint="check the id and the network, or download it and give the folder "
                                            "(Dataset.save_to_disk)") from None
    yield from _rows(dataset, value)
