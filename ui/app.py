"""The page: header, the shared model field, the four tabs, the API. `build_ui()` returns the Blocks."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import gradio as gr

from engine.workspace import ALIASES, is_prepared, resolve_model, subdir
from ui import api, chat_tab, data_tab, export_tab, train_tab
from ui.common import error_box, note_box, start_engine

CSS = """
.tl-header h1 {margin-bottom: 0;}
.tl-header p {margin-top: 2px; color: var(--body-text-color-subdued);}
.tl-error {border: 1px solid #ef4444; background: rgba(239,68,68,.08); border-radius: 8px; padding: 8px 12px;}
.tl-error ul {margin: 4px 0 0 0;}
.tl-info {border-left: 4px solid #3b82f6; padding: 4px 10px; background: rgba(59,130,246,.06); border-radius: 4px;}
.tl-ok {border-left: 4px solid #22c55e; padding: 4px 10px; background: rgba(34,197,94,.07); border-radius: 4px;}
.tl-progress {height: 14px; background: var(--neutral-200, #e5e7eb); border-radius: 7px; overflow: hidden; margin: 8px 0 4px;}
.tl-bar {height: 100%; background: linear-gradient(90deg, #3b82f6, #22c55e); transition: width .6s;}
.tl-failed .tl-bar {background: #ef4444;}
.tl-progress-text {font-size: .9em;}
.tl-help {font-size: .88em; color: var(--body-text-color-subdued);}
"""
THEME = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
_PREPARING: dict[str, subprocess.Popen] = {}  # one preparation per model, whichever page asked
_PREPARING_LOCK = threading.Lock()


def launch_options() -> dict:
    """What `launch()` needs besides host/port/auth: look, upload limit, the exports folder for downloads."""
    return dict(theme=THEME, css=CSS, allowed_paths=[str(subdir("exports"))],
                max_file_size=f"{data_tab.max_upload_mb():.0f}mb")


# ---- the model field -------------------------------------------------------------------------
def model_note(model: str):
    """(note, Prepare button update) for what is typed in the model field."""
    model = (model or "").strip()
    hidden = gr.update(visible=False)
    if not model:
        return error_box("The model field is empty", "type smollm2-135m-instruct, a local folder or a Hub id"), hidden
    if model in ALIASES:
        if is_prepared(model):
            return note_box(f"{model}: ready ({ALIASES[model]}).", "ok"), hidden
        return note_box(f"{model} needs a one-time preparation (about 30 s)."), gr.update(visible=True)
    path = Path(resolve_model(model))
    if path.exists() or model.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            return error_box(f"{path} is not a model folder", "it has no config.json"), hidden
        return note_box(f"Local model folder {path}.", "ok"), hidden
    return note_box(f"{model}: a Hugging Face Hub id, downloaded by the trainer on first use."), hidden


def prepare(model: str):
    """Generator: run `python -m engine model prepare` (shared by every page asking) and show progress."""
    model = (model or "").strip()
    with _PREPARING_LOCK:
        process = _PREPARING.get(model)
        if process is None or process.poll() is not None:
            process = _PREPARING[model] = start_engine("model", "prepare", model)
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
    started = time.time()
    while process.poll() is None:
        yield note_box(f"Preparing {model}… {time.time() - started:.0f} s (one time only)"), gr.update(visible=False)
        time.sleep(1)
    if process.returncode != 0:
        lines = [l for l in getattr(process, "lines", []) if l.strip()][-4:]
        yield error_box(f"Preparing {model} failed", lines or [f"exit code {process.returncode}"]), \
            gr.update(visible=True)
        return
    yield model_note(model)


def _drain(process: subprocess.Popen) -> None:
    """Keep the child's output (for the error message) without letting its pipe fill up."""
    process.lines = []
    for line in process.stdout:
        process.lines.append(line.rstrip())
    process.wait()


def prepare_on_load(model: str):
    """On page load: an unprepared default model starts preparing by itself."""
    model = (model or "").strip()
    if model in ALIASES and not is_prepared(model):
        yield from prepare(model)
    else:
        yield model_note(model)


# ---- the page --------------------------------------------------------------------------------
def build_ui() -> gr.Blocks:
    defaults = train_tab.preset_defaults()
    private = dict(api_visibility="private")
    with gr.Blocks(title="Tuneloom") as demo:
        gr.Markdown("# Tuneloom\nFine-tune a language model without code: check your data, train, chat with "
                    "the result, export it.", elem_classes="tl-header")
        with gr.Row(equal_height=True):
            model = gr.Textbox(defaults.model, label="Model", scale=5, elem_id="model",
                               info="smollm2-135m-instruct (bundled, small), a local model folder, or a Hub id "
                                    "such as HuggingFaceTB/SmolLM2-360M-Instruct.")
            prepare_button = gr.Button("Prepare model", visible=False, scale=1)
        note = gr.Markdown("")
        with gr.Tabs():
            with gr.Tab("1 · Data"):
                data = data_tab.build(defaults)
            with gr.Tab("2 · Train"):
                train = train_tab.build(defaults)
            with gr.Tab("3 · Chat") as chat_page:
                chat = chat_tab.build()
            with gr.Tab("4 · Export") as export_page:
                export = export_tab.build()

        data_tab.wire(data, model, train_tab.max_seq_len_input(train))
        train_tab.wire(train, model, data)
        chat_tab.wire(chat, model)
        export_tab.wire(export)
        # runs finish while the page is open: refresh the run pickers whenever their tab is opened
        chat_page.select(chat_tab.refresh, chat.target, chat.target, **private)
        export_page.select(export_tab.refresh, export.run, export.run, **private)
        model.blur(model_note, model, [note, prepare_button], **private)
        model.submit(model_note, model, [note, prepare_button], **private)
        prepare_button.click(prepare, model, [note, prepare_button], **private)
        demo.load(prepare_on_load, model, [note, prepare_button], **private)
        demo.load(train_tab.pick_on_load, None, [train.follow, train.runs], **private)
        api.register()
    return demo
