"""Chat tab: talk to a finished run (merged where the method allows) or to the bare base model.

The model lives in one worker process per app (`ChatWorker`); replies stream token by token,
and Unload ends that process so all of its memory comes back.
"""
from __future__ import annotations

import atexit
from types import SimpleNamespace

import gradio as gr

from engine.chat_client import ChatWorker, WorkerError
from ui.common import error_box, finished_runs, note_box, run_label, run_path

WORKER = ChatWorker()
atexit.register(WORKER.unload)
BASE = "base"
CHAT_QUEUE = "chat"  # UI and API chats share one queue: the worker answers one request at a time


def target_choices() -> list[tuple[str, str]]:
    return [("Base model (the Model field at the top)", BASE)] + [(run_label(r), r["id"]) for r in finished_runs()]


def load(target: str, model: str) -> str:
    """Load the run or base model if it is not loaded already; returns the worker's note."""
    if not target or target == BASE:
        model = (model or "").strip()
        if not model:
            raise ValueError("the Model field is empty")
        return WORKER.load(f"base:{model}", model=model)
    return WORKER.load(f"run:{target}", run=str(run_path(target)))


def text_of(content) -> str:
    """Chatbot message content as plain text (Gradio may hand back a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return "".join(text_of(part) for part in content)
    return "" if content is None else str(content)


def generation_params(max_new_tokens, temperature, top_p, top_k, repetition_penalty) -> dict:
    return {"max_new_tokens": int(max_new_tokens or 128), "temperature": float(temperature or 0.0),
            "top_p": float(top_p or 1.0), "top_k": int(top_k or 0) or None,
            "repetition_penalty": float(repetition_penalty or 1.0)}


def reply_stream(system, history: list[dict], params: dict):
    """Yield the growing reply of the loaded model to `history`."""
    messages = ([{"role": "system", "content": system.strip()}] if system and system.strip() else [])
    messages += [{"role": m["role"], "content": text_of(m["content"])} for m in history]
    text = ""
    for piece in WORKER.generate(messages, params):
        text += piece
        yield text


def on_send(message, history, target, model, system, *gen):
    message = (message or "").strip()
    if not message:
        yield gr.skip(), gr.skip(), gr.skip()
        return
    history = [{"role": m["role"], "content": text_of(m["content"])} for m in (history or [])]
    history.append({"role": "user", "content": message})
    yield history + [{"role": "assistant", "content": "…"}], "", note_box("Loading the model (first message only)…")
    try:
        loaded = note_box(f"Loaded: {load(target, model)}", "ok")
        shown = history + [{"role": "assistant", "content": ""}]
        yield shown, gr.skip(), loaded
        for text in reply_stream(system, history, generation_params(*gen)):
            shown[-1]["content"] = text
            yield shown, gr.skip(), gr.skip()
    except (WorkerError, ValueError) as err:
        yield history, message, error_box("The model could not answer", str(err))


def on_target_change(target):
    # a different model: the old conversation was with someone else
    return [], note_box("The chosen model loads with your first message.")


def on_unload():
    WORKER.unload()
    return note_box("Unloaded: the worker process ended and its memory is free.")


def refresh(target):
    choices = target_choices()
    keep = target if target in [v for _, v in choices] else BASE
    return gr.update(choices=choices, value=keep)


def build() -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            with gr.Row():
                c.target = gr.Dropdown(target_choices(), value=BASE, label="Chat with", elem_id="chat-target", scale=4,
                                       info="A finished run (its adapter, merged when the method allows) or the "
                                            "bare base model, to compare.")
                c.refresh = gr.Button("↻ Refresh", scale=1, size="sm")
            c.note = gr.Markdown(elem_id="chat-note", value=note_box("The chosen model loads with your first message."))
            c.chatbot = gr.Chatbot(label="Conversation", show_label=False, elem_id="chatbot", height=380, buttons=["copy"])
            with gr.Row():
                c.message = gr.Textbox(placeholder="Type a message and press Enter", elem_id="chat-message", show_label=False, scale=5,
                                       lines=1, max_lines=4)
                c.send = gr.Button("Send", variant="primary", scale=1)
            with gr.Row():
                c.clear = gr.Button("Clear history", size="sm")
                c.unload = gr.Button("Unload model (free memory)", size="sm")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown("**Generation settings**")
            c.system = gr.Textbox("", label="System prompt", lines=2,
                                  info="Sent first in every conversation; leave empty for none.")
            c.max_new_tokens = gr.Slider(1, 2048, value=256, step=1, label="Max new tokens", elem_id="max-new-tokens",
                                         info="Longest reply, in tokens.")
            c.temperature = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="Temperature", elem_id="temperature",
                                      info="0 always picks the likeliest token; higher is more varied.")
            c.top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p",
                                info="Sample only from the smallest set of tokens with this much probability.")
            c.top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k",
                                info="Sample only from the k likeliest tokens (0 = no limit).")
            c.repetition_penalty = gr.Slider(1.0, 2.0, value=1.0, step=0.05, label="Repetition penalty",
                                             info="Above 1 discourages repeating the same words.")
    return c


def wire(c: SimpleNamespace, model) -> None:
    private = dict(api_visibility="private")
    gen = [c.max_new_tokens, c.temperature, c.top_p, c.top_k, c.repetition_penalty]
    send = dict(fn=on_send, inputs=[c.message, c.chatbot, c.target, model, c.system, *gen],
                outputs=[c.chatbot, c.message, c.note], concurrency_id=CHAT_QUEUE, concurrency_limit=1, **private)
    c.send.click(**send)
    c.message.submit(**send)
    c.clear.click(lambda: [], None, c.chatbot, **private)
    c.unload.click(on_unload, None, c.note, concurrency_id=CHAT_QUEUE, concurrency_limit=1, **private)
    c.target.input(on_target_change, c.target, [c.chatbot, c.note], **private)
    c.refresh.click(refresh, c.target, c.target, **private)
