"""Render a conversation with the model's chat template and mark which tokens are trained.

Works for any template without knowing its markup: render the conversation up to each
assistant turn (with the generation prompt) and through that turn; the characters between the
two renderings are the assistant's answer plus its end-of-turn marker. The fast tokenizer's
offset mapping turns those character spans into token labels. Pure: takes a tokenizer, does
no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.formats import Example

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


class Dropped(str):
    """Why an example cannot be trained (a str so it can be counted and shown)."""


def render(tokenizer, messages: list[dict], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer, messages: list[dict], full: str, mask: str) -> list[tuple[int, int]]:
    """Character spans of `full` to train on, for mask assistant | last_assistant | none."""
    if mask == "none":
        return [(0, len(full))]
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if mask == "last_assistant":
        turns = turns[-1:]
    spans, cursor = [], 0
    for index in turns:
        before = render(tokenizer, messages[:index], generation_prompt=True)
        through = render(tokenizer, messages[: index + 1])
        if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
            spans.append((len(before), len(through)))
            cursor = len(through)
            continue
        # Templates that rewrite earlier turns (e.g. strip reasoning) break the prefix property:
        # fall back to finding the answer text itself after the previous span.
        content = messages[index]["content"]
        start = full.find(content, cursor)
        if start < 0:
            continue
        spans.append((start, start + len(content)))
        cursor = start + len(content)
    return spans


def encode(tokenizer, example: Example, mask: str, max_seq_len: int) -> Encoded | Dropped:
    if example.text is not None:
        ids = tokenizer(example.text, add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids = ids + [tokenizer.eos_token_id]
        ids = ids[:max_seq_len]
        return Encoded(ids, list(ids))
    full = render(tokenizer, example.messages)
    spans = assistant_spans(tokenizer, example.messages, full, mask)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [
        token if any(start <= begin < end for start, end in spans) and end_ > begin else IGNORE
        for token, (begin, end_) in zip(ids, offsets)
    ]
    if not any(x != IGNORE for x in labels):
        return Dropped("no trainable answer tokens after rendering the chat template")
    if len(ids) > max_seq_len:
        ids, labels = ids[:max_seq_len], labels[:max_seq_len]
        if not any(x != IGNORE for x in labels):
            return Dropped(f"the answer starts after max_seq_len ({max_seq_len} tokens)")
    return Encoded(ids, labels)


def token_preview(tokenizer, encoded: Encoded) -> list[dict]:
    """[{"token": text, "trained": bool}] for showing which tokens are trained."""
    pieces = [tokenizer.decode([t]) for t in encoded.input_ids]
    return [{"token": p, "trained": label != IGNORE} for p, label in zip(pieces, encoded.labels)]
