"""Export tab: a finished run's adapter, the merged model, or GGUF files with an Ollama Modelfile, downloaded
in one click; a push to the Hugging Face Hub; and an OpenAI-compatible server for the run.

The export itself (`python -m engine export --zip --progress`, `python -m engine push`) loads weights, so it
runs in a child process; this side shows the progress lines it prints and, when the zip is written, starts
the download in the browser. A Hub token goes to the child in its environment (HF_TOKEN), never in its
argument list. The server is a background job of the run (engine/inference/serve_job.py).
"""
from __future__ import annotations

import html
import json
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.core.jobs import RunState
from engine.core.workspace import safe_name, subdir
from engine.inference import serve_job
from engine.inference.export_options import DTYPES
from ui import common, messages, reword
from ui.common import engine, error_box, note_box, progress_bar, reason, run_label, run_path
from ui.lang import loc, tr
from ui.reword import said

KINDS = ("adapter", "merged", "gguf")
SERVE_WAIT_S = 300
GGUF_TIMEOUT_S = 3600  # merging, two conversions and loading each file back to compare
# after an export: click the download link the file component shows (the export and the download are one click)
DOWNLOAD_JS = """() => new Promise(resolve => {
  const started = Date.now();
  const tryClick = () => {
    const link = document.querySelector('#export-file a[download], #export-file a[href*="/file="]');
    if (link) { link.click(); resolve(); }
    else if (Date.now() - started < 5000) { setTimeout(tryClick, 100); }
    else { resolve(); }
  };
  tryClick();
})"""
TEXT = {
    "en": {
        "run": "Run to export", "run_info": "Finished runs (including ones stopped early).", "refresh": "↻ Refresh",
        "help": "**Adapter**: the small trained weights plus a README run card; load them on top of the base "
                "model. **Merged model**: the base model with the update folded in, ready to use on its own "
                "(for methods that can be merged). The download starts when the file is ready.",
        "adapter": "Download adapter", "merged": "Download merged model", "download": "File",
        "gguf": "Download GGUF + Ollama Modelfile",
        "gguf_help": "**GGUF** (llama.cpp, Ollama, LM Studio): the merged model as f16 and Q8_0 files, a Modelfile "
                     "with the chat template and stop tokens (`ollama create NAME -f Modelfile`), and a check that "
                     "each file loads back and answers like the merged model. Takes a few minutes.",
        "converting": "converting to GGUF", "checking": "checking the GGUF files",
        "push_title": "**Push to the Hugging Face Hub**", "repo": "Repository", "repo_info": "owner/name (created "
        "if missing)", "token": "Token", "token_info": "A write token; empty: HF_TOKEN or the saved login. Not stored.",
        "push_kind": "What to push", "private": "Private repository", "push": "Push to Hub",
        "cannot_push": "Could not push", "pushed": "Pushed to {url}",
        "dtype": "Merged model dtype", "dtype_info": "auto: the dtype the base model is published in "
                                                    "(bf16 for SmolLM2: half the size of fp32).",
        "cannot": "Could not export the {kind}", "exported": "Exported {name} ({mb} MB); also kept in {folder}.",
        "starting": "starting", "loading base": "loading the base model", "loading adapter": "loading the adapter",
        "merging": "merging", "saving": "saving", "zipping": "zipping", "copying": "copying",
        "serve_title": "**Serve** — an OpenAI-compatible endpoint (`/v1/chat/completions`, `/v1/models`) for this run, "
                       "for other tools on this machine.",
        "serve": "Start serving", "unserve": "Stop serving",
        "serve_starting": "Starting the server for {run}: loading the model… {seconds} s",
        "serve_running": "Serving **{run}** at `{url}` (model `{model}`; {note}). On this machine only: to reach it "
                         "from others, run `python -m engine serve {run} --host 0.0.0.0 --auth user:password`.",
        "serve_stopped": "Not serving.", "serve_failed": "The server failed", "cannot_serve": "Could not serve the run",
        "cannot_unserve": "Could not stop the server", "serve_stopping": "Stopping the server of {run}.",
        "kind_adapter": "adapter", "kind_merged": "merged model", "kind_gguf": "GGUF files",
        "gguf_check": "{gguf}: next-token agreement {agreement}, identical greedy replies {same}/{prompts}, max |logit "
                      "diff| {diff}",
    },
    "zh": {
        "run": "要导出的训练", "run_info": "已完成的训练（包括提前停止的）。", "refresh": "↻ 刷新",
        "help": "**适配器**：训练得到的小权重和一份 README 训练说明；加载在基础模型之上使用。"
                "**合并模型**：把更新合并进基础模型，可以单独使用（适用于可合并的方法）。文件准备好后自动开始下载。",
        "adapter": "下载适配器", "merged": "下载合并模型", "download": "文件",
        "gguf": "下载 GGUF + Ollama Modelfile",
        "gguf_help": "**GGUF**（llama.cpp、Ollama、LM Studio）：合并模型的 f16 和 Q8_0 文件，一个带聊天模板和停止词的 "
                     "Modelfile（`ollama create 名称 -f Modelfile`），"
                     "并检查每个文件能加载回来且回答与合并模型一致。需要几分钟。",
        "converting": "转换为 GGUF", "checking": "检查 GGUF 文件",
        "push_title": "**推送到 Hugging Face Hub**", "repo": "仓库", "repo_info": "owner/name（不存在时创建）",
        "token": "令牌", "token_info": "写权限令牌；留空则用 HF_TOKEN 或已保存的登录。不会保存。",
        "push_kind": "推送内容", "private": "私有仓库", "push": "推送到 Hub",
        "cannot_push": "无法推送", "pushed": "已推送到 {url}",
        "dtype": "合并模型的数据类型",
        "dtype_info": "auto：与基础模型发布时的类型相同（SmolLM2 为 bf16，大小是 fp32 的一半）。",
        "cannot": "无法导出{kind}", "exported": "已导出 {name}（{mb} MB）；另存于 {folder}。",
        "starting": "启动中", "loading base": "加载基础模型", "loading adapter": "加载适配器",
        "merging": "合并中", "saving": "保存中", "zipping": "打包中", "copying": "复制中",
        "serve_title": "**服务** —— 为这次训练提供 OpenAI 兼容接口（`/v1/chat/completions`、`/v1/models`），"
                       "供本机其他工具使用。",
        "serve": "开始服务", "unserve": "停止服务",
        "serve_starting": "正在为 {run} 启动服务：加载模型… {seconds} 秒",
        "serve_running": "正在服务 **{run}**，地址 `{url}`（模型 `{model}`；{note}）。"
                         "仅限本机：要让其他机器访问，请运行 "
                         "`python -m engine serve {run} --host 0.0.0.0 --auth 用户名:密码`。",
        "serve_stopped": "未在服务。", "serve_failed": "服务失败", "cannot_serve": "无法启动服务",
        "cannot_unserve": "无法停止服务", "serve_stopping": "正在停止 {run} 的服务。",
        "kind_adapter": "适配器", "kind_merged": "合并模型", "kind_gguf": "GGUF 文件",
        "gguf_check": "{gguf}：下一个词元一致率 {agreement}，贪心回答完全相同 {same}/{prompts}，logit 最大差值 {diff}",
    },
}


# ---- export ------------------------------------------------------------------------------------
def export_command(run_id: str, kind: str, dtype: str = "auto") -> list[str]:
    """The CLI arguments that export a run into TUNELOOM_HOME/exports/<run>-<kind>/ and zip it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    run_dir = run_path(run_id)
    out = subdir("exports") / safe_name(f"{run_dir.name}-{kind}")
    return ["export", str(run_dir), f"--{kind}", "--out", str(out), "--zip"] + (
        ["--dtype", dtype] if kind == "merged" else [])


def export_zip(run_id: str, kind: str, dtype: str = "auto") -> Path:
    """Export and zip; raises ValueError with the reason (the API's `export`)."""
    result = common.run_engine(*export_command(run_id, kind, dtype),
                               timeout=GGUF_TIMEOUT_S if kind == "gguf" else common.CLI_TIMEOUT_S)
    if result.returncode != 0:
        raise ValueError(common.cli_failure(result))
    return Path(result.stdout.strip().splitlines()[-1])


def exporting(run_id: str, kind: str, dtype: str = "auto"):
    """Generator: ("progress", fraction, phase) while the export runs, then ("done", zip path) or ("failed", why)."""
    process = common.start_engine(*export_command(run_id, kind, dtype), "--progress")
    lines = []
    for line in process.stdout:
        line = line.strip()
        if line.startswith('{"progress"'):
            event = json.loads(line)
            yield "progress", event["progress"], event["phase"]
        elif line:
            lines.append(line)
    if process.wait() != 0:
        yield "failed", common.failure_text(lines, process.returncode)
    else:
        yield "done", Path(lines[-1])


def on_export(run_id, kind, dtype="auto", lang="en"):
    """One click: progress while it exports, then the file, which the page then downloads (DOWNLOAD_JS)."""
    started = time.time()
    yield "", progress_bar(0.0, "running", html.escape(tr(TEXT, lang, "starting"))), None
    try:
        for event in exporting(run_id, kind, dtype):
            if event[0] == "progress":
                text = f"<b>{html.escape(tr(TEXT, lang, event[2]) if event[2] in TEXT['en'] else event[2])}</b> · " \
                       f"{event[1]:.0%} · {time.time() - started:.0f} s"
                yield gr.skip(), progress_bar(event[1], "running", text), gr.skip()
            elif event[0] == "failed":
                yield reword.error(lang, cannot(kind), engine(event[1])), "", None
            else:
                archive = event[1]
                exported = said(__name__, "exported", name=archive.name, mb=f"{archive.stat().st_size / 2**20:,.1f}",
                                folder=str(archive.parent))
                checks = reword.worded_by(gguf_check_text, str(archive)) if kind == "gguf" else ""
                yield reword.note("ok", lang, exported, checks), "", str(archive)
    except Exception as err:  # e.g. no run chosen: a message, not a crash
        yield reword.error(lang, cannot(kind), reason(err)), "", None


def cannot(kind: str) -> dict:
    return said(__name__, "cannot", kind=reword.worded_by(kind_name, kind))


def gguf_check_text(archive: str, lang="en") -> str:
    checks = gguf_check_lines(Path(archive), lang)
    return "; ".join(checks) + "." if checks else ""


def kind_name(kind: str, lang="en") -> str:
    return tr(TEXT, lang, f"kind_{kind}") if f"kind_{kind}" in TEXT["en"] else kind


def gguf_check_lines(archive: Path, lang="en") -> list[str]:
    """The agreement of each GGUF with the merged model (gguf_check.json next to the files)."""
    check = archive.with_suffix("") / "gguf_check.json"
    if not check.is_file():
        return []
    return [tr(TEXT, lang, "gguf_check", gguf=c["gguf"], agreement=f"{c['top1_agreement']:.1%}",
               same=c["identical_greedy_replies"], prompts=c["prompts"], diff=c["max_abs_logit_diff"])
            for c in json.loads(check.read_text())]


def api_export(run_id, kind, dtype="auto"):
    """API: run id + adapter|merged|gguf (+ the merged model's dtype) -> the zip file (errors are raised so clients
    see them)."""
    try:
        return str(export_zip(run_id, (kind or "adapter").strip().lower(), (dtype or "auto").strip().lower()))
    except Exception as err:
        raise gr.Error(str(err)) from None


# ---- push to the Hub ---------------------------------------------------------------------------
def on_push(run_id, repo, kind, private, token, lang="en"):
    """Push through `python -m engine push`; fails fast (seconds) without a network."""
    try:
        run_dir = run_path(run_id)
        args = ["push", str(run_dir), "--repo", (repo or "").strip(), "--kind", kind or "adapter"]
        result = common.run_engine(*(args + (["--private"] if private else [])),
                                   extra_env={"HF_TOKEN": token.strip()} if (token or "").strip() else None)
        if result.returncode != 0:
            raise ValueError(common.cli_failure(result))  # the CLI's English words
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_push"), reason(err), lang)
    url = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else repo
    return note_box(tr(TEXT, lang, "pushed", url=url), "ok")


# ---- serve -------------------------------------------------------------------------------------
def serve_text(run_id, lang="en") -> str:
    """What the run's server is doing now, from RUN/serve.json."""
    try:
        status = serve_job.read(run_path(run_id))
    except ValueError:
        return ""
    state = status.get("state")
    if state == RunState.RUNNING:
        return tr(TEXT, lang, "serve_running", run=run_id, url=status["url"], model=status["model"],
                  note=messages.say(status.get("note_i18n") or status.get("note", ""), lang)) + "\n\n" + \
            client_snippet(status)
    if state == RunState.STARTING:
        return tr(TEXT, lang, "serve_starting", run=run_id, seconds=f"{time.time() - status.get('started_at', 0):.0f}")
    if state == RunState.FAILED:
        return error_box(tr(TEXT, lang, "serve_failed"), engine([messages.status_error(status)]), lang)
    return tr(TEXT, lang, "serve_stopped")


def client_snippet(status: dict) -> str:
    return ("```python\nfrom openai import OpenAI\n"
            f'client = OpenAI(base_url="{status["url"]}", api_key="none")\n'
            f'reply = client.chat.completions.create(model="{status["model"]}", messages=[{{"role": "user", '
            '"content": "Who are you?"}])\nprint(reply.choices[0].message.content)\n```')


def on_serve(run_id, lang="en"):
    """Start the run's server and follow it until it listens (or fails)."""
    try:
        run_dir = run_path(run_id)
        serve_job.start(run_dir)
    except Exception as err:
        yield error_box(tr(TEXT, lang, "cannot_serve"), reason(err), lang)
        return
    deadline = time.time() + SERVE_WAIT_S
    while serve_job.read(run_dir).get("state") == RunState.STARTING and time.time() < deadline:
        yield serve_text(run_id, lang)
        time.sleep(1)
    yield serve_text(run_id, lang)


def on_unserve(run_id, lang="en"):
    try:
        run_dir = run_path(run_id)
        serve_job.stop(run_dir)
    except Exception as err:
        yield error_box(tr(TEXT, lang, "cannot_unserve"), reason(err), lang)
        return
    yield note_box(tr(TEXT, lang, "serve_stopping", run=run_id))
    deadline = time.time() + 15
    while serve_job.read(run_dir).get("state") in serve_job.LIVE and time.time() < deadline:
        time.sleep(0.5)
    yield serve_text(run_id, lang)


# ---- the tab -----------------------------------------------------------------------------------
def run_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(run_label(r, lang), r["id"]) for r in common.finished_runs()]


def push_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, f"kind_{kind}"), kind) for kind in ("adapter", "merged")]


def refresh(current, lang="en"):
    """The run picker again (runs finish while the page is open), and what the chosen run's server does."""
    choices = run_choices(lang)
    values = [v for _, v in choices]
    chosen = current if current in values else (values[0] if values else None)
    return gr.update(choices=choices, value=chosen), serve_text(chosen, lang) if chosen else ""


def export_handler(kind: str):
    def handler(run_id, dtype, lang):
        yield from on_export(run_id, kind, dtype, lang)
    return handler


def build() -> SimpleNamespace:
    c = SimpleNamespace()
    with gr.Row():
        choices = run_choices()
        c.run = loc(gr.Dropdown(choices, value=choices[0][1] if choices else None, label=TEXT["en"]["run"],
                                elem_id="export-run", scale=4, info=TEXT["en"]["run_info"]), TEXT, label="run",
                    info="run_info", choices=run_choices)
        c.refresh = loc(gr.Button(TEXT["en"]["refresh"], scale=1, size="sm"), TEXT, value="refresh")
    loc(gr.Markdown(TEXT["en"]["help"], elem_classes="tl-help"), TEXT, value="help")
    with gr.Row():
        c.adapter = loc(gr.Button(TEXT["en"]["adapter"], variant="primary", elem_id="export-adapter"), TEXT,
                        value="adapter")
        c.merged = loc(gr.Button(TEXT["en"]["merged"], elem_id="export-merged"), TEXT, value="merged")
        c.gguf = loc(gr.Button(TEXT["en"]["gguf"], elem_id="export-gguf"), TEXT, value="gguf")
        c.dtype = loc(gr.Dropdown(list(DTYPES), value="auto", label=TEXT["en"]["dtype"], info=TEXT["en"]["dtype_info"],
                                  elem_id="export-dtype", scale=1), TEXT, label="dtype", info="dtype_info")
    loc(gr.Markdown(TEXT["en"]["gguf_help"], elem_classes="tl-help"), TEXT, value="gguf_help")
    c.progress = gr.HTML("", elem_id="export-progress")
    c.message = gr.Markdown("", elem_id="export-message")
    c.file = loc(gr.File(label=TEXT["en"]["download"], interactive=False, elem_id="export-file"), TEXT,
                 label="download")
    loc(gr.Markdown(TEXT["en"]["push_title"]), TEXT, value="push_title")
    with gr.Row():
        c.repo = loc(gr.Textbox("", label=TEXT["en"]["repo"], info=TEXT["en"]["repo_info"], elem_id="push-repo",
                                scale=2), TEXT, label="repo", info="repo_info")
        c.token = loc(gr.Textbox("", label=TEXT["en"]["token"], info=TEXT["en"]["token_info"], type="password",
                                 elem_id="push-token", scale=2), TEXT, label="token", info="token_info")
        c.push_kind = loc(gr.Radio(push_choices("en"), value="adapter", label=TEXT["en"]["push_kind"], scale=1),
                          TEXT, label="push_kind", choices=push_choices)
        c.private = loc(gr.Checkbox(True, label=TEXT["en"]["private"], scale=1), TEXT, label="private")
    c.push = loc(gr.Button(TEXT["en"]["push"], elem_id="push-hub"), TEXT, value="push")
    c.push_message = gr.Markdown("", elem_id="push-message")
    loc(gr.Markdown(TEXT["en"]["serve_title"]), TEXT, value="serve_title")
    with gr.Row():
        c.serve = loc(gr.Button(TEXT["en"]["serve"], elem_id="serve-start", scale=0), TEXT, value="serve")
        c.unserve = loc(gr.Button(TEXT["en"]["unserve"], elem_id="serve-stop", scale=0), TEXT, value="unserve")
    c.serve_status = gr.Markdown("", elem_id="serve-status")
    # the stable `export` API endpoint: hidden inputs so clients call it with (run id, kind)
    with gr.Row(visible=False):
        c.api_run = gr.Textbox()
        c.api_kind = gr.Textbox(value="adapter")
        c.api_dtype = gr.Textbox(value="auto")
        c.api_file = gr.File()
        c.api_button = gr.Button()
    return c


def wire(c: SimpleNamespace, lang) -> None:
    private = dict(api_visibility="private")
    c.refresh.click(refresh, [c.run, lang], [c.run, c.serve_status], **private)
    for button, kind in ((c.adapter, "adapter"), (c.merged, "merged"), (c.gguf, "gguf")):
        button.click(export_handler(kind), [c.run, c.dtype, lang], [c.message, c.progress, c.file], **private).then(
            None, None, None, js=DOWNLOAD_JS, **private)
    reword.follow_language(lang, c.message)  # the last export's message, in the new language
    c.push.click(on_push, [c.run, c.repo, c.push_kind, c.private, c.token, lang], c.push_message, **private)
    c.serve.click(on_serve, [c.run, lang], c.serve_status, **private)
    c.unserve.click(on_unserve, [c.run, lang], c.serve_status, **private)
    c.run.change(serve_text, [c.run, lang], c.serve_status, **private)
    lang.change(serve_text, [c.run, lang], c.serve_status, **private)  # the server's state, in the new language
    c.api_button.click(api_export, [c.api_run, c.api_kind, c.api_dtype], c.api_file, api_name="export",
                       api_description="Export a finished run: run id, 'adapter', 'merged' or 'gguf', and the merged "
                                       "model's dtype (auto | bf16 | fp16 | fp32) -> a zip file.")
