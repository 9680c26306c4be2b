"""Data preparation for training and preview: load, encode with masks, drop and count, split."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from engine.config import DataConfig
from engine.data import LoadedData, load_examples
from engine.masking import Dropped, Encoded, encode


@dataclass
class Prepared:
    loaded: LoadedData
    train: list[Encoded]
    validation: list[Encoded]
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    dropped_rows: list[str] = field(default_factory=list)  # "line 7: reason"

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
            "dropped": dict(self.dropped), "dropped_rows": self.dropped_rows[:20],
            "skipped_bad_rows": [str(e) for e in self.loaded.skipped[:20]],
            "skipped_bad_rows_count": self.loaded.skipped_count,
        }


def encode_all(loaded: LoadedData, tokenizer, mask: str, max_seq_len: int) -> tuple[list, Counter, list]:
    kept, dropped, rows = [], Counter(), []
    for example in loaded.examples:
        result = encode(tokenizer, example, mask, max_seq_len)
        if isinstance(result, Dropped):
            dropped[str(result)] += 1
            rows.append(f"{example.where}: {result}")
        else:
            kept.append(result)
    return kept, dropped, rows


def prepare(data: DataConfig, tokenizer, max_seq_len: int, seed: int = 0) -> Prepared:
    loaded = load_examples(data.train, data.format, data.columns, data.skip_bad_rows)
    kept, dropped, rows = encode_all(loaded, tokenizer, data.mask, max_seq_len)
    if not kept:
        raise ValueError(f"{loaded.file}: every example was dropped ({dict(dropped)}); "
                         "raise max_seq_len or shorten the prompts")
    validation = []
    if data.validation_split > 0 and len(kept) >= 4:
        order = list(range(len(kept)))
        random.Random(seed).shuffle(order)
        n_val = max(1, int(round(len(kept) * data.validation_split)))
        held = set(order[:n_val])
        validation = [e for i, e in enumerate(kept) if i in held]
        kept = [e for i, e in enumerate(kept) if i not in held]
    return Prepared(loaded, kept, validation, dropped, rows)
