"""Data preparation for training and preview: load, encode with masks, drop and count, split."""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field

from engine.core.config import DataConfig
from engine.core.messages import as_dict
from engine.core.runs import earlier_run, resolve_run
from engine.data import Example, LoadedData, load_examples
from engine.data.masking import Dropped, Encoded, encode

LENGTHS_KEPT = 256  # longest lengths the statistics keep: more than any batch size trained on one device


def row_length(example) -> int:
    """Tokens one example puts in a row of a training step: its own, or for a preference example the prompt with
    its longer answer (each answer is forwarded as its own row, padded to the longest)."""
    sequences = getattr(example, "sequences", None)
    return max(len(s.input_ids) for s in sequences()) if sequences else len(example.input_ids)


@dataclass
class Prepared:
    loaded: LoadedData
    train: list[Encoded]
    validation: list[Encoded]
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    dropped_rows: list[str] = field(default_factory=list)  # "line 7: reason"
    replayed: int = 0  # of `train`, examples replayed from data.replay (engine/training/continual.py)

    def stats(self) -> dict:
        encoded = self.train + self.validation
        return {
            "file": self.loaded.file, "format": self.loaded.format,
            "rows": self.loaded.count + self.loaded.skipped_count,
            "examples": len(encoded), "train_examples": len(self.train),
            "validation_examples": len(self.validation),
            "tokens": sum(len(e.input_ids) for e in encoded),
            "trained_tokens": sum(e.trained_tokens for e in encoded),
            "max_tokens": max((len(e.input_ids) for e in encoded), default=0),
            # the longest rows a step forwards, longest first: the estimate's longest batch (engine/estimate/lengths.py)
            "longest_lengths": sorted((row_length(e) for e in encoded), reverse=True)[:LENGTHS_KEPT],
            "dropped": dict(self.dropped), "dropped_rows": self.dropped_rows[:20],
            "skipped_bad_rows": [str(e) for e in self.loaded.skipped[:20]],
            "skipped_bad_rows_count": self.loaded.skipped_count,
            # the same reasons and rows with their message codes, for the page to word in its language
            "dropped_i18n": {str(why): as_dict(why) for why in self.dropped},
            "skipped_bad_rows_i18n": [e.to_dict() for e in self.loaded.skipped[:20]],
            "replayed_examples": self.replayed,
            # raw text: documents joined with EOS and cut into max_seq_len blocks (the examples)
            **({"documents": self.loaded.count, "blocks": len(encoded)} if is_raw_text(self.loaded) else {}),
            "reasoning_examples": self.loaded.reasoning_count, "tool_examples": self.loaded.tool_count,
            "detection_note": str(self.loaded.note), "detection_note_i18n": as_dict(self.loaded.note),
        }


PARALLEL_FROM = 5000  # examples; below this, worker start-up costs more than it saves
CACHE_VERSION = "2"  # bump when encoding changes meaning


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    parts = [backend.to_str() if backend is not None else repr(tokenizer.get_vocab()),
             str(tokenizer.chat_template), str(tokenizer.eos_token), str(tokenizer.bos_token)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _cache_key(loaded: LoadedData, tokenizer, mask: str, max_seq_len: int) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{mask}|{max_seq_len}|{tokenizer_fingerprint(tokenizer)}".encode())
    for example in loaded.examples:
        digest.update(json.dumps([example.where, example.messages, example.text, example.tools],
                                 ensure_ascii=False).encode())
    return digest.hexdigest()[:32]


def _encode_one(row: dict, tokenizer, mask: str, max_seq_len: int) -> dict:
    example = Example(row["where"], messages=json.loads(row["messages"]) if row["messages"] else None,
                      text=row["text"], tools=json.loads(row["tools"]) if row["tools"] else None)
    result = encode(tokenizer, example, mask, max_seq_len)
    if isinstance(result, Dropped):
        return {"input_ids": [], "labels": [], "dropped": str(result)}
    return {"input_ids": result.input_ids, "labels": result.labels, "dropped": ""}


def is_raw_text(loaded: LoadedData) -> bool:
    return bool(loaded.examples) and all(e.text is not None for e in loaded.examples)


def encode_all(loaded: LoadedData, tokenizer, mask: str, max_seq_len: int) -> tuple[list, Counter, list]:
    """Encode every example (cached per examples + tokenizer + settings under the workspace); raw text is
    joined and cut into max_seq_len blocks instead (engine/data/raw_text.py), every token trained.

    The Data tab and the trainer share this cache, so a dataset checked in the UI trains
    without tokenising again; large files are tokenised by several processes via `datasets`.
    """
    from datasets import Dataset, load_from_disk

    from engine.core.workspace import subdir

    if is_raw_text(loaded):
        from engine.data.raw_text import chunk_documents

        return chunk_documents(tokenizer, [e.text for e in loaded.examples], max_seq_len).blocks, Counter(), []
    folder = subdir("cache") / "encoded" / _cache_key(loaded, tokenizer, mask, max_seq_len)
    if (folder / "dataset_info.json").is_file():
        encoded = load_from_disk(str(folder))
    else:
        rows = Dataset.from_dict({
            "where": [e.where for e in loaded.examples],
            "messages": [json.dumps(e.messages, ensure_ascii=False) if e.messages else "" for e in loaded.examples],
            "text": [e.text for e in loaded.examples],
            "tools": [json.dumps(e.tools, ensure_ascii=False) if e.tools else "" for e in loaded.examples],
        })
        workers = min(os.cpu_count() or 1, 8) if len(rows) >= PARALLEL_FROM else None
        encoded = rows.map(_encode_one, fn_kwargs={"tokenizer": tokenizer, "mask": mask, "max_seq_len": max_seq_len},
                           remove_columns=["messages", "text", "tools"], num_proc=workers, desc="tokenising")
        tmp = folder.with_name(folder.name + f".{os.getpid()}.partial")
        encoded.save_to_disk(str(tmp))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)  # atomic: a half-written cache is never read
    kept, dropped, dropped_rows = [], Counter(), []
    for where, ids, labels, reason in zip(encoded["where"], encoded["input_ids"], encoded["labels"],
                                          encoded["dropped"]):
        if reason:
            dropped[reason] += 1
            dropped_rows.append(f"{where}: {reason}")
        else:
            kept.append(Encoded(ids, labels))
    return kept, dropped, dropped_rows


def validation_indices(count: int, fraction: float, seed: int) -> set[int]:
    """Which of `count` kept examples are held out for validation: a seeded shuffle, the same cut for the
    trainer and every later evaluation of the run (none below 4 examples)."""
    if fraction <= 0 or count < 4:
        return set()
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return set(order[:max(1, int(round(count * fraction)))])


def prepare_dataset(data: DataConfig, tokenizer, max_seq_len: int, seed: int = 0, objective=None) -> Prepared:
    """The trainer's instruction data: load, encode with the masking rules, drop and count, split, replay.
    `objective` (the run's declaration, engine/core/objectives.py) is taken for the shared signature."""
    loaded = load_examples(data.train, data.format, data.columns, data.skip_bad_rows, split=data.split,
                           subset=data.subset, reasoning=data.reasoning)
    kept, dropped, rows = encode_all(loaded, tokenizer, data.mask, max_seq_len)
    if not kept:
        raise ValueError(f"{loaded.file}: every example was dropped ({dict(dropped)}); "
                         "raise max_seq_len or shorten the prompts")
    held = validation_indices(len(kept), data.validation_split, seed)
    validation = [e for i, e in enumerate(kept) if i in held]
    kept = [e for i, e in enumerate(kept) if i not in held]
    replayed = replay_examples(data, tokenizer, max_seq_len, seed)  # [] unless data.replay is set
    return Prepared(loaded, kept + replayed, validation, dropped, rows, replayed=len(replayed))


# ---- replay (continual learning): examples of an earlier run or file mixed into this run's training ---
def earlier_examples(earlier, tokenizer, max_seq_len: int) -> list:
    """The earlier run's training examples (its own split and replay included), encoded for this run."""
    return prepare_dataset(earlier.data, tokenizer, max_seq_len, earlier.train.seed).train


def replay_examples(data: DataConfig, tokenizer, max_seq_len: int, seed: int = 0) -> list:
    """`data.replay_fraction` of the replay source's training examples (seeded), or [] when replay is off."""
    if not str(data.replay).strip() or data.replay_fraction <= 0:
        return []
    source = resolve_run(data.replay)
    if source.is_dir():
        earlier, _ = earlier_run(source)
        pool = earlier_examples(earlier, tokenizer, max_seq_len)
    else:
        pool = prepare_dataset(DataConfig(train=str(data.replay), mask=data.mask), tokenizer, max_seq_len, seed).train
    count = max(1, round(len(pool) * data.replay_fraction))
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    return [pool[i] for i in sorted(order[:count])]
