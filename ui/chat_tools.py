"""The Chat tab's tools: a tools list (JSON, OpenAI function tools) sent with each message, the model's tool calls
shown as tool calls (Gradio's message metadata: a titled block, not reply text), and the user's next message after
a call sent as that call's result.

The rendering and the reading of calls happen in the worker (engine/inference/tools.py); this module turns the
page's conversation into the model's messages and the worker's events into the page's messages.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr

from engine.inference.tools import call_view, parse_tools
from ui import messages
from ui.common import error_box, note_box, reason
from ui.lang import loc, tr

CALL_ID, RESULT_ID = "tool_call", "tool_result"  # metadata ids: what a shown message is, whatever the language
TEXT = {
    "en": {
        "tools": "Tools (optional)",
        "tools_info": "A JSON list of OpenAI function tools, rendered into the prompt by the model's chat template. "
                      "The model's tool calls are shown as tool calls; after a call, your next message is sent as "
                      "its result.",
        "bad_tools": "The tools list cannot be used",
        "tools_ok": "{n} tool(s): {names}. After a tool call, your next message is sent as its result.",
        "call_title": "🛠 Tool call: {name}",
        "result_title": "📎 Result of {name}",
        "unread_call": "The reply looks like a tool call, but it could not be read as one: {why}",
    },
    "zh": {
        "tools": "工具（可选）",
        "tools_info": "OpenAI 函数工具的 JSON 列表，由模型的对话模板写入提示。模型的工具调用会显示为工具调用；"
                      "调用之后，你的下一条消息会作为该调用的结果发送。",
        "bad_tools": "工具列表无法使用",
        "tools_ok": "{n} 个工具：{names}。工具调用之后，你的下一条消息会作为它的结果发送。",
        "call_title": "🛠 工具调用：{name}",
        "result_title": "📎 {name} 的结果",
        "unread_call": "回复看起来是工具调用，但无法按工具调用读取：{why}",
    },
}


def build() -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Accordion(TEXT["en"]["tools"], open=False, elem_id="chat-tools-box") as c.box:
        loc(c.box, TEXT, label="tools")
        c.text = loc(gr.Code("", language="json", label=TEXT["en"]["tools"], lines=6, elem_id="chat-tools"), TEXT,
                     label="tools")
        c.help = loc(gr.Markdown(TEXT["en"]["tools_info"], elem_classes="tl-help"), TEXT, value="tools_info")
        c.note = gr.Markdown("", elem_id="chat-tools-note")
    return c


def wire(c: SimpleNamespace, lang) -> None:
    c.text.change(check, [c.text, lang], c.note, show_progress="hidden", api_visibility="private")
    lang.change(check, [c.text, lang], c.note, show_progress="hidden", api_visibility="private")


def check(text, lang="en") -> str:
    """Under the tools box: what is wrong with the list, or which tools the model will see."""
    try:
        tools = parse_tools(text or "")
    except ValueError as err:
        return error_box(tr(TEXT, lang, "bad_tools"), reason(err), lang)
    if not tools:
        return ""
    return note_box(tr(TEXT, lang, "tools_ok", n=len(tools), names=", ".join(t["function"]["name"] for t in tools)))


def read(text, lang="en") -> tuple[list[dict], str]:
    """(the tools to send, "") or ([], the red box saying what is wrong with the list)."""
    try:
        return parse_tools(text or ""), ""
    except ValueError as err:
        return [], error_box(tr(TEXT, lang, "bad_tools"), reason(err), lang)


def user_turn(history: list[dict], message: str, tools: list[dict], lang="en") -> list[dict]:
    """The conversation with the user's message: the result of the tool call it ends with, else a user turn."""
    waiting = waiting_call(history) if tools else None
    return history + [result_message(waiting, message, lang) if waiting else {"role": "user", "content": message}]


def rendered_note(worker, tools: list[dict], lang="en") -> str:
    """" · why the tools are rendered with a named template", when they are (ChatWorker.tools_note), else ""."""
    return f" · {messages.say(worker.tools_note, lang)}" if tools and worker.tools_note else ""


def _meta_id(message: dict) -> str:
    return str(((message.get("metadata") or {}).get("id")) or "")


def waiting_call(history: list[dict]) -> str | None:
    """The name of the next tool call the conversation waits a result for (the calls it ends with, answered in
    order by the results after them), else None."""
    kinds = []
    for message in reversed(history):
        kind, _, name = _meta_id(message).partition(":")
        if kind not in (CALL_ID, RESULT_ID):
            break
        kinds.insert(0, (kind, name))
    calls = [name for kind, name in kinds if kind == CALL_ID]
    answered = sum(kind == RESULT_ID for kind, _ in kinds)
    return calls[answered] if answered < len(calls) else None


def result_message(name: str, text: str, lang="en") -> dict:
    return {"role": "assistant", "content": text,
            "metadata": {"title": tr(TEXT, lang, "result_title", name=name), "id": f"{RESULT_ID}:{name}"}}


def call_messages(reply: dict, lang="en") -> list[dict]:
    """The page's messages for a reply with tool calls: its text (when any), then one titled block per call."""
    shown = [{"role": "assistant", "content": reply["content"]}] if reply.get("content", "").strip() else []
    if reply.get("error"):
        return [{"role": "assistant", "content": reply["content"]},
                {"role": "assistant", "content": tr(TEXT, lang, "unread_call", why=reply["error"]),
                 "metadata": {"title": "⚠", "id": "tool_error"}}]
    for call in reply["tool_calls"]:
        shown.append({"role": "assistant", "content": f"```json\n{call_view(call)}\n```",
                      "metadata": {"title": tr(TEXT, lang, "call_title", name=call["name"]),
                                   "id": f"{CALL_ID}:{call['name']}"}})
    return shown


def show(shown: list[dict], reply, lang="en") -> None:
    """Put the reply into the shown conversation's last message: the text so far, or (a dict: the worker's "reply"
    event) its text and tool calls as their own messages."""
    if isinstance(reply, dict):
        shown[-1:] = call_messages(reply, lang)
    else:
        shown[-1]["content"] = reply


def compact(arguments: str) -> str:
    """A call's arguments as the model wrote them (one-line JSON), not as the page shows them (indented)."""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return arguments


def model_messages(history: list[dict], text_of) -> list[dict]:
    """The conversation as the model's messages (OpenAI shape): shown tool calls become the assistant turn's
    `tool_calls`, shown results `tool` turns answering them; everything else is text."""
    out: list[dict] = []
    pending: list[dict] = []  # calls not answered yet, in order: each result answers the first of its name
    for message in history:
        kind, _, name = _meta_id(message).partition(":")
        content = text_of(message.get("content"))
        if kind == CALL_ID:
            arguments = compact(content.strip().removeprefix("```json").removesuffix("```").strip())
            call = {"id": f"call_{sum(len(m.get('tool_calls') or []) for m in out) + 1}", "type": "function",
                    "function": {"name": name, "arguments": arguments}}
            pending.append(call)
            if out and out[-1]["role"] == "assistant":
                out[-1].setdefault("tool_calls", []).append(call)  # the reply's text and parallel calls: one turn
            else:
                out.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == RESULT_ID:
            answered = next((c for c in pending if c["function"]["name"] == name), None)
            if answered is not None:
                pending.remove(answered)
            out.append({"role": "tool", "name": name, "tool_call_id": answered["id"] if answered else "",
                        "content": content})
        elif kind != "tool_error":  # a call that could not be read is shown, never sent
            out.append({"role": message["role"], "content": content})
    return out

