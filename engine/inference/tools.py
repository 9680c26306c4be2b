"""Tools for chat and serving: a tools list (OpenAI function-tool schema) checked in words, rendered through the
model's chat template (`apply_chat_template(..., tools=...)`), and the model's tool calls read back out of its reply
by the template's own convention.

Whether a template has a place for tools is found by rendering, not by its name: a probe conversation rendered with
and without a probe tool. A template that ignores tools would drop them silently, so:
- it renders them: used as it is;
- it ignores them but speaks ChatML (SmolLM2): the named template `chatml-tools` (engine/data/templates.py, the
  Hermes / Qwen2.5 convention, same turn markers) renders requests that carry tools; requests without tools still
  render through the model's own template, unchanged. The caller shows the note that says so;
- else: refused with the reason (a foreign convention would not match how the model was trained).

Reading calls back uses transformers' own parser (`tokenizer.parse_response` with a response template, the one
`transformers serve` uses): the tokenizer's `response_template` when it ships one, else, when the template writes
calls as `<tool_call>` JSON (found by rendering a probe call), the declarative template below.

`parse_tools` and `call_view` are pure and import-light (the UI uses them); the rest takes a tokenizer.
"""
from __future__ import annotations

import json
import re

from engine.core.messages import Message, joined

TOOL_TEMPLATE = "chatml-tools"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
PROBE_TOOL = {"type": "function", "function": {"name": "tuneloom_probe_tool", "description": "probe",
                                               "parameters": {"type": "object", "properties": {}}}}
PROBE_CALL = {"type": "function", "function": {"name": "tuneloom_probe_tool", "arguments": {"probe": 7}}}
PROBE_TEXT = "tuneloom probe message"
# Hermes / Qwen2.5 tool calls in ChatML, in transformers' declarative response-template format (the shape of its
# own fallback for Qwen2 models in transformers.cli.serving.utils, which keys it by model type, not by template)
HERMES_RESPONSE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open_pattern": r"\s*<tool_call>", "close": "</tool_call>", "repeats": True,
                       "content": "json", "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}


# ---- the tools list ---------------------------------------------------------------------------------------------
def parse_tools(text) -> list[dict]:
    """A tools list from JSON text (or an already parsed list): [] when empty; ValueError(Message) naming every
    problem. Each tool is {"type": "function", "function": {"name", "description"?, "parameters"?}}; a bare
    {"name", "parameters"} is accepted and wrapped, as chat templates accept both."""
    if isinstance(text, str):
        if not text.strip():
            return []
        try:
            tools = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(Message("tools.json", line=err.lineno, column=err.colno, detail=err.msg)) from None
    else:
        tools = text
    if tools is None:
        return []
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        raise ValueError(Message("tools.not_list", got=type(tools).__name__))
    problems, out, seen = [], [], set()
    for index, tool in enumerate(tools):
        if isinstance(tool, dict) and "function" not in tool and "name" in tool and "type" not in tool:
            tool = {"type": "function", "function": tool}
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            problems.append(Message("tools.not_object", index=index, got=json.dumps(tool)[:80]))
            continue
        if tool.get("type", "function") != "function":
            problems.append(Message("tools.type", index=index, value=json.dumps(tool.get("type"))))
        function = tool["function"]
        name = function.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(Message("tools.name", index=index, value=json.dumps(name)))
        elif name in seen:
            problems.append(Message("tools.duplicate", index=index, name=name))
        seen.add(name)
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            problems.append(Message("tools.parameters", index=index, got=json.dumps(parameters)[:80]))
        out.append({"type": "function", "function": function})
    if problems:
        raise ValueError(joined(problems, "; "))
    return out


# ---- the chat template --------------------------------------------------------------------------------------------
def _render(tokenizer, template: str | None, messages: list[dict], tools=None) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False,
                                         add_generation_prompt=False)


def renders_tools(tokenizer, template: str | None = None) -> bool:
    """Whether the chat template puts a tools list in the prompt (rendering with and without a probe tool)."""
    probe = [{"role": "user", "content": PROBE_TEXT}]
    try:
        return _render(tokenizer, template, probe, [PROBE_TOOL]) != _render(tokenizer, template, probe)
    except Exception:  # a template that fails on a tools argument has no place for it either
        return False


def speaks_chatml(tokenizer) -> bool:
    """Whether the model's own template writes turns as ChatML (<|im_start|>role ... <|im_end|>)."""
    try:
        text = _render(tokenizer, None, [{"role": "user", "content": PROBE_TEXT}])
    except Exception:
        return False
    return f"<|im_start|>user\n{PROBE_TEXT}<|im_end|>" in text


def tool_ready(tokenizer) -> Message | None:
    """Make `tokenizer` render tools and read tool calls (see the module docstring). Returns the note to show when
    the named template stands in for the model's own, None when the model's own template does it; ValueError(Message)
    when neither can. Sets `response_template` when the template's calls are <tool_call> JSON and none is set."""
    from engine.core.registry import TEMPLATES
    from engine.data import templates  # noqa: F401  (registers the named templates)

    note = None
    if not renders_tools(tokenizer):
        if not speaks_chatml(tokenizer):
            raise ValueError(Message("tools.unsupported", template=TOOL_TEMPLATE))
        # the model's own template for requests without tools, the named one for those with (a Jinja `if`)
        own, named = tokenizer.chat_template, TEMPLATES.get(TOOL_TEMPLATE).jinja
        tokenizer.chat_template = "{% if tools %}" + named + "{% else %}" + own + "{% endif %}"
        note = Message("tools.named_template", template=TOOL_TEMPLATE)
    if getattr(tokenizer, "response_template", None) is None and writes_hermes_calls(tokenizer):
        tokenizer.response_template = HERMES_RESPONSE
    return note


def writes_hermes_calls(tokenizer) -> bool:
    """Whether the template writes an assistant's tool call as <tool_call>{"name": ..., "arguments": ...}</tool_call>
    (rendering a probe call)."""
    probe = [{"role": "user", "content": PROBE_TEXT}, {"role": "assistant", "content": "", "tool_calls": [PROBE_CALL]}]
    try:
        text = _render(tokenizer, None, probe, [PROBE_TOOL])
    except Exception:
        return False
    return re.search(r'<tool_call>\s*\{"name": "tuneloom_probe_tool", "arguments": \{"probe": 7\}\}\s*</tool_call>',
                     text) is not None


# ---- the reply ----------------------------------------------------------------------------------------------------
def parse_reply(tokenizer, text: str, prompt: str, tools=None) -> dict:
    """{"content", "tool_calls": [{"name", "arguments"}]} of a generated reply, by the tokenizer's response template
    (none: the text is all content). A call whose JSON cannot be read leaves the reply as text, with "error"."""
    schema = getattr(tokenizer, "response_template", None)
    if schema is None:
        return {"content": text, "tool_calls": []}
    try:
        parsed = tokenizer.parse_response(text, schema, prefix=prompt, tools=tools)
    except ValueError as err:
        return {"content": text, "tool_calls": [], "error": str(err).splitlines()[0]}
    calls = []
    for call in parsed.get("tool_calls") or []:
        function = call.get("function", call) if isinstance(call, dict) else {}
        arguments = function.get("arguments")
        calls.append({"name": function.get("name"),
                      "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)})
    return {"content": parsed.get("content") or "", "tool_calls": calls}


def call_view(call: dict) -> str:
    """A tool call's arguments as readable JSON (indented when they parse), for the chat page."""
    arguments = call.get("arguments")
    try:
        return json.dumps(json.loads(arguments) if isinstance(arguments, str) else arguments, indent=2,
                          ensure_ascii=False)
    except (TypeError, ValueError):
        return str(arguments)
