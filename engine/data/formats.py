"""The data-format registry: every format turns a record into one `Example`.

An example is either a conversation (a list of {"role", "content"} with roles system, user,
assistant) or, for continued pre-training, plain text. All later steps (masking, preview,
training) see only this normalised form.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.core.registry import FORMATS
from engine.data.errors import FieldError


@dataclass
class Example:
    where: str  # "line 3" / "row 3" in the source file
    messages: list[dict] | None = None
    text: str | None = None


@dataclass(frozen=True)
class Format:
    key: str
    description: str
    required: tuple[str, ...]  # fields whose presence identifies the format
    convert: Callable[[dict], Example]  # raises FieldError


ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "system": "system"}


def _text(record: dict, field: str, required: bool = True) -> str:
    value = record.get(field)
    if value is None:
        if required:
            raise FieldError(field, "missing", f"every example needs '{field}'")
        return ""
    if not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}", "make it a string")
    return value


def check_conversation(messages: list[dict], field: str) -> list[dict]:
    """System first (optional), then user and assistant alternating, ending with assistant."""
    if not messages:
        raise FieldError(field, "the conversation is empty", "add at least one user and one assistant turn")
    start = 1 if messages[0]["role"] == "system" else 0
    expected = "user"
    for index, message in enumerate(messages[start:], start=start):
        if message["role"] != expected:
            raise FieldError(f"{field}[{index}]", f"role '{message['role']}' out of order; expected '{expected}'",
                             "turns must go system (optional), user, assistant, user, assistant, ...")
        expected = "assistant" if expected == "user" else "user"
    if not any(m["role"] == "assistant" for m in messages):
        raise FieldError(field, "no assistant turn", "add the answer the model should learn")
    if messages[-1]["role"] != "assistant":
        raise FieldError(f"{field}[{len(messages) - 1}]", "the conversation ends with a user turn",
                         "end every conversation with the assistant's answer")
    return messages


def _alpaca(record: dict) -> Example:
    messages = []
    system = _text(record, "system", required=False)
    if system:
        messages.append({"role": "system", "content": system})
    history = record.get("history") or []
    if not isinstance(history, list):
        raise FieldError("history", f"expected a list of [question, answer] pairs, got {type(history).__name__}")
    for index, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise FieldError(f"history[{index}]", "expected a [question, answer] pair of strings")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    instruction = _text(record, "instruction")
    extra = _text(record, "input", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    if not prompt.strip():
        raise FieldError("instruction", "empty", "write the instruction the model should follow")
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": _text(record, "output")}]
    return Example(where="", messages=check_conversation(messages, "instruction"))


def _turns(record: dict, field: str, role_key: str, content_key: str, roles: dict) -> list[dict]:
    turns = record.get(field)
    if turns is None:
        raise FieldError(field, "missing")
    if not isinstance(turns, list):
        raise FieldError(field, f"expected a list of turns, got {type(turns).__name__}")
    messages = []
    for index, turn in enumerate(turns):
        where = f"{field}[{index}]"
        if not isinstance(turn, dict):
            raise FieldError(where, f"expected an object with '{role_key}' and '{content_key}', got {type(turn).__name__}")
        for key in (role_key, content_key):
            if key not in turn:
                raise FieldError(f"{where}.{key}", f"missing (found: {', '.join(turn) or 'nothing'})")
        role = turn[role_key]
        if role not in roles:
            raise FieldError(f"{where}.{role_key}", f"unknown role {role!r}",
                             f"use one of: {', '.join(sorted(set(roles)))}")
        content = turn[content_key]
        if not isinstance(content, str):
            raise FieldError(f"{where}.{content_key}", f"expected text, got {type(content).__name__}")
        messages.append({"role": roles[role], "content": content})
    return messages


def _sharegpt(record: dict) -> Example:
    messages = _turns(record, "conversations", "from", "value", SHAREGPT_ROLES)
    system = record.get("system")
    if isinstance(system, str) and system and (not messages or messages[0]["role"] != "system"):
        messages.insert(0, {"role": "system", "content": system})
    return Example(where="", messages=check_conversation(messages, "conversations"))


def _messages(record: dict) -> Example:
    messages = _turns(record, "messages", "role", "content", {r: r for r in ROLES})
    return Example(where="", messages=check_conversation(messages, "messages"))


def _plain_text(record: dict) -> Example:
    text = _text(record, "text")
    if not text.strip():
        raise FieldError("text", "empty")
    return Example(where="", text=text)


FORMATS.register("alpaca", Format("alpaca", "instruction / input / output (+ system, history)",
                                  ("instruction", "output"), _alpaca))
FORMATS.register("sharegpt", Format("sharegpt", "conversations: [{from, value}] (human / gpt / system)",
                                    ("conversations",), _sharegpt))
FORMATS.register("messages", Format("messages", "messages: [{role, content}] (OpenAI style)",
                                    ("messages",), _messages))
FORMATS.register("text", Format("text", "text: plain text for continued pre-training (every token trained)",
                                ("text",), _plain_text))


def detect(record: dict) -> str | None:
    """The first format whose identifying fields are all present, or None."""
    for key, fmt in FORMATS.items():
        if all(field in record for field in fmt.required):
            return key
    return None


def expected_fields() -> str:
    return "; ".join(f"{key}: {', '.join(fmt.required)}" for key, fmt in FORMATS.items())
