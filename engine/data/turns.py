"""Conversations as the ecosystem writes them, normalised to the message dicts chat templates take.

Read here (one place, shared by the sharegpt, messages, prompt/completion and preference formats):
- OpenAI chat fine-tuning: `content` as text, null (beside `tool_calls`) or a list of text parts; assistant
  `tool_calls` (several = parallel calls); `tool` turns with `tool_call_id`; a per-message `weight` of 0 or 1;
- ShareGPT as LLaMA-Factory and glaive write it: `function_call` turns (a JSON call, or a list of them) and
  `observation` turns (the tool's output);
- LLaMA-Factory v1 content parts (`{"type": "text" | "reasoning" | "tool_call", "value": ...}`, `loss_weight`);
- reasoning: `reasoning_content`, `thinking`, or a leading `<think>...</think>` in the content.

A normalised message is {"role": system | user | assistant | tool, "content": str} plus, where present,
"tool_calls": [{"type": "function", "function": {"name", "arguments": dict}}] (arguments parsed: chat
templates serialise them), "tool_call_id", "name" (a tool turn: the function it answers),
"reasoning_content", and "weight": 0 (an assistant turn that is shown but not trained).
How a template that has no place for tools or reasoning renders them is engine/data/chat_render.py's job.
"""
from __future__ import annotations

import json
import re

from engine.core.messages import Message as M
from engine.data.errors import FieldError

CHAT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "system": "system", "function_call": "function_call",
                  "observation": "tool", "tool": "tool"}
MEDIA_PARTS = ("image", "image_url", "input_image", "audio", "input_audio", "audio_url", "video", "video_url", "file")
MEDIA_FIELDS = ("images", "audios", "videos")
MEDIA_PLACEHOLDER = re.compile(r"<(image|audio|video)>")
THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)
REASONING_MODES = ("auto", "inline", "drop")


def media_refusal(record: dict) -> tuple[str, str] | None:
    """(field, what) when a record carries images, audio or video, which a text model cannot train on."""
    for name in MEDIA_FIELDS:
        if record.get(name):
            return name, name
    found = _placeholder(record)
    return found


def _placeholder(value, path: str = "") -> tuple[str, str] | None:
    if isinstance(value, str):
        match = MEDIA_PLACEHOLDER.search(value)
        return (path, f"<{match.group(1)}>") if match else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _placeholder(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip("."))
        if found:
            return found
    return None


def parse_arguments(value, where: str):
    """A call's arguments as a dict: JSON text is parsed (an invalid one is an error), an object kept."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as err:
            raise FieldError(where, M("field.tool_arguments", detail=err.msg),
                             M("field.tool_arguments_hint")) from None
    if not isinstance(value, dict):
        raise FieldError(where, M("field.tool_arguments_type", got=type(value).__name__),
                         M("field.tool_arguments_hint"))
    return value


def parse_call(call, where: str) -> dict:
    """One tool call, OpenAI style ({id, type, function: {name, arguments}}) or flat ({name, arguments})."""
    if isinstance(call, str):
        try:
            call = json.loads(call)
        except json.JSONDecodeError as err:
            raise FieldError(where, M("field.tool_call_json", detail=err.msg), M("field.tool_call_hint")) from None
    if not isinstance(call, dict):
        raise FieldError(where, M("field.tool_call_type", got=type(call).__name__), M("field.tool_call_hint"))
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise FieldError(f"{where}.name", M("field.tool_call_name"), M("field.tool_call_hint"))
    arguments = parse_arguments(function.get("arguments", function.get("parameters", {})), f"{where}.arguments")
    parsed = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(call.get("id"), str):
        parsed["id"] = call["id"]
    return parsed


def parse_tools(value, field: str = "tools") -> list[dict] | None:
    """A `tools` list (a JSON string in glaive files) as OpenAI function schemas; None when absent or empty."""
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise FieldError(field, M("field.tools_json", detail=err.msg), M("field.tools_hint")) from None
    if not isinstance(value, list):
        raise FieldError(field, M("field.tools_type", got=type(value).__name__), M("field.tools_hint"))
    tools = []
    for index, tool in enumerate(value):
        if not isinstance(tool, dict) or not isinstance((tool.get("function") or tool).get("name"), str):
            raise FieldError(f"{field}[{index}]", M("field.tool_schema"), M("field.tools_hint"))
        tools.append(tool if isinstance(tool.get("function"), dict) else {"type": "function", "function": tool})
    return tools or None


def _weight(turn: dict, where: str) -> int | None:
    for key in ("weight", "loss_weight"):
        if key in turn and turn[key] is not None:
            value = turn[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (0, 1):
                raise FieldError(f"{where}.{key}", M("field.weight", value=repr(value)), M("field.weight_hint"))
            return int(value)
    return None


def _content(value, where: str) -> tuple[str, str, list]:
    """(text, reasoning, tool calls) of a content: text, null, or a list of parts."""
    if value is None:
        return "", "", []
    if isinstance(value, str):
        return value, "", []
    if not isinstance(value, list):
        raise FieldError(where, M("field.expected_text", got=type(value).__name__), M("field.content_hint"))
    texts, reasoning, calls = [], [], []
    for index, part in enumerate(value):
        at = f"{where}[{index}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in MEDIA_PARTS:
            raise FieldError(f"{at}.type", M("field.media_part", kind=kind), M("data.media_hint"))
        text = next((part[k] for k in ("text", "value", "thinking", "reasoning") if isinstance(part.get(k), str)),
                    None) if isinstance(part, dict) else None
        if kind in ("text", "input_text", "output_text") and text is not None:
            texts.append(text)
        elif kind in ("reasoning", "thinking") and text is not None:
            reasoning.append(text)
        elif kind == "tool_call" and text is not None:
            calls.append(parse_call(text, at))
        else:
            raise FieldError(at, M("field.content_part", got=json.dumps(part, ensure_ascii=False)[:80]),
                             M("field.content_hint"))
    return "".join(texts), "\n".join(reasoning), calls


def read_turn(turn, where: str, role_key: str, content_key: str, roles: dict) -> dict:
    """One turn (a dict in the file) as a normalised message; a sharegpt function_call becomes an assistant tool
    call, an observation a tool turn."""
    if not isinstance(turn, dict):
        raise FieldError(where, M("field.turn_type", role_key=role_key, content_key=content_key,
                                  got=type(turn).__name__))
    for key in (role_key, content_key):
        if key not in turn and not (key == content_key and "tool_calls" in turn):
            raise FieldError(f"{where}.{key}", M("field.missing_found", found=", ".join(turn) or "nothing"))
    role = turn[role_key]
    if role not in roles:
        raise FieldError(f"{where}.{role_key}", M("field.unknown_role", role=repr(role)),
                         M("field.use_role", choices=", ".join(sorted(set(roles)))))
    role = roles[role]
    if role == "function_call":  # glaive / LLaMA-Factory: the value is the call (or a list of parallel calls)
        raw = turn[content_key]
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as err:
            raise FieldError(f"{where}.{content_key}", M("field.tool_call_json", detail=err.msg),
                             M("field.tool_call_hint")) from None
        calls = value if isinstance(value, list) else [value]
        return {"role": "assistant", "content": "",
                "tool_calls": [parse_call(c, f"{where}.{content_key}") for c in calls]}
    text, reasoning, calls = _content(turn.get(content_key), f"{where}.{content_key}")
    message = {"role": role, "content": text}
    if role == "assistant":
        for key in ("reasoning_content", "thinking", "reasoning"):
            if isinstance(turn.get(key), str) and turn[key].strip():
                reasoning = turn[key]
                break
        raw_calls = turn.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise FieldError(f"{where}.tool_calls", M("field.tool_calls_type", got=type(raw_calls).__name__),
                             M("field.tool_call_hint"))
        calls += [parse_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(raw_calls)]
        if calls:
            message["tool_calls"] = calls
        if reasoning.strip():
            message["reasoning_content"] = reasoning
        if _weight(turn, where) == 0:
            message["weight"] = 0
    else:
        _weight(turn, where)  # checked everywhere; only an assistant turn's weight changes what is trained
        if role == "tool" and isinstance(turn.get("tool_call_id"), str):
            message["tool_call_id"] = turn["tool_call_id"]
    return message


def read_turns(record: dict, field: str, role_key: str, content_key: str, roles: dict) -> list[dict]:
    turns = record.get(field)
    if turns is None:
        raise FieldError(field, M("field.missing"))
    if not isinstance(turns, list):
        raise FieldError(field, M("field.turns_type", got=type(turns).__name__))
    return [read_turn(t, f"{field}[{i}]", role_key, content_key, roles) for i, t in enumerate(turns)]


def is_rich(messages: list[dict]) -> bool:
    """Whether a conversation has tool turns or tool calls (checked by `check_tool_conversation`)."""
    return any(m["role"] == "tool" or m.get("tool_calls") for m in messages)


def check_tool_conversation(messages: list[dict], field: str) -> list[dict]:
    """The turn order of a conversation with tools: system first (optional); user -> assistant; an assistant
    that calls tools -> the tools' answers (one per call) -> assistant; ends with an assistant turn. Every tool
    turn answers a call of the assistant turn before it (by `tool_call_id` where the calls have ids)."""
    start = 1 if messages and messages[0]["role"] == "system" else 0
    previous, pending = None, []
    for index, message in enumerate(messages[start:], start=start):
        at, role = f"{field}[{index}]", message["role"]
        if role == "tool":
            if previous not in ("assistant_call", "tool") or not pending:
                raise FieldError(at, M("field.tool_unanswered"), M("field.tool_unanswered_hint"))
            wanted = message.get("tool_call_id")
            ids = [c.get("id") for c in pending]
            if wanted and any(ids):
                if wanted not in ids:
                    raise FieldError(f"{at}.tool_call_id", M("field.tool_call_id", id=wanted,
                                                             ids=", ".join(i for i in ids if i)),
                                     M("field.tool_unanswered_hint"))
                call = pending.pop(ids.index(wanted))
            else:
                call = pending.pop(0)
            message.setdefault("name", call["function"]["name"])
            previous = "tool"
            continue
        expected = {None: ("user",), "user": ("assistant",), "assistant": ("user",),
                    "assistant_call": ("tool", "user"), "tool": ("assistant",)}[previous]
        if role not in expected:
            raise FieldError(at, M("field.role_order", role=role, expected=" / ".join(expected)),
                             M("field.tool_turn_order"))
        previous = "assistant_call" if role == "assistant" and message.get("tool_calls") else role
        pending = list(message.get("tool_calls") or []) if role == "assistant" else pending
    if not any(m["role"] == "assistant" for m in messages):
        raise FieldError(field, M("field.no_assistant"), M("field.add_answer"))
    if messages[-1]["role"] != "assistant":
        raise FieldError(f"{field}[{len(messages) - 1}]", M("field.ends_with_user"), M("field.end_with_answer"))
    return messages


def apply_reasoning(messages: list[dict], mode: str) -> list[dict]:
    """`data.reasoning`: auto keeps reasoning as `reasoning_content` (the renderer puts it where the template has a
    place, else inline); inline writes it into the content as <think>...</think>; drop removes it, inline
    <think> blocks included. A leading <think> block in the content is read as reasoning in every mode."""
    out = []
    for message in messages:
        if message["role"] != "assistant":
            out.append(message)
            continue
        message = dict(message)
        match = THINK.match(message["content"])
        if match:
            inline = match.group(1).strip("\n")
            message["content"] = message["content"][match.end():]
            message["reasoning_content"] = "\n".join(x for x in (inline, message.get("reasoning_content", "")) if x)
        reasoning = message.pop("reasoning_content", "")
        if reasoning.strip() and mode == "inline":
            message["content"] = think_block(reasoning) + message["content"]
        elif reasoning.strip() and mode == "auto":
            message["reasoning_content"] = reasoning
        out.append(message)
    return out


def think_block(reasoning: str) -> str:
    return f"<think>\n{reasoning.strip()}\n</think>\n\n"


def has_reasoning(messages: list[dict] | None) -> bool:
    return any(m.get("reasoning_content") or "<think>" in m.get("content", "") for m in messages or ()
               if m["role"] == "assistant")
