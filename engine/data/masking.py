"""Render a conversation with the model's chat template and mark which tokens are trained.

Works for any template without knowing its markup: render the conversation up to each
assistant turn (with the generation prompt) and through that turn; the characters between the
two renderings are the assistant's answer plus its end-of-turn marker. The fast tokenizer's
offset mapping turns those character spans into token labels. Pure: takes a tokenizer, does
no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.messages import Message
from engine.data.formats import Example

IGNORE_INDEX = -100  # the label of a position that is not trained (the value transformers and torch use)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


class Dropped(Message):
    """Why an example cannot be trained (a catalogue message, so a str that can be counted and shown)."""


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


def _text_ids(tokenizer, text: str, offsets: bool = False) -> dict:
    """A plain-text example's tokens: the tokenizer's own special tokens (BOS) plus an EOS at the end."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=offsets)
    if tokenizer.eos_token_id is not None:
        enc["input_ids"] = enc["input_ids"] + [tokenizer.eos_token_id]
        if offsets:
            enc["offset_mapping"] = enc["offset_mapping"] + [(0, 0)]  # not part of the text
    return enc


def encode(tokenizer, example: Example, mask: str, max_seq_len: int) -> Encoded | Dropped:
    if example.text is not None:
        ids = _text_ids(tokenizer, example.text)["input_ids"][:max_seq_len]
        return Encoded(ids, list(ids))
    full = render(tokenizer, example.messages)
    spans = assistant_spans(tokenizer, example.messages, full, mask)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [
        token if any(start <= begin < end for start, end in spans) and end_ > begin else IGNORE_INDEX
        for token, (begin, end_) in zip(ids, offsets)
    ]
    if not any(x != IGNORE_INDEX for x in labels):
        return Dropped("drop.no_answer_tokens")
    if len(ids) > max_seq_len:
        ids, labels = ids[:max_seq_len], labels[:max_seq_len]
        if not any(x != IGNORE_INDEX for x in labels):
            return Dropped("drop.answer_after_limit", max_seq_len=max_seq_len)
    return Encoded(ids, labels)


def token_preview(tokenizer, example: Example, encoded: Encoded) -> list[dict]:
    """[{"token": text, "trained": bool}]: the example as it is trained, in displayed units.

    A unit is one token, or the tokens that share a character: byte-level tokenizers split a Chinese
    character or an emoji into pieces that are not text on their own (decoding each would print U+FFFD),
    so pieces whose character spans overlap are shown as one unit, trained only if all of them are.
    The units, concatenated, are the rendered text exactly (up to max_seq_len when it was cut), with any
    token that is not part of the text (a BOS or EOS the tokenizer adds) shown as itself."""
    if example.text is not None:
        text, offsets = example.text, _text_ids(tokenizer, example.text, offsets=True)["offset_mapping"]
    else:
        text = render(tokenizer, example.messages)
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    units: list[dict] = []
    last = None  # the unit that shows the text up to `cursor`
    cursor = 0  # characters of `text` shown so far
    for token, label, (start, end) in zip(encoded.input_ids, encoded.labels, offsets):
        trained = label != IGNORE_INDEX
        if end <= start:  # added outside the text (BOS, EOS)
            units.append({"token": tokenizer.decode([token]), "trained": trained})
        elif start < cursor and last is not None:  # another piece of characters already shown
            last["token"] += text[cursor:end]
            last["trained"] = last["trained"] and trained
            cursor = max(cursor, end)
        else:  # a unit of its own, with any characters the previous token's span left out
            last = {"token": text[cursor:end], "trained": trained}
            units.append(last)
            cursor = end
    if len(encoded.input_ids) == len(offsets) and last is not None:
        last["token"] += text[cursor:]  # trailing characters no token span covers
    return units
