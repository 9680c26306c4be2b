"""Export tab: a finished run's adapter, or the merged model, as one zip to download.

The export itself (`python -m engine export`) loads weights, so it runs in a child process;
this side only zips the folder it wrote.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.core.workspace import safe_name, subdir
from ui.common import cli_failure, error_box, finished_runs, note_box, run_engine, run_label, run_path
from ui.lang import loc, tr

KINDS = ("adapter", "merged")
TEXT = {
    "en": {
        "run": "Run to export", "run_info": "Finished runs (including ones stopped early).", "refresh": "↻ Refresh",
        "help": "**Adapter**: the small trained weights plus a README run card; load them on top of the base "
                "model. **Merged model**: the base model with the update folded in, ready to use on its own "
                "(for methods that can be merged).",
        "adapter": "Export adapter", "merged": "Export merged model", "download": "Download",
        "cannot": "Could not export the {kind}", "exported": "Exported {name} ({mb} MB); also kept in {folder}.",
    },
    "zh": {
        "run": "要导出的训练", "run_info": "已完成的训练（包括提前停止的）。", "refresh": "↻ 刷新",
        "help": "**适配器**：训练得到的小权重和一份 README 训练说明；加载在基础模型之上使用。"
                "**合并模型**：把更新合并进基础模型，可以单独使用（适用于可合并的方法）。",
        "adapter": "导出适配器", "merged": "导出合并模型", "download": "下载",
        "cannot": "无法导出{kind}", "exported": "已导出 {name}（{mb} MB）；另存于 {folder}。",
    },
}


def export_zip(run_id: str, kind: str) -> Path:
    """Export into TUNELOOM_HOME/exports/<run>-<kind>/ and zip it; raises ValueError with the reason."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    run_dir = run_path(run_id)
    out = subdir("exports") / safe_name(f"{run_dir.name}-{kind}")
    result = run_engine("export", str(run_dir), f"--{kind}", "--out", str(out))
    if result.returncode != 0:
        raise ValueError(cli_failure(result))
    return Path(shutil.make_archive(str(out), "zip", root_dir=str(out)))


def on_export(run_id, kind, lang="en"):
    try:
        archive = export_zip(run_id, kind)
    except Exception as err:  # e.g. a method that cannot be merged: a message, not a crash
        return error_box(tr(TEXT, lang, "cannot", kind=kind), str(err)), None
    size = archive.stat().st_size / 2**20
    return note_box(tr(TEXT, lang, "exported", name=archive.name, mb=f"{size:,.1f}", folder=archive.parent), "ok"), \
        str(archive)


def api_export(run_id, kind):
    """API: run id + adapter|merged -> the zip file (errors are raised so clients see them)."""
    try:
        return str(export_zip(run_id, (kind or "adapter").strip().lower()))
    except Exception as err:
        raise gr.Error(str(err)) from None


def run_choices() -> list[tuple[str, str]]:
    return [(run_label(r), r["id"]) for r in finished_runs()]


def refresh(current):
    choices = run_choices()
    values = [v for _, v in choices]
    return gr.update(choices=choices, value=current if current in values else (values[0] if values else None))


def build() -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Row():
        choices = run_choices()
        c.run = loc(gr.Dropdown(choices, value=choices[0][1] if choices else None, label=TEXT["en"]["run"],
                                elem_id="export-run", scale=4, info=TEXT["en"]["run_info"]), TEXT, label="run",
                    info="run_info")
        c.refresh = loc(gr.Button(TEXT["en"]["refresh"], scale=1, size="sm"), TEXT, value="refresh")
    loc(gr.Markdown(TEXT["en"]["help"], elem_classes="tl-help"), TEXT, value="help")
    with gr.Row():
        c.adapter = loc(gr.Button(TEXT["en"]["adapter"], variant="primary", elem_id="export-adapter"), TEXT,
                        value="adapter")
        c.merged = loc(gr.Button(TEXT["en"]["merged"]), TEXT, value="merged")
    c.message = gr.Markdown("", elem_id="export-message")
    c.file = loc(gr.File(label=TEXT["en"]["download"], interactive=False, elem_id="export-file"), TEXT, label="download")
    # the stable `export` API endpoint: hidden inputs so clients call it with (run id, kind)
    with gr.Row(visible=False):
        c.api_run = gr.Textbox()
        c.api_kind = gr.Textbox(value="adapter")
        c.api_file = gr.File()
        c.api_button = gr.Button()
    return c


def wire(c: SimpleNamespace, lang) -> None:
    private = dict(api_visibility="private")
    c.refresh.click(refresh, c.run, c.run, **private)
    c.adapter.click(lambda run, lg: on_export(run, "adapter", lg), [c.run, lang], [c.message, c.file], **private)
    c.merged.click(lambda run, lg: on_export(run, "merged", lg), [c.run, lang], [c.message, c.file], **private)
    c.api_button.click(api_export, [c.api_run, c.api_kind], c.api_file, api_name="export",
                       api_description="Export a finished run: run id and 'adapter' or 'merged' -> a zip file.")
