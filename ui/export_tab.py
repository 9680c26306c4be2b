"""Export tab: a finished run's adapter, the merged model, or GGUF files with an Ollama Modelfile, as one
zip to download; or a push of the adapter / merged model to the Hugging Face Hub.

The export itself (`python -m engine export`, `python -m engine push`) loads weights, so it runs in a
child process; this side only zips the folder it wrote. A Hub token goes to the child in its environment
(HF_TOKEN), never in its argument list.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.core.workspace import safe_name, subdir
from ui.common import CLI_TIMEOUT_S, cli_failure, error_box, finished_runs, note_box, run_engine, run_label, run_path
from ui.lang import loc, tr

KINDS = ("adapter", "merged", "gguf")
GGUF_TIMEOUT_S = 3600  # merging, two conversions and loading each file back to compare
TEXT = {
    "en": {
        "run": "Run to export", "run_info": "Finished runs (including ones stopped early).", "refresh": "↻ Refresh",
        "help": "**Adapter**: the small trained weights plus a README run card; load them on top of the base "
                "model. **Merged model**: the base model with the update folded in, ready to use on its own "
                "(for methods that can be merged).",
        "adapter": "Export adapter", "merged": "Export merged model", "download": "Download",
        "gguf": "Export GGUF + Ollama Modelfile",
        "gguf_help": "**GGUF** (llama.cpp, Ollama, LM Studio): the merged model as f16 and Q8_0 files, a Modelfile "
                     "with the chat template and stop tokens (`ollama create NAME -f Modelfile`), and a check that "
                     "each file loads back and answers like the merged model. Takes a few minutes.",
        "cannot": "Could not export the {kind}", "exported": "Exported {name} ({mb} MB); also kept in {folder}.",
        "push_title": "**Push to the Hugging Face Hub**", "repo": "Repository", "repo_info": "owner/name (created "
        "if missing)", "token": "Token", "token_info": "A write token; empty: HF_TOKEN or the saved login. Not stored.",
        "push_kind": "What to push", "private": "Private repository", "push": "Push to Hub",
        "cannot_push": "Could not push", "pushed": "Pushed to {url}",
    },
    "zh": {
        "run": "要导出的训练", "run_info": "已完成的训练（包括提前停止的）。", "refresh": "↻ 刷新",
        "help": "**适配器**：训练得到的小权重和一份 README 训练说明；加载在基础模型之上使用。"
                "**合并模型**：把更新合并进基础模型，可以单独使用（适用于可合并的方法）。",
        "adapter": "导出适配器", "merged": "导出合并模型", "download": "下载",
        "gguf": "导出 GGUF + Ollama Modelfile",
        "gguf_help": "**GGUF**（llama.cpp、Ollama、LM Studio）：合并模型的 f16 和 Q8_0 文件，一个带聊天模板和停止词的 "
                     "Modelfile（`ollama create 名称 -f Modelfile`），并检查每个文件能加载回来且回答与合并模型一致。需要几分钟。",
        "cannot": "无法导出{kind}", "exported": "已导出 {name}（{mb} MB）；另存于 {folder}。",
        "push_title": "**推送到 Hugging Face Hub**", "repo": "仓库", "repo_info": "owner/name（不存在时创建）",
        "token": "令牌", "token_info": "写权限令牌；留空则用 HF_TOKEN 或已保存的登录。不会保存。",
        "push_kind": "推送内容", "private": "私有仓库", "push": "推送到 Hub",
        "cannot_push": "无法推送", "pushed": "已推送到 {url}",
    },
}


def export_zip(run_id: str, kind: str) -> Path:
    """Export into TUNELOOM_HOME/exports/<run>-<kind>/ and zip it; raises ValueError with the reason."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    run_dir = run_path(run_id)
    out = subdir("exports") / safe_name(f"{run_dir.name}-{kind}")
    result = run_engine("export", str(run_dir), f"--{kind}", "--out", str(out),
                        timeout=GGUF_TIMEOUT_S if kind == "gguf" else CLI_TIMEOUT_S)
    if result.returncode != 0:
        raise ValueError(cli_failure(result))
    return Path(shutil.make_archive(str(out), "zip", root_dir=str(out)))


def gguf_check_lines(archive: Path) -> list[str]:
    """The agreement of each GGUF with the merged model (gguf_check.json next to the files)."""
    check = archive.with_suffix("") / "gguf_check.json"
    if not check.is_file():
        return []
    return [f"{c['gguf']}: next-token agreement {c['top1_agreement']:.1%}, identical greedy replies "
            f"{c['identical_greedy_replies']}/{c['prompts']}, max |logit diff| {c['max_abs_logit_diff']}"
            for c in json.loads(check.read_text())]


def on_push(run_id, repo, kind, private, token, lang="en"):
    """Push through `python -m engine push`; fails fast (seconds) without a network."""
    try:
        run_dir = run_path(run_id)
        args = ["push", str(run_dir), "--repo", (repo or "").strip(), "--kind", kind or "adapter"]
        result = run_engine(*(args + (["--private"] if private else [])),
                            extra_env={"HF_TOKEN": token.strip()} if (token or "").strip() else None)
        if result.returncode != 0:
            raise ValueError(cli_failure(result))
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_push"), str(err))
    url = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else repo
    return note_box(tr(TEXT, lang, "pushed", url=url), "ok")


def on_export(run_id, kind, lang="en"):
    try:
        archive = export_zip(run_id, kind)
    except Exception as err:  # e.g. a method that cannot be merged: a message, not a crash
        return error_box(tr(TEXT, lang, "cannot", kind=kind), str(err)), None
    size = archive.stat().st_size / 2**20
    note = tr(TEXT, lang, "exported", name=archive.name, mb=f"{size:,.1f}", folder=archive.parent)
    checks = gguf_check_lines(archive) if kind == "gguf" else []
    return note_box(note + (" " + "; ".join(checks) + "." if checks else ""), "ok"), str(archive)


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
        c.gguf = loc(gr.Button(TEXT["en"]["gguf"], elem_id="export-gguf"), TEXT, value="gguf")
    loc(gr.Markdown(TEXT["en"]["gguf_help"], elem_classes="tl-help"), TEXT, value="gguf_help")
    c.message = gr.Markdown("", elem_id="export-message")
    c.file = loc(gr.File(label=TEXT["en"]["download"], interactive=False, elem_id="export-file"), TEXT, label="download")
    loc(gr.Markdown(TEXT["en"]["push_title"]), TEXT, value="push_title")
    with gr.Row():
        c.repo = loc(gr.Textbox("", label=TEXT["en"]["repo"], info=TEXT["en"]["repo_info"], elem_id="push-repo",
                                scale=2), TEXT, label="repo", info="repo_info")
        c.token = loc(gr.Textbox("", label=TEXT["en"]["token"], info=TEXT["en"]["token_info"], type="password",
                                 elem_id="push-token", scale=2), TEXT, label="token", info="token_info")
        c.push_kind = loc(gr.Radio(["adapter", "merged"], value="adapter", label=TEXT["en"]["push_kind"], scale=1),
                          TEXT, label="push_kind")
        c.private = loc(gr.Checkbox(True, label=TEXT["en"]["private"], scale=1), TEXT, label="private")
    c.push = loc(gr.Button(TEXT["en"]["push"], elem_id="push-hub"), TEXT, value="push")
    c.push_message = gr.Markdown("", elem_id="push-message")
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
    c.gguf.click(lambda run, lg: on_export(run, "gguf", lg), [c.run, lang], [c.message, c.file], **private)
    c.push.click(on_push, [c.run, c.repo, c.push_kind, c.private, c.token, lang], c.push_message, **private)
    c.api_button.click(api_export, [c.api_run, c.api_kind], c.api_file, api_name="export",
                       api_description="Export a finished run: run id and 'adapter', 'merged' or 'gguf' -> a zip file.")
