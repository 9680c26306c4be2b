"""Render a conversation with the model's chat template and mark which tokens are trained.

Works for any template without knowing its markup: render the conversation up to each
assistant turn (with the generation prompt) and through that turn; the characters between the
two renderings are the assistant's answer plus its end-of-turn marker. The fast tokenizer's
offset mapping turns those character spans into token labels. Pure: takes a tokenizer, does
no I/O.

Tool calls are part of the assistant turn that makes them, so they are trained with it; tool turns, the
tools list, system and user turns are not. An assistant turn with `weight` 0 (OpenAI fine-tuning files) is
shown but not trained. Reasoning kept in a turn (data.reasoning) is trained with it. Where a template
renders the generation prompt differently from an answered turn (e.g. an empty <think> block it writes only
for the prompt), the trained span starts where the two renderings part.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from engine.core.messages import Message
from engine.data.chat_render import for_template
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


def encode_each(examples, encode_one) -> tuple[list, Counter, list]:
    """`encode_one(example)` for every example: (kept, dropped reason -> count, "line N: reason" rows)."""
    kept, dropped, rows = [], Counter(), []
    for example in examples:
        result = encode_one(example)
        if isinstance(result, Dropped):
            dropped[str(result)] += 1
            rows.append(f"{example.where}: {result}")
        else:
            kept.append(result)
    return kept, dropped, rows


def render(tokenizer, messages: list[dict], generation_prompt: bool = False, tools: list[dict] | None = None) -> str:
    messages, extra = for_template(tokenizer, messages, tools)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt, **extra)


def _shared(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def turn_spans(tokenizer, messages: list[dict], full: str, tools: list[dict] | None = None) -> dict:
    """{index of an assistant turn: its character span in `full`} (the answer and its end-of-turn marker)."""
    spans, cursor = {}, 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:index], generation_prompt=True, tools=tools)
        through = render(tokenizer, messages[: index + 1], tools=tools)
        start = len(before) if through.startswith(before) else _shared(before, through)
        if full.startswith(through) and start >= cursor and len(through) > start:
            spans[index] = (start, len(through))
            cursor = len(through)
            continue
        # Templates that rewrite earlier turns (e.g. strip reasoning) break the prefix property:
        # fall back to finding the answer text itself after the previous span.
        content = message["content"]
        start = full.find(content, cursor) if content else -1
        if start < 0:
            continue
        spans[index] = (start, start + len(content))
        cursor = start + len(content)
    return spans


def assistant_spans(tokenizer, messages: list[dict], full: str, mask: str,
                    tools: list[dict] | None = None) -> list[tuple[int, int]]:
    """Character spans of `full` to train on, for mask assistant | last_assistant | none."""
    if mask == "none":
        return [(0, len(full))]
    spans = turn_spans(tokenizer, messages, full, tools)
    trained = [i for i in sorted(spans) if messages[i].get("weight", 1) != 0]
    if mask == "last_assistant":
        trained = trained[-1:]
    return [spans[i] for i in trained]


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
    full = render(tokenizer, example.messages, tools=example.tools)
    spans = assistant_spans(tokenizer, example.messages, full, mask, example.tools)
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
        text = render(tokenizer, example.messages, tools=example.tools)
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    units = _units(tokenizer, text, encoded, offsets)
    mark_parts(units, part_spans(tokenizer, example, text) if example.messages is not None else [])
    return units


def untrained_units(tokenizer, text: str) -> list[dict]:
    """A text none of whose tokens is trained (a prompt the model answers itself), in displayed units."""
    tokens = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = tokens["input_ids"]
    return _units(tokenizer, text, Encoded(ids, [IGNORE_INDEX] * len(ids)), tokens["offset_mapping"])


def _units(tokenizer, text: str, encoded: Encoded, offsets) -> list[dict]:
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
            last = {"token": text[cursor:end], "trained": trained, "start": start}
            units.append(last)
            cursor = end
    if len(encoded.input_ids) == len(offsets) and last is not None:
        last["token"] += text[cursor:]  # trailing characters no token span covers
    return units


def part_spans(tokenizer, example: Example, full: str) -> list[tuple[int, int, str]]:
    """(start, end, part) character spans of the rendered text that are not plain chat: "tool_call" (the
    part of an assistant turn after its content), "tool_output" (a tool turn's content) and "reasoning"."""
    messages, found, cursor = example.messages, [], 0
    spans = turn_spans(tokenizer, messages, full, example.tools)
    for index, message in enumerate(messages):
        if message["role"] == "tool" and message["content"]:
            start = full.find(message["content"], cursor)
            if start >= 0:
                found.append((start, start + len(message["content"]), "tool_output"))
                cursor = start + len(message["content"])
        elif index in spans:
            start, end = spans[index]
            reasoning = _reasoning_of(message)
            at = full.find(reasoning, start, end) if reasoning else -1
            if at >= 0:
                found.append((at, at + len(reasoning), "reasoning"))
            content = message["content"].split("</think>")[-1].strip()
            after = full.find(content, start, end) + len(content) if content else start
            if message.get("tool_calls"):
                found.append((max(after, start), end, "tool_call"))
            cursor = end
    return found


def _reasoning_of(message: dict) -> str:
    if message.get("reasoning_content"):
        return message["reasoning_content"].strip()
    content = message["content"]
    return content.split("<think>", 1)[1].split("</think>", 1)[0].strip() if "</think>" in content else ""


def mark_parts(units: list[dict], parts: list[tuple[int, int, str]]) -> None:
    """Give each unit that starts inside a part its name (`part`); drop the helper offsets."""
    for unit in units:
        start = unit.pop("start", None)
        if start is None:
            continue
        for begin, end, part in parts:
            if begin <= start < end:
                unit["part"] = part
                break
