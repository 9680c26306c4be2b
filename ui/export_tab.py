"""Export tab: a finished run's adapter, or the merged model, as one zip to download.

The export itself (`python -m engine export`) loads weights, so it runs in a child process;
this side only zips the folder it wrote.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.workspace import safe_name, subdir
from ui.common import cli_failure, error_box, finished_runs, note_box, run_engine, run_label, run_path

KINDS = ("adapter", "merged")


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


def on_export(run_id, kind):
    try:
        archive = export_zip(run_id, kind)
    except Exception as err:  # e.g. a method that cannot be merged: a message, not a crash
        return error_box(f"Could not export the {kind}", str(err)), None
    size = archive.stat().st_size / 2**20
    return note_box(f"Exported {archive.name} ({size:,.1f} MB); also kept in {archive.parent}.", "ok"), str(archive)


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
        c.run = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Run to export", elem_id="export-run", scale=4,
                            info="Finished runs (including ones stopped early).")
        c.refresh = gr.Button("↻ Refresh", scale=1, size="sm")
    gr.Markdown("**Adapter**: the small trained weights plus a README run card; load them on top of the base "
                "model. **Merged model**: the base model with the update folded in, ready to use on its own "
                "(for methods that can be merged).", elem_classes="tl-help")
    with gr.Row():
        c.adapter = gr.Button("Export adapter", variant="primary", elem_id="export-adapter")
        c.merged = gr.Button("Export merged model")
    c.message = gr.Markdown("", elem_id="export-message")
    c.file = gr.File(label="Download", interactive=False, elem_id="export-file")
    # the stable `export` API endpoint: hidden inputs so clients call it with (run id, kind)
    with gr.Row(visible=False):
        c.api_run = gr.Textbox()
        c.api_kind = gr.Textbox(value="adapter")
        c.api_file = gr.File()
        c.api_button = gr.Button()
    return c


def wire(c: SimpleNamespace) -> None:
    private = dict(api_visibility="private")
    c.refresh.click(refresh, c.run, c.run, **private)
    c.adapter.click(lambda run: on_export(run, "adapter"), c.run, [c.message, c.file], **private)
    c.merged.click(lambda run: on_export(run, "merged"), c.run, [c.message, c.file], **private)
    c.api_button.click(api_export, [c.api_run, c.api_kind], c.api_file, api_name="export",
                       api_description="Export a finished run: run id and 'adapter' or 'merged' -> a zip file.")
