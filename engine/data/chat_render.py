"""Messages with tool calls, tool turns, tools and reasoning, made renderable by a given chat template.

A template that has a place for them (it reads `tools`, `tool_calls`, `reasoning_content`) gets them as they
are, through `tokenizer.apply_chat_template(..., tools=...)`. A template without one (SmolLM2's, the ChatML
fallback) would drop them or fail on them, so they are written into the text, never dropped: a tool call as
`<tool_call>{"name": ..., "arguments": ...}</tool_call>` in the assistant's content, the tools list as a
system note, reasoning as `<think>...</think>` before the answer. These conventions are the Hermes / Qwen ones
(written here by hand: no library turns structured messages into text for a template that lacks them).
Pure: reads the template text, renders nothing.
"""
from __future__ import annotations

import json

from engine.data.turns import think_block


def features(tokenizer) -> dict:
    """What the tokenizer's chat template has a place for (by the names it reads)."""
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    return {"tools": "tools" in template.replace("tool_calls", ""), "tool_calls": "tool_calls" in template,
            "reasoning": "reasoning_content" in template}


def call_text(call: dict) -> str:
    function = call["function"]
    return json.dumps({"name": function["name"], "arguments": function["arguments"]}, ensure_ascii=False)


def tools_note(tools: list[dict]) -> str:
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return ("You can call these functions. To call one, answer with <tool_call>{\"name\": ..., \"arguments\": ...}"
            f"</tool_call>.\n<tools>\n{lines}\n</tools>")


def for_template(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> tuple[list[dict], dict]:
    """(messages, extra apply_chat_template arguments) for this tokenizer's template."""
    has = features(tokenizer)
    out = []
    for message in messages:
        message = {k: v for k, v in message.items() if k != "weight"}  # masking reads it; templates do not
        calls = message.pop("tool_calls", None)
        if calls and has["tool_calls"]:
            message["tool_calls"] = calls
        elif calls:
            text = "\n".join(f"<tool_call>\n{call_text(c)}\n</tool_call>" for c in calls)
            message["content"] = f"{message['content']}\n{text}" if message["content"] else text
        reasoning = message.pop("reasoning_content", "")
        if reasoning and has["reasoning"]:
            message["reasoning_content"] = reasoning
        elif reasoning:
            message["content"] = think_block(reasoning) + message["content"]
        if message["role"] == "tool" and not has["tool_calls"]:
            message = {"role": "tool", "content": message["content"]}
        out.append(message)
    if not tools:
        return out, {}
    if has["tools"]:
        return out, {"tools": tools}
    if out and out[0]["role"] == "system":
        return [{"role": "system", "content": f"{out[0]['content']}\n\n{tools_note(tools)}"}] + out[1:], {}
    return [{"role": "system", "content": tools_note(tools)}] + out, {}
