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
from engine.data.turns import (
    CHAT_ROLES,
    SHAREGPT_ROLES,
    check_tool_conversation,
    is_rich,
    parse_tools,
    read_turns,
    think_block,
)

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
    tools: list[dict] | None = None  # conversation: the function schemas the chat template renders (turns.py)

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


def _checked(messages: list[dict], field: str) -> list[dict]:
    """Plain chats keep their strict alternation; chats with tool calls follow the tool-call order."""
    return check_tool_conversation(messages, field) if is_rich(messages) else check_conversation(messages, field)


def _with_system(record: dict, messages: list[dict]) -> list[dict]:
    system = record.get("system")
    if isinstance(system, str) and system and (not messages or messages[0]["role"] != "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def _sharegpt(record: dict) -> Example:
    messages = _with_system(record, read_turns(record, "conversations", "from", "value", SHAREGPT_ROLES))
    return Example(where="", messages=_checked(messages, "conversations"), tools=parse_tools(record.get("tools")))


def _messages(record: dict) -> Example:
    messages = read_turns(record, "messages", "role", "content", CHAT_ROLES)
    return Example(where="", messages=_checked(messages, "messages"), tools=parse_tools(record.get("tools")))


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
    elif "conversations" in record:  # LLaMA-Factory's preference layout: the prompt turns in ShareGPT form
        messages = _plain_turns(read_turns(record, "conversations", "from", "value", SHAREGPT_ROLES), "conversations")
    elif "messages" in record:
        messages = _plain_turns(read_turns(record, "messages", "role", "content", CHAT_ROLES), "messages")
    else:
        raise FieldError("prompt", M("field.missing"), M("field.prompt_missing"))
    system = record.get("system")
    if isinstance(system, str) and system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return _check_prompt(messages, "prompt")


PROMPT_FIELDS = ("prompt", "instruction", "conversations", "messages")


def _plain_turns(messages: list[dict], field: str) -> list[dict]:
    """Preference data is plain chat (system, user, assistant): tool turns there are refused; reasoning is kept
    inline as <think>...</think> (never dropped without a word)."""
    for index, message in enumerate(messages):
        if message["role"] not in ROLES or message.get("tool_calls"):
            raise FieldError(f"{field}[{index}]", M("field.preference_tools"), M("field.preference_tools_hint"))
    return [{"role": m["role"], "content": think_block(m["reasoning_content"]) + m["content"]
             if m.get("reasoning_content") else m["content"]} for m in messages]


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
    if isinstance(value, dict):  # LLaMA-Factory: one message object, {from, value} or {role, content}
        keys = ("from", "value") if "from" in value else ("role", "content")
        value = _plain_turns([next(iter(read_turns({field: [value]}, field, *keys,
                                                   SHAREGPT_ROLES if "from" in value else CHAT_ROLES)))],
                             field)[0]["content"]
    if isinstance(value, str):
        if not value.strip():
            raise FieldError(field, M("field.empty"), M("field.write_answer"))
        return value
    if not isinstance(value, list):
        raise FieldError(field, M("field.answer_type", got=type(value).__name__))
    messages = _plain_turns(read_turns(record, field, "role", "content", CHAT_ROLES), field)
    if not messages or messages[-1]["role"] != "assistant":
        raise FieldError(field, M("field.last_not_assistant"), M("field.end_it"))
    return messages


def _split_answers(record: dict, fields: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    """(prompt conversation, answer texts). With no prompt field the answers may be whole conversations that share
    everything but their last turn (the "implicit prompt" form of Anthropic HH and TRL)."""
    answers = [_answer(record, f) for f in fields]
    if any(f in record for f in PROMPT_FIELDS):
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


def _prompt_completion(record: dict) -> Example:
    """TRL's prompt/completion: the prompt (text or messages) is context, only the completion is trained."""
    prompt = [dict(m, weight=0) if m["role"] == "assistant" else m for m in _prompt(record)]
    completion = record.get("completion")
    if isinstance(completion, list):
        answer = read_turns(record, "completion", "role", "content", CHAT_ROLES)
    else:
        answer = [{"role": "assistant", "content": _text(record, "completion")}]
    if not any(m["role"] == "assistant" and (m["content"].strip() or m.get("tool_calls")) for m in answer):
        raise FieldError("completion", M("field.empty"), M("field.write_answer"))
    return Example(where="", messages=_checked(prompt + answer, "completion"), tools=parse_tools(record.get("tools")))


def _kto_messages(record: dict) -> Example:
    """LLaMA-Factory's KTO layout: a conversation whose last assistant answer is marked by a boolean `label`."""
    messages = _plain_turns(read_turns(record, "messages", "role", "content", CHAT_ROLES), "messages")
    if not messages or messages[-1]["role"] != "assistant":
        raise FieldError("messages", M("field.last_not_assistant"), M("field.end_it"))
    label = record.get("label")
    if isinstance(label, str) and label.strip().lower() in ("true", "false"):  # CSV cells are text
        label = label.strip().lower() == "true"
    if not isinstance(label, bool):
        raise FieldError("label", M("field.label_boolean", label=repr(label)), M("field.label_hint"))
    return Example(where="", messages=_check_prompt(messages[:-1], "messages"), completion=messages[-1]["content"],
                   label=label)


def _pairwise_messages(record: dict) -> Example:
    """LLaMA-Factory v1: whole conversations in chosen_messages / rejected_messages, sharing all but the last turn."""
    renamed = {"chosen": record.get("chosen_messages"), "rejected": record.get("rejected_messages")}
    try:
        return _pairwise(renamed)
    except FieldError as err:
        err.field = err.field.replace("chosen", "chosen_messages", 1).replace("rejected", "rejected_messages", 1)
        raise


FORMATS.register("pairwise_messages", Format("pairwise_messages", "chosen_messages / rejected_messages "
                                             "(LLaMA-Factory v1): conversations that differ in the last answer",
                                             ("chosen_messages", "rejected_messages"), _pairwise_messages,
                                             kind="pairwise"))
FORMATS.register("prompt_completion", Format("prompt_completion", "prompt / completion (TRL): text or message "
                                             "lists; only the completion is trained", ("prompt", "completion"),
                                             _prompt_completion))
FORMATS.register("kto", Format("kto", "messages + label (LLaMA-Factory KTO): the last answer marked desirable (true) "
                               "or not (false)", ("messages", "label"), _kto_messages, kind="unpaired"))


def candidates(record: dict) -> list[str]:
    """Every format whose identifying fields are all present, the most specific (most fields) first, then in
    registry order: {messages, label} is KTO data before it is a chat, {prompt, completion, label} unpaired."""
    matching = [(-len(fmt.required), index, key) for index, (key, fmt) in enumerate(FORMATS.items())
                if all(field in record for field in fmt.required)]
    return [key for _, _, key in sorted(matching)]


def detect(record: dict) -> str | None:
    """The most specific format whose identifying fields are all present, or None."""
    found = candidates(record)
    return found[0] if found else None


def also_fits(record: dict, chosen: str) -> list[str]:
    """Other formats the record converts under without error (the note that says how to pick one)."""
    others = []
    for key in candidates(record):
        if key == chosen:
            continue
        try:
            FORMATS.get(key).convert(record)
        except (FieldError, KeyError, TypeError, AttributeError):
            continue
        others.append(key)
    return others


def expected_fields() -> str:
    return "; ".join(f"{key}: {', '.join(fmt.required)}" for key, fmt in FORMATS.items())


