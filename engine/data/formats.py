"""The data-format registry: every format turns a record into one `Example`.

An example is one of four kinds (`Example.kind`, and `Format.kind` for every record of a format):
- conversation: a list of {"role", "content"} with roles system, user, assistant (instruction tuning);
- text: plain text, for continued pre-training;
- pairwise: a prompt conversation (ending with a user turn) with a chosen and a rejected answer
  (preference objectives: DPO, ORPO, SimPO);
- unpaired: a prompt conversation with one completion labelled desirable or not (KTO).
All later steps (masking, preview, training) see only this normalised form.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.core.messages import Message as M
from engine.core.registry import FORMATS
from engine.data.errors import FieldError

KINDS = ("conversation", "text", "pairwise", "unpaired")
PREFERENCE_KINDS = ("pairwise", "unpaired")


@dataclass
class Example:
    where: str  # "line 3" / "row 3" in the source file
    messages: list[dict] | None = None  # the conversation; for preference kinds the prompt (ends with a user turn)
    text: str | None = None
    chosen: str | None = None  # pairwise: the preferred answer
    rejected: str | None = None  # pairwise: the answer not preferred
    completion: str | None = None  # unpaired: the answer ...
    label: bool | None = None  # ... and whether it is desirable

    @property
    def kind(self) -> str:
        if self.rejected is not None:
            return "pairwise"
        if self.label is not None:
            return "unpaired"
        return "text" if self.text is not None else "conversation"


@dataclass(frozen=True)
class Format:
    key: str
    description: str
    required: tuple[str, ...]  # fields whose presence identifies the format
    convert: Callable[[dict], Example]  # raises FieldError
    kind: str = "conversation"  # what its examples are (KINDS); text for `text`


ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "system": "system"}


def _text(record: dict, field: str, required: bool = True) -> str:
    value = record.get(field)
    if value is None:
        if required:
            raise FieldError(field, M("field.missing"), M("field.needs", field=field))
        return ""
    if not isinstance(value, str):
        raise FieldError(field, M("field.expected_text", got=type(value).__name__), M("field.make_string"))
    return value


def check_conversation(messages: list[dict], field: str) -> list[dict]:
    """System first (optional), then user and assistant alternating, ending with assistant."""
    if not messages:
        raise FieldError(field, M("field.empty_conversation"), M("field.add_turns"))
    start = 1 if messages[0]["role"] == "system" else 0
    expected = "user"
    for index, message in enumerate(messages[start:], start=start):
        if message["role"] != expected:
            raise FieldError(f"{field}[{index}]", M("field.role_order", role=message["role"], expected=expected),
                             M("field.turn_order"))
        expected = "assistant" if expected == "user" else "user"
    if not any(m["role"] == "assistant" for m in messages):
        raise FieldError(field, M("field.no_assistant"), M("field.add_answer"))
    if messages[-1]["role"] != "assistant":
        raise FieldError(f"{field}[{len(messages) - 1}]", M("field.ends_with_user"), M("field.end_with_answer"))
    return messages


def _alpaca(record: dict) -> Example:
    messages = []
    system = _text(record, "system", required=False)
    if system:
        messages.append({"role": "system", "content": system})
    history = record.get("history") or []
    if not isinstance(history, list):
        raise FieldError("history", M("field.history_type", got=type(history).__name__))
    for index, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise FieldError(f"history[{index}]", M("field.history_pair"))
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    instruction = _text(record, "instruction")
    extra = _text(record, "input", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    if not prompt.strip():
        raise FieldError("instruction", M("field.empty"), M("field.write_instruction"))
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": _text(record, "output")}]
    return Example(where="", messages=check_conversation(messages, "instruction"))


def _turns(record: dict, field: str, role_key: str, content_key: str, roles: dict) -> list[dict]:
    turns = record.get(field)
    if turns is None:
        raise FieldError(field, M("field.missing"))
    if not isinstance(turns, list):
        raise FieldError(field, M("field.turns_type", got=type(turns).__name__))
    messages = []
    for index, turn in enumerate(turns):
        where = f"{field}[{index}]"
        if not isinstance(turn, dict):
            raise FieldError(where, M("field.turn_type", role_key=role_key, content_key=content_key,
                                       got=type(turn).__name__))
        for key in (role_key, content_key):
            if key not in turn:
                raise FieldError(f"{where}.{key}", M("field.missing_found", found=", ".join(turn) or "nothing"))
        role = turn[role_key]
        if role not in roles:
            raise FieldError(f"{where}.{role_key}", M("field.unknown_role", role=repr(role)),
                             M("field.use_role", choices=", ".join(sorted(set(roles)))))
        content = turn[content_key]
        if not isinstance(content, str):
            raise FieldError(f"{where}.{content_key}", M("field.expected_text", got=type(content).__name__))
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
        raise FieldError("text", M("field.empty"))
    return Example(where="", text=text)


FORMATS.register("alpaca", Format("alpaca", "instruction / input / output (+ system, history)",
                                  ("instruction", "output"), _alpaca))
FORMATS.register("sharegpt", Format("sharegpt", "conversations: [{from, value}] (human / gpt / system)",
                                    ("conversations",), _sharegpt))
FORMATS.register("messages", Format("messages", "messages: [{role, content}] (OpenAI style)",
                                    ("messages",), _messages))
FORMATS.register("text", Format("text", "text: plain text for continued pre-training (every token trained)",
                                ("text",), _plain_text, kind="text"))


# ---- preference data (engine/data/pairwise.py encodes it) -------------------------------------------
def _prompt(record: dict) -> list[dict]:
    """The prompt as a conversation ending with a user turn: `prompt` (text or a message list), else an alpaca
    `instruction` (+ `input`), with an optional `system`."""
    if "prompt" in record:
        value = record["prompt"]
        if isinstance(value, list):
            messages = _turns(record, "prompt", "role", "content", {r: r for r in ROLES})
        else:
            messages = [{"role": "user", "content": _text(record, "prompt")}]
    elif "instruction" in record:
        instruction, extra = _text(record, "instruction"), _text(record, "input", required=False)
        messages = [{"role": "user", "content": f"{instruction}\n\n{extra}" if extra.strip() else instruction}]
    else:
        raise FieldError("prompt", M("field.missing"), M("field.prompt_missing"))
    system = record.get("system")
    if isinstance(system, str) and system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return _check_prompt(messages, "prompt")


def _check_prompt(messages: list[dict], field: str) -> list[dict]:
    """A prompt is a conversation that waits for the assistant: roles in order, ending with a user turn."""
    if not messages or not any(m["content"].strip() for m in messages if m["role"] == "user"):
        raise FieldError(field, M("field.empty"), M("field.write_prompt"))
    if messages[-1]["role"] != "user":
        raise FieldError(f"{field}[{len(messages) - 1}]", M("field.prompt_ends", role=messages[-1]["role"]),
                         M("field.prompt_end_user"))
    check_conversation(messages + [{"role": "assistant", "content": ""}], field)  # the turn order
    return messages


def _answer(record: dict, field: str) -> str | list[dict]:
    """An answer: text, or messages ending with the assistant's (a one-message list, or a whole conversation)."""
    value = record.get(field)
    if value is None:
        raise FieldError(field, M("field.missing"))
    if isinstance(value, str):
        if not value.strip():
            raise FieldError(field, M("field.empty"), M("field.write_answer"))
        return value
    if not isinstance(value, list):
        raise FieldError(field, M("field.answer_type", got=type(value).__name__))
    messages = _turns(record, field, "role", "content", {r: r for r in ROLES})
    if not messages or messages[-1]["role"] != "assistant":
        raise FieldError(field, M("field.last_not_assistant"), M("field.end_it"))
    return messages


def _split_answers(record: dict, fields: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    """(prompt conversation, answer texts). With no prompt field the answers may be whole conversations that share
    everything but their last turn (the "implicit prompt" form of Anthropic HH and TRL)."""
    answers = [_answer(record, f) for f in fields]
    if "prompt" in record or "instruction" in record:
        prompt = _prompt(record)
        texts = []
        for field, answer in zip(fields, answers):
            if isinstance(answer, list) and len(answer) != 1:
                raise FieldError(field, M("field.answer_messages", count=len(answer)), M("field.only_answer"))
            texts.append(answer if isinstance(answer, str) else answer[0]["content"])
        return prompt, texts
    if not all(isinstance(a, list) and len(a) > 1 for a in answers):
        raise FieldError("prompt", M("field.missing"), M("field.prompt_or_conversations", fields=" and ".join(fields)))
    prompt = answers[0][:-1]
    for field, answer in zip(fields[1:], answers[1:]):
        if answer[:-1] != prompt:
            raise FieldError(field, M("field.differs", other=fields[0]), M("field.share_turns"))
    return _check_prompt(prompt, fields[0]), [a[-1]["content"] for a in answers]


def _pairwise(record: dict) -> Example:
    prompt, (chosen, rejected) = _split_answers(record, ("chosen", "rejected"))
    if chosen == rejected:
        raise FieldError("rejected", M("field.same_as_chosen"), M("field.pair_differ"))
    return Example(where="", messages=prompt, chosen=chosen, rejected=rejected)


# True/False also match 1/0 (equal in Python), so JSON numbers and booleans read the same
LABELS = {True: True, False: False, "true": True, "false": False, "1": True, "0": False,
          "yes": True, "no": False, "desirable": True, "undesirable": False}


def _unpaired(record: dict) -> Example:
    prompt, (completion,) = _split_answers(record, ("completion",))
    label = record.get("label")
    key = label.strip().lower() if isinstance(label, str) else label
    if isinstance(key, float) and key.is_integer():
        key = int(key)
    if key not in LABELS:
        raise FieldError("label", M("field.label", label=repr(label)), M("field.label_hint"))
    return Example(where="", messages=prompt, completion=completion, label=LABELS[key])


FORMATS.register("pairwise", Format("pairwise", "prompt / chosen / rejected: preference pairs (text or messages)",
                                    ("chosen", "rejected"), _pairwise, kind="pairwise"))
FORMATS.register("unpaired", Format("unpaired", "prompt / completion / label: answers marked desirable or not (KTO)",
                                    ("completion", "label"), _unpaired, kind="unpaired"))


def detect(record: dict) -> str | None:
    """The first format whose identifying fields are all present, or None."""
    for key, fmt in FORMATS.items():
        if all(field in record for field in fmt.required):
            return key
    return None


def expected_fields() -> str:
    return "; ".join(f"{key}: {', '.join(fmt.required)}" for key, fmt in FORMATS.items())


from engine.data import prompts  # noqa: E402,F401  (prompt-only data for GRPO: registered after every format)
