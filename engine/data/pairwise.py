"""Preference examples (pairwise and unpaired) encoded for the preference trainers, and their token preview.

The masking rule is the one of instruction data (engine/data/masking.py): the conversation
prompt + answer is rendered with the chat template, and the answer's tokens are those of the last
assistant turn found by rendering prefixes (`assistant_spans`, mask `last_assistant`). Everything
before the first answer token is the prompt; the answer runs to the end of that span (the
end-of-turn marker included). For a pair, the prompt is the tokens both renderings share, so the
chosen and rejected sequences are prompt + their own answer, exactly as TRL's trainers expect them
(`prompt_ids`, `chosen_ids`, `rejected_ids` / `completion_ids`). The Data tab and the trainer use
the same functions, so the highlighted tokens are the trained ones.

Truncation keeps the start, like TRL's `keep_start`: an answer is cut to fit `max_seq_len` after the
prompt; an example whose prompt alone fills it is dropped and counted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from engine.core.messages import as_dict
from engine.data.formats import FORMATS, Example
from engine.data.masking import IGNORE_INDEX, Dropped, Encoded, assistant_spans, encode_each, render, token_preview


@dataclass
class EncodedPreference:
    prompt_ids: list[int]
    chosen_ids: list[int]  # pairwise: the chosen answer; unpaired: the completion
    rejected_ids: list[int] | None = None  # pairwise only
    label: bool | None = None  # unpaired only: the completion is desirable

    @property
    def answers(self) -> list[list[int]]:
        return [self.chosen_ids] + ([self.rejected_ids] if self.rejected_ids is not None else [])

    @property
    def input_ids(self) -> list[int]:
        """Every distinct token of the example (the prompt once), for the data statistics."""
        return self.prompt_ids + [t for answer in self.answers for t in answer]

    @property
    def trained_tokens(self) -> int:
        return sum(len(answer) for answer in self.answers)

    def sequences(self) -> list[Encoded]:
        """prompt + each answer, with the prompt masked: what one training step forwards."""
        return [Encoded(self.prompt_ids + answer, [IGNORE_INDEX] * len(self.prompt_ids) + answer)
                for answer in self.answers]


def answer_texts(example: Example) -> list[str]:
    return [example.chosen, example.rejected] if example.kind == "pairwise" else [example.completion]


def conversation(example: Example, answer: str) -> list[dict]:
    return example.messages + [{"role": "assistant", "content": answer}]


def _split(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(tokens before the last assistant answer, the answer's tokens through its end-of-turn marker)."""
    full = render(tokenizer, messages)
    spans = assistant_spans(tokenizer, messages, full, "last_assistant")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    trained = [i for i, (begin, end) in enumerate(offsets)
               if end > begin and any(start <= begin < stop for start, stop in spans)]
    if not trained:
        return ids, []
    return ids[:trained[0]], ids[trained[0]:trained[-1] + 1]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def encode_preference(tokenizer, example: Example, max_seq_len: int) -> EncodedPreference | Dropped:
    parts = [_split(tokenizer, conversation(example, text)) for text in answer_texts(example)]
    if any(not answer for _, answer in parts):
        return Dropped("drop.no_answer_tokens")
    sequences = [prompt + answer for prompt, answer in parts]
    # the prompt is what every rendering shares (a token can merge across the boundary, as TRL notes)
    shared = min([len(parts[0][0])] + [_common_prefix(sequences[0], s) for s in sequences[1:]])
    prompt = sequences[0][:shared]
    if len(prompt) >= max_seq_len:
        return Dropped("drop.prompt_fills", max_seq_len=max_seq_len)
    answers = [s[shared:max_seq_len] for s in sequences]
    if example.kind == "pairwise":
        return EncodedPreference(prompt, answers[0], answers[1])
    return EncodedPreference(prompt, answers[0], label=example.label)


def preference_previews(tokenizer, example: Example, encoded: EncodedPreference) -> list[list[dict]]:
    """The token preview (masking.token_preview units) of prompt + each answer: chosen, then rejected."""
    return [token_preview(tokenizer, Example(example.where, messages=conversation(example, text)), sequence)
            for text, sequence in zip(answer_texts(example), encoded.sequences())]


def encode_all_preference(loaded, tokenizer, max_seq_len: int) -> tuple[list, Counter, list]:
    """Encode every preference example; (kept, dropped reason -> count, "line N: reason" rows).

    Not cached like instruction data (engine/data/dataset.py): preference files are small (thousands of
    pairs), and encoding one is two renderings."""
    return encode_each(loaded.examples, lambda example: encode_preference(tokenizer, example, max_seq_len))


def data_kind(loaded) -> str:
    """conversation | text | pairwise | unpaired: what every example of a loaded file is."""
    return FORMATS.get(loaded.format).kind


def kind_mismatch(kind: str, wanted: str, objective: str, file: str) -> str | None:
    """Why this data cannot train with this objective (None when it can)."""
    if kind == wanted or (wanted == "conversation" and kind == "text"):
        return None
    if kind == "prompt":
        return (f"{file} holds prompts without answers (a prompt and reference columns); train them with "
                "train.objective grpo, which samples answers and scores them with rewards")
    if wanted == "prompt":
        return (f"{file} holds {kind} data, but {objective} trains on prompts it answers itself: a field prompt (text "
                "or messages) and reference columns such as answer, without the answers")
    if wanted == "conversation":
        return (f"{file} holds {kind} preference data; train it with a preference objective (train.objective dpo, "
                "orpo or simpo for pairs, kto for answers marked desirable or not), or pick instruction data")
    if wanted == "pairwise":
        return (f"{file} holds {kind} data, but {objective} trains on preference pairs: fields prompt, chosen, "
                "rejected (text or message lists)" + ("; for answers marked desirable or not use kto"
                                                     if kind == "unpaired" else ""))
    return (f"{file} holds {kind} data, but {objective} trains on answers marked desirable or not: fields prompt, "
            "completion, label" + ("; for pairs use dpo, orpo or simpo" if kind == "pairwise" else ""))


def prepare_preference(data, tokenizer, max_seq_len: int, seed: int = 0, objective=None):
    """The trainer's preference data: load, check the kind, encode, drop and count, split (as prepare_dataset).
    `objective`: its declaration (engine/core/objectives.py) names the kind it trains on; None: dpo's pairs."""
    from engine.data import load_examples
    from engine.data.dataset import Prepared, validation_indices

    loaded = load_examples(data.train, data.format, data.columns, data.skip_bad_rows, split=data.split,
                           subset=data.subset, reasoning=data.reasoning)
    wanted, key = (objective.data_kind, objective.key) if objective is not None else ("pairwise", "dpo")
    why = kind_mismatch(data_kind(loaded), wanted, key, loaded.file)
    if why:
        raise ValueError(why)
    kept, dropped, rows = encode_all_preference(loaded, tokenizer, max_seq_len)
    if not kept:
        raise ValueError(f"{loaded.file}: every example was dropped ({dict(dropped)}); raise max_seq_len or shorten "
                         "the prompts")
    held = validation_indices(len(kept), data.validation_split, seed)
    return Prepared(loaded, [e for i, e in enumerate(kept) if i not in held],
                    [e for i, e in enumerate(kept) if i in held],
                    dropped, rows)


def preview_entry(tokenizer, example: Example, max_seq_len: int) -> dict:
    """One example as the Data tab shows it: the chosen (or the only) answer's tokens in `tokens`, the rejected
    answer's in `rejected_tokens`, the unpaired label in `label`."""
    encoded = encode_preference(tokenizer, example, max_seq_len)
    entry = {"where": example.where, "kind": example.kind, "dropped": "", "tokens": []}
    if example.kind == "unpaired":
        entry["label"] = example.label
    if isinstance(encoded, Dropped):
        entry["dropped"], entry["dropped_i18n"] = str(encoded), as_dict(encoded)
        return entry
    previews = preference_previews(tokenizer, example, encoded)
    entry["tokens"] = previews[0]
    if example.kind == "pairwise":
        entry["rejected_tokens"] = previews[1]
    return entry
