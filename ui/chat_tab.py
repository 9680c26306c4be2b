"""Chat tab: talk to a finished run or the base model, or ask two models the same thing side by side.

Each model lives in a worker process (`ChatWorker`); replies stream token by token (beam search
and several returned sequences come whole: the streamer cannot follow them, and the page says
so). Side by side uses a second worker, so both answers stream at the same time with the same
settings. Unload ends both processes so all of their memory comes back. The settings are
checked by engine/inference/generation.py before anything is sent.
"""
from __future__ import annotations

import atexit
import queue
import threading
from types import SimpleNamespace

import gradio as gr

from engine.core.messages import Message
from engine.estimate import sharing
from engine.inference import generation
from engine.inference.chat_client import ChatWorker, WorkerError
from ui import chat_line, chat_tools, messages
from ui.chat_text import TEXT  # noqa: F401  (the tab's words, en + zh)
from ui.common import error_box, finished_runs, note_box, reason, run_label, run_path
from ui.lang import loc, tr

WORKER = ChatWorker()
WORKER_B = ChatWorker()  # the right-hand column of side by side
atexit.register(WORKER.unload)
atexit.register(WORKER_B.unload)
BASE = "base"


# the generation controls, in the order handlers receive them
GEN_KEYS = ("max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_k", "top_p",
            "repetition_penalty", "num_beams", "num_return_sequences", "seed", "stop_on_eos")


def target_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, "base_choice"), BASE)] + [(run_label(r, lang), r["id"]) for r in finished_runs()]


def preset_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, name), name) for name in generation.PRESETS]


def load(target: str, model: str, worker: ChatWorker = WORKER) -> str:
    """Load the run or base model into `worker` if it is not loaded already; returns the worker's note.

    Beside a training job the model loads only when the estimates say both fit (engine/estimate/sharing.py)."""
    if not target or target == BASE:
        model = (model or "").strip()
        if not model:
            raise ValueError(Message("chat.no_model"))
        key, run_dir = f"base:{model}", None
    else:
        run_dir = run_path(target)
        key = f"run:{target}"
    if worker.holds(key):
        return worker.note
    needed = sharing.chat_bytes(run_dir, model)
    refusal = sharing.chat_refusal(needed)
    if refusal:
        raise ValueError(refusal)
    note = worker.load(key, run=str(run_dir)) if run_dir else worker.load(key, model=model)
    worker.counted_bytes = needed or 0
    return note


def make_room_for_training(training_bytes: int | None) -> bool:
    """Unload the chat models when a training job of `training_bytes` would not fit beside them."""
    loaded = [w.counted_bytes for w in (WORKER, WORKER_B) if w.loaded]
    if sharing.fits_beside_chat(training_bytes, loaded):
        return False
    for worker in (WORKER, WORKER_B):
        worker.unload()
    return True


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
    """The API's short form (temperature 0 = greedy, above 0 = sampling)."""
    short = generation.SHORT_FORM
    return {"max_new_tokens": int(max_new_tokens or short["max_new_tokens"]),
            "temperature": float(temperature or short["temperature"]), "top_p": float(top_p or short["top_p"]),
            "top_k": int(top_k or 0), "repetition_penalty": float(repetition_penalty or short["repetition_penalty"])}


def settings_params(*values) -> dict:
    """The full settings from the controls (in GEN_KEYS order)."""
    params = dict(zip(GEN_KEYS, values))
    seed = params.get("seed")
    params["seed"] = None if seed in (None, "") else int(seed)
    return params


def settings_note(lang, *values) -> str:
    """Under the settings: the problems, or why the reply will not stream, or nothing."""
    params = settings_params(*values)
    problems = generation.check_generation(params)
    if problems:
        return error_box(tr(TEXT, lang, "bad_settings"), problems, lang)
    why = generation.stream_note(params)
    return note_box(messages.say(why, lang)) if why else ""


def apply_preset(name):
    preset = generation.PRESETS.get(name)
    if not preset:
        return [gr.skip()] * len(GEN_KEYS)
    full = {**generation.DEFAULTS, **preset}
    return [gr.update(value=full[k]) if k in preset else gr.skip() for k in GEN_KEYS]


def messages_for(system, history: list[dict]) -> list[dict]:
    messages = ([{"role": "system", "content": system.strip()}] if system and system.strip() else [])
    return messages + chat_tools.model_messages(history, text_of)  # shown tool calls and results: tool turns


def shown_text(event: dict, text: str, lang) -> str:
    """The growing reply: tokens are appended; several sequences are listed as alternatives."""
    if event["event"] == "token":
        return text + event["text"]
    texts = event.get("texts") or [""]
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"**{tr(TEXT, lang, 'alternative', n=i + 1)}**\n\n{t.strip()}" for i, t in enumerate(texts))


def reply_stream(system, history: list[dict], params: dict, worker: ChatWorker = WORKER, lang="en", tools=None):
    """Yield the growing reply of the loaded model to `history`; with `tools`, a last dict when the reply holds tool
    calls (the worker's "reply" event: ui/chat_tools.py shows it)."""
    text = ""
    for event in worker.stream(messages_for(system, history), params, tools):
        if event["event"] == "reply":
            yield event
            continue
        text = shown_text(event, text, lang)
        yield text


def refusal(text: str, params: dict, lang="en") -> tuple | None:
    """What the page shows instead of a reply (send and side by side alike): nothing for an empty message, the
    problems of invalid generation settings; None when the request can go ahead."""
    if not text:
        return gr.skip(), gr.skip(), gr.skip()
    problems = generation.check_generation(params)
    return (gr.skip(), gr.skip(), error_box(tr(TEXT, lang, "bad_settings"), problems, lang)) if problems else None


def on_send(message, history, target, model, system, lang, tools_text, *gen):
    message, params = (message or "").strip(), settings_params(*gen)
    refused = refusal(message, params, lang)
    if refused:
        yield refused
        return
    tools, problem = chat_tools.read(tools_text, lang)
    if problem:
        yield gr.skip(), gr.skip(), problem
        return
    history = chat_tools.user_turn([{**m, "content": text_of(m["content"])} for m in (history or [])], message,
                                   tools, lang)  # metadata marks tool calls: kept
    yield history + [{"role": "assistant", "content": "…"}], "", note_box(tr(TEXT, lang, "loading"))
    try:
        note = load(target, model)
        why = generation.stream_note(params)
        loaded = note_box(tr(TEXT, lang, "loaded", note=messages.say(note, lang))
                          + (f" · {messages.say(why, lang)}" if why else "")
                          + chat_tools.rendered_note(WORKER, tools, lang), "ok")
        shown = history + [{"role": "assistant", "content": ""}]
        yield shown, gr.skip(), loaded
        for text in reply_stream(system, history, params, lang=lang, tools=tools):
            chat_tools.show(shown, text, lang)  # the text so far, or the reply read as tool calls
            yield shown, gr.skip(), gr.skip()
    except (WorkerError, ValueError) as err:
        yield history, message, error_box(tr(TEXT, lang, "failed"), reason(err), lang)


def side_by_side(prompt, targets: tuple[str, str], model, system, params: dict, lang="en"):
    """Generator of (left text, right text, left note, right note): both models load and answer at once; a note is
    ("loaded", how the model is served) or ("error", why), empty until then.

    Each side runs in a thread feeding one queue, so the two workers generate concurrently and
    the page shows whichever side has new text.
    """
    events: queue.Queue = queue.Queue()
    history = [{"role": "user", "content": prompt}]

    def side(index: int, target: str, worker: ChatWorker) -> None:
        try:
            events.put((index, "loaded", load(target, model, worker)))
            for event in worker.stream(messages_for(system, history), params):
                events.put((index, "event", event))
            events.put((index, "done", None))
        except Exception as err:  # WorkerError, ValueError, a dead worker: shown on that side
            events.put((index, "error", reason(err)))

    texts, notes, running = ["", ""], [(), ()], 2
    for index, (target, worker) in enumerate(zip(targets, (WORKER, WORKER_B))):
        threading.Thread(target=side, args=(index, target, worker), daemon=True).start()
    while running:
        index, kind, payload = events.get()
        if kind == "event":
            texts[index] = shown_text(payload, texts[index], lang)
        elif kind == "loaded":
            notes[index] = ("loaded", payload)
        elif kind == "error":
            notes[index] = ("error", payload)
            running -= 1
        else:
            running -= 1
        yield texts[0], texts[1], notes[0], notes[1]


def on_side(prompt, target_a, target_b, model, system, lang, *gen):
    prompt, params = (prompt or "").strip(), settings_params(*gen)
    refused = refusal(prompt, params, lang)
    if refused:
        yield refused
        return
    user = {"role": "user", "content": prompt}
    yield [user, {"role": "assistant", "content": "…"}], [user, {"role": "assistant", "content": "…"}], \
        note_box(tr(TEXT, lang, "loading_two"))
    last_notes = None
    for left, right, note_a, note_b in side_by_side(prompt, (target_a, target_b), model, system, params, lang):
        notes = (note_a, note_b)
        failed = [why for kind, why in filter(None, notes) if kind == "error"]
        if failed:
            message = error_box(tr(TEXT, lang, "failed"), failed, lang)
        elif notes != last_notes and all(notes):
            why = generation.stream_note(params)
            message = note_box(tr(TEXT, lang, "loaded_two", left=messages.say(note_a[1], lang),
                                  right=messages.say(note_b[1], lang))
                               + (f" · {messages.say(why, lang)}" if why else ""), "ok")
        else:
            message = gr.skip()
        last_notes = notes
        yield [user, {"role": "assistant", "content": left}], [user, {"role": "assistant", "content": right}], message


def on_target_change(target, lang="en"):
    # a different model: the old conversation was with someone else
    return [], note_box(tr(TEXT, lang, "loads_first"))


def current_note(target, model, lang="en"):
    """The note under the picker, in the page's language: what is loaded, or that the model loads with a message."""
    key = f"base:{(model or '').strip()}" if not target or target == BASE else f"run:{target}"
    if WORKER.holds(key):
        return note_box(tr(TEXT, lang, "loaded", note=messages.say(WORKER.note, lang)), "ok")
    return note_box(tr(TEXT, lang, "loads_first"))


def on_unload(lang="en"):
    WORKER.unload()
    WORKER_B.unload()
    return note_box(tr(TEXT, lang, "unloaded"))


def refresh(target, lang="en"):
    choices = target_choices(lang)
    keep = target if target in [v for _, v in choices] else BASE
    return gr.update(choices=choices, value=keep)


def refresh_all(target, left, right, lang="en"):
    return refresh(target, lang), refresh(left, lang), refresh(right, lang)


# ---- layout ----------------------------------------------------------------------------------
def _target(elem_id: str, key: str, info: str | None = "chat_with_info"):
    props = {"label": key, **({"info": info} if info else {})}
    return loc(gr.Dropdown(target_choices(), value=BASE, label=TEXT["en"][key], elem_id=elem_id, scale=4,
                           info=TEXT["en"][info] if info else None), TEXT, **props)


def _control(component, key: str):
    return loc(component, TEXT, label=key, info=f"{key}_info")


def build() -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            with gr.Tabs():
                with gr.Tab(en["single"], elem_id="chat-single") as c.single_tab:
                    loc(c.single_tab, TEXT, label="single")
                    with gr.Row():
                        c.target = _target("chat-target", "chat_with")
                        c.refresh = loc(gr.Button(en["refresh"], scale=1, size="sm"), TEXT, value="refresh")
                    c.note = gr.Markdown(elem_id="chat-note", value=note_box(en["loads_first"]))
                    c.chatbot = loc(gr.Chatbot(label=en["conversation"], show_label=False, elem_id="chatbot",
                                               height=380, buttons=["copy"]), TEXT, label="conversation")
                    with gr.Row():
                        c.message = loc(gr.Textbox(placeholder=en["placeholder"], elem_id="chat-message",
                                                   label=en["message"], show_label=False, scale=5, lines=1,
                                                   max_lines=4), TEXT, placeholder="placeholder", label="message")
                        c.send = loc(gr.Button(en["send"], variant="primary", scale=1), TEXT, value="send")
                    with gr.Row(equal_height=False):
                        c.clear = loc(gr.Button(en["clear"], size="sm", scale=1), TEXT, value="clear")
                        c.unload = loc(gr.Button(en["unload"], size="sm", scale=1, elem_id="unload"), TEXT,
                                       value="unload")
                        c.unload_note = gr.Markdown("", elem_id="unload-note")  # what Unload did, beside it
                with gr.Tab(en["side"], elem_id="chat-side") as c.side_tab:
                    loc(c.side_tab, TEXT, label="side")
                    loc(gr.Markdown(en["side_help"], elem_classes="tl-help"), TEXT, value="side_help")
                    with gr.Row(equal_height=False):
                        with gr.Column():
                            c.left = _target("side-left", "left", None)
                            c.left_chat = loc(gr.Chatbot(label=en["left"], show_label=False, elem_id="side-left-chat",
                                                         height=340, buttons=["copy"]), TEXT, label="left")
                        with gr.Column():
                            c.right = _target("side-right", "right", None)
                            c.right_chat = loc(gr.Chatbot(label=en["right"], show_label=False,
                                                          elem_id="side-right-chat", height=340, buttons=["copy"]),
                                               TEXT, label="right")
                    c.side_note = gr.Markdown("", elem_id="side-note")
                    with gr.Row():
                        c.side_prompt = loc(gr.Textbox(placeholder=en["side_placeholder"], elem_id="side-prompt",
                                                       label=en["side_prompt"], show_label=False, scale=5, lines=1,
                                                       max_lines=4), TEXT, placeholder="side_placeholder",
                                            label="side_prompt")
                        c.side_send = loc(gr.Button(en["side_send"], variant="primary", scale=1, elem_id="side-send"),
                                          TEXT, value="side_send")
        with gr.Column(scale=2, min_width=300):
            loc(gr.Markdown(en["settings"]), TEXT, value="settings")
            c.preset = loc(gr.Radio(preset_choices("en"), value="precise", label=en["preset"], info=en["preset_info"],
                                    elem_id="gen-preset"), TEXT, label="preset", info="preset_info",
                           choices=preset_choices)
            c.system = _control(gr.Textbox("", label=en["system"], lines=2, info=en["system_info"]), "system")
            d = generation.DEFAULTS
            with gr.Row():
                c.max_new_tokens = _control(gr.Number(d["max_new_tokens"], precision=0, minimum=1, maximum=8192,
                                                      label=en["max_new_tokens"], info=en["max_new_tokens_info"],
                                                      elem_id="max-new-tokens"), "max_new_tokens")
                c.min_new_tokens = _control(gr.Number(d["min_new_tokens"], precision=0, minimum=0, maximum=8192,
                                                      label=en["min_new_tokens"], info=en["min_new_tokens_info"],
                                                      elem_id="min-new-tokens"), "min_new_tokens")
            c.do_sample = _control(gr.Checkbox(d["do_sample"], label=en["do_sample"], info=en["do_sample_info"],
                                               elem_id="do-sample"), "do_sample")
            c.temperature = _control(gr.Slider(0.05, 2.0, value=d["temperature"], step=0.05, label=en["temperature"],
                                               info=en["temperature_info"], elem_id="temperature"), "temperature")
            with gr.Row():
                c.top_k = _control(gr.Number(d["top_k"], precision=0, minimum=0, label=en["top_k"],
                                             info=en["top_k_info"], elem_id="top-k"), "top_k")
                c.top_p = _control(gr.Slider(0.05, 1.0, value=d["top_p"], step=0.05, label=en["top_p"],
                                             info=en["top_p_info"], elem_id="top-p"), "top_p")
            c.repetition_penalty = _control(gr.Slider(1.0, 2.0, value=d["repetition_penalty"], step=0.05,
                                                      label=en["repetition_penalty"],
                                                      info=en["repetition_penalty_info"]), "repetition_penalty")
            with gr.Row():
                c.num_beams = _control(gr.Number(d["num_beams"], precision=0, minimum=1, maximum=64,
                                                 label=en["num_beams"], info=en["num_beams_info"],
                                                 elem_id="num-beams"), "num_beams")
                c.num_return_sequences = _control(gr.Number(d["num_return_sequences"], precision=0, minimum=1,
                                                            maximum=64, label=en["num_return_sequences"],
                                                            info=en["num_return_sequences_info"],
                                                            elem_id="num-sequences"), "num_return_sequences")
            with gr.Row():
                c.seed = _control(gr.Number(None, precision=0, label=en["seed"], info=en["seed_info"],
                                            elem_id="gen-seed"), "seed")
                c.stop_on_eos = _control(gr.Checkbox(d["stop_on_eos"], label=en["stop_on_eos"],
                                                     info=en["stop_on_eos_info"]), "stop_on_eos")
            c.gen_note = gr.Markdown("", elem_id="gen-note")
            c.tools = chat_tools.build()
    c.gen = [c.max_new_tokens, c.min_new_tokens, c.do_sample, c.temperature, c.top_k, c.top_p, c.repetition_penalty,
             c.num_beams, c.num_return_sequences, c.seed, c.stop_on_eos]
    return c


def wire(c: SimpleNamespace, model, lang) -> None:
    private = dict(api_visibility="private")
    # no concurrency limit: requests wait in chat_line's line, which tells each its place
    send = dict(fn=chat_line.in_line(on_send, 3, note_at=2), inputs=[c.message, c.chatbot, c.target, model, c.system,
                lang, c.tools.text, *c.gen], outputs=[c.chatbot, c.message, c.note], concurrency_limit=None, **private)
    c.send.click(**send)
    c.message.submit(**send)
    side = dict(fn=chat_line.in_line(on_side, 3, note_at=2), inputs=[c.side_prompt, c.left, c.right, model, c.system,
                lang, *c.gen], outputs=[c.left_chat, c.right_chat, c.side_note], concurrency_limit=None, **private)
    c.side_send.click(**side)
    c.side_prompt.submit(**side)
    c.clear.click(lambda: [], None, c.chatbot, **private)
    c.unload.click(lambda lang: (chat_line.in_turn(on_unload, lang), note_box(tr(TEXT, lang, "loads_first"))), lang,
                   [c.unload_note, c.note], concurrency_limit=None, **private)
    # the Unload note is about that moment: gone once a message loads a model again
    gr.on([c.send.click, c.message.submit], lambda: "", None, c.unload_note, show_progress="hidden", **private)
    c.target.input(on_target_change, [c.target, lang], [c.chatbot, c.note], **private)
    lang.change(current_note, [c.target, model, lang], c.note, show_progress="hidden", **private)
    c.refresh.click(refresh_all, [c.target, c.left, c.right, lang], [c.target, c.left, c.right], **private)
    c.preset.input(apply_preset, c.preset, c.gen, **private)
    chat_tools.wire(c.tools, lang)
    for control in c.gen:
        control.change(settings_note, [lang, *c.gen], c.gen_note, show_progress="hidden", **private)
