"""The longest micro-batch a dataset really makes, from its examples' token lengths (pure).

Without the data, the estimate assumes every row of a batch is max_seq_len tokens long. With it, a
step's activations and logits follow the longest batch the data can produce:

- padding (the default collator): every row of a batch is padded to the batch's longest example, so
  the longest batch is `batch_size` rows of the longest example's length (a preference step forwards
  the chosen and the rejected answer of each pair, both padded to the longest);
- packing (engine/training/hf_trainer.py): the batch's examples are flattened into one row without
  padding, so the longest batch holds the `batch_size` longest examples end to end.

Lengths come from the Data tab's check (`python -m engine data inspect`) and from the trainer's own
prepared data, both through Prepared.stats (engine/data/dataset.py), measured at some max_seq_len:
an example that reached that limit may be longer, and counts as max_seq_len at any other setting.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataLengths:
    longest: tuple[int, ...]  # token lengths of the longest examples, longest first (a pair: prompt + longer answer)
    count: int  # examples in the data
    limit: int  # the max_seq_len they were measured at (lengths there were truncated)

    @classmethod
    def from_stats(cls, stats: dict | None, limit: int) -> DataLengths | None:
        """From the data statistics (Prepared.stats: `longest_lengths`, `examples`); None when they lack lengths."""
        stats = stats or {}
        longest = stats.get("longest_lengths")
        if not longest or not stats.get("examples"):
            return None
        return cls(tuple(sorted((int(n) for n in longest), reverse=True)), int(stats["examples"]), int(limit))

    def length_at(self, n: int, max_seq_len: int) -> int:
        """The length of one measured example when training at `max_seq_len`."""
        return max_seq_len if n >= self.limit else min(n, max_seq_len)

    def rows(self, batch_size: int) -> int:
        """Examples in the fullest batch (a dataset smaller than a batch makes one short batch)."""
        return max(1, min(batch_size, self.count))

    def padded_row(self, max_seq_len: int) -> int:
        """Tokens of a padded row in the longest batch: the longest example's."""
        return self.length_at(self.longest[0], max_seq_len)

    def packed_tokens(self, batch_size: int, max_seq_len: int) -> int:
        """Tokens of the longest packed batch: the `batch_size` longest examples end to end. Beyond the
        lengths kept, each further example counts as long as the shortest kept one (an upper bound)."""
        rows = self.rows(batch_size)
        kept = [self.length_at(n, max_seq_len) for n in self.longest[:rows]]
        return sum(kept) + (rows - len(kept)) * kept[-1]

