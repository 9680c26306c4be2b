"""Evaluate tab: a run (or its base model) on held-out data -> eval loss, perplexity, answers vs references.

The evaluation is a background process (`python -m engine evaluate`, engine/evaluation/evaluate.py) with
its progress in RUN/eval/status.json, followed here on a timer: closing the page loses
nothing, and every result is saved in the run folder and listed with it.
"""
from __future__ import annotations

import html
import time
from types import SimpleNamespace

import gradio as gr

from engine.core import runs
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.core.workspace import PROJECT_ROOT, data_display_name
from engine.evaluation import records
from ui import follow, judge_panel, messages, reword
from ui.common import engine, error_box, finished_runs, progress_bar, reason, run_label, run_path
from ui.data_tab import SAMPLES_DIR, UPLOAD_TYPES, uploaded_files
from ui.lang import loc, tr
from ui.reword import said

TICK_S = 1.0
NO_RESULTS = {"headers": ["—"], "data": [[""]]}

TEXT = {
    "en": {
        "run": "Run", "run_info": "A finished run; its results are saved in its folder (eval/).",
        "refresh": "↻ Refresh",
        "which": "Model", "which_info": "The run's result, or its base model before training (to see what changed).",
        "result": "this run's result", "base": "its base model",
        "data": "Held-out data",
        "data_info": "The run's validation split (cut exactly as in training), or a file uploaded in the Data tab "
                     "or a bundled sample.",
        "split": "the run's validation split", "uploaded": "{name} (uploaded {date})", "sample": "{name} (sample)",
        "samples": "Examples to generate", "samples_info": "Answers generated and scored against the references.",
        "max_new_tokens": "Max new tokens per answer", "max_new_tokens_info": "Longest generated answer.",
        "start": "Evaluate", "saved": "Saved evaluations of this run",
        "answers": "Generated answers next to the references",
        "pick": "Pick a finished run to evaluate.",
        "started": "Evaluation of {run} started in the background; you can close the page.",
        "failed_start": "Could not start the evaluation",
        "failed": "The evaluation failed",
        "state": "{state}", "phase": "{phase}",
        "numbers": "**{model}** on **{kind}** data ({examples} examples, {tokens} trained tokens): eval loss "
                   "**{loss}** · perplexity **{ppl}** · ROUGE-L **{rouge}** · BLEU **{bleu}** · {seconds} s",
        "none": "No evaluation of this run yet.",
        "cols": "file|model|data|eval loss|perplexity|ROUGE-L|BLEU",
        "sample_cols": "example|prompt|reference|generated|ROUGE-L|BLEU",
        "model_run": "run", "model_base": "base", "kind_validation": "validation", "kind_file": "file",
        "kind_train": "train", "empty": "(empty)",
    },
    "zh": {
        "run": "训练", "run_info": "已完成的训练；评估结果保存在它的文件夹（eval/）中。",
        "refresh": "↻ 刷新",
        "which": "模型", "which_info": "训练结果，或训练前的基础模型（用来看训练带来了什么变化）。",
        "result": "本次训练的结果", "base": "它的基础模型",
        "data": "留出数据",
        "data_info": "该训练的验证集（切分方式与训练时完全一致），或在“数据”页上传的文件、自带的示例。",
        "split": "该训练的验证集", "uploaded": "{name}（上传于 {date}）", "sample": "{name}（示例）",
        "samples": "生成的样例数", "samples_info": "生成回答并与参考答案比对打分。",
        "max_new_tokens": "每个回答最多的词元数", "max_new_tokens_info": "生成回答的最大长度。",
        "start": "开始评估", "saved": "该训练已保存的评估",
        "answers": "生成的回答与参考答案对照",
        "pick": "请选择一个已完成的训练来评估。",
        "started": "{run} 的评估已在后台开始；可以关闭页面。",
        "failed_start": "无法开始评估",
        "failed": "评估失败",
        "state": "{state}", "phase": "{phase}",
        "numbers": "**{model}** 在 **{kind}** 数据上（{examples} 个样例，{tokens} 个训练词元）：评估损失 "
                   "**{loss}** · 困惑度 **{ppl}** · ROUGE-L **{rouge}** · BLEU **{bleu}** · {seconds} 秒",
        "none": "该训练还没有评估结果。",
        "cols": "文件|模型|数据|评估损失|困惑度|ROUGE-L|BLEU",
        "sample_cols": "样例|提示|参考答案|生成的回答|ROUGE-L|BLEU",
        "model_run": "训练结果", "model_base": "基础模型", "kind_validation": "验证集", "kind_file": "文件",
        "kind_train": "训练集", "empty": "（空）",
    },
}


def run_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(run_label(r, lang), r["id"]) for r in finished_runs()]


def which_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, "result"), "run"), (tr(TEXT, lang, "base"), "base")]


def _word(lang, prefix: str, value) -> str:
    """A model ("run"/"base") or data kind ("validation"/"file"/"train") of a result, in the page's language."""
    key = f"{prefix}_{value}"
    return tr(TEXT, lang, key) if key in TEXT["en"] else str(value or "")


def data_choices(lang="en") -> list[tuple[str, str]]:
    """What a run can be evaluated on: its validation split (""), the workspace's uploads, the presets' data."""
    import time

    choices = [(tr(TEXT, lang, "split"), "")]
    for path in uploaded_files():
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        choices.append((tr(TEXT, lang, "uploaded", name=data_display_name(path), date=date), str(path)))
    for path in sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in UPLOAD_TYPES):
        choices.append((tr(TEXT, lang, "sample", name=path.name), str(path.relative_to(PROJECT_ROOT))))
    return choices


def resolve_data(data: str | None) -> str | None:
    """A data choice from the page or the API (a listed path, or a listed file's name) -> the path; None for the
    validation split. Nothing outside the uploads and the presets' data is accepted (ValueError)."""
    data = (data or "").strip()
    if not data:
        return None
    values = [value for _, value in data_choices() if value]
    if data in values:
        return data
    named = [value for value in values if value.rsplit("/", 1)[-1] == data]
    if len(named) == 1:
        return named[0]
    if named:
        raise ValueError(Message("eval.ambiguous_data", count=len(named), name=data, paths=", ".join(named)))
    raise ValueError(Message("eval.unknown_data", name=data, files=", ".join(v.rsplit("/", 1)[-1] for v in values)))


def start_evaluation(run_id, data, samples, base: bool, max_new_tokens, judge: dict | None = None) -> None:
    """Start an evaluation in the background (Evaluate and the API's /evaluate); ValueError says why not.
    `judge`: also grade the answers (ui/judge_panel.py judge_choice)."""
    try:
        records.spawn(run_path(run_id), resolve_data(data), int(samples or 0), base=bool(base),
                      max_new_tokens=int(max_new_tokens or records.DEFAULT_MAX_NEW_TOKENS), judge=judge)
    except RuntimeError as err:  # one already running
        raise ValueError(reason(err)) from None


def _num(value, places: int = 4) -> str:
    return "–" if value is None else f"{value:,.{places}f}"


def progress_html(status: dict, lang="en") -> str:
    state = status.get("state") or ""
    if not state:
        return ""
    done, total = status.get("done") or 0, status.get("total") or 0
    fraction = min(1.0, done / total) if total else (1.0 if state == RunState.DONE else 0.0)
    phase = status.get("phase") if status.get("phase") != state else ""  # "done · done" says it once
    text = " · ".join(p for p in (f"<b>{html.escape(follow.state_name(state, lang))}</b>",
                                  html.escape(follow.state_name(phase or "", lang)),
                                  f"{done}/{total or '?'}", f"{fraction:.0%}") if p)
    return progress_bar(fraction, state, text)


def results_table(results: list[dict], lang="en") -> dict:
    if not results:
        return NO_RESULTS
    headers = tr(TEXT, lang, "cols").split("|")
    data = [[r["file"], _word(lang, "model", r.get("model", "")),
             f"{_word(lang, 'kind', r.get('data', {}).get('kind', ''))} ({r.get('data', {}).get('examples', '?')})",
             _num(r.get("eval_loss")), _num(r.get("perplexity"), 2), _num(r.get("rouge_l")), _num(r.get("bleu"))]
            for r in results]
    return {"headers": headers, "data": data}


def samples_table(result: dict | None, lang="en") -> dict:
    rows = (result or {}).get("samples") or []
    if not rows:
        return NO_RESULTS
    judged = bool(judge_panel.extra_headers(result))  # a judged evaluation: each example's verdict and reasons
    return {"headers": tr(TEXT, lang, "sample_cols").split("|") + judge_panel.extra_headers(result, lang),
            "data": [[messages.where(r["where"], lang), r["prompt"], r["reference"],
                      r["generated"] or tr(TEXT, lang, "empty"), f"{r['rouge_l']:.3f}",
                      f"{r['bleu']:.3f}"] + (judge_panel.verdict_cells(r, lang) if judged else []) for r in rows]}


def numbers_markdown(result: dict | None, lang="en") -> str:
    if not result:
        return tr(TEXT, lang, "none")
    data = result.get("data", {})
    text = tr(TEXT, lang, "numbers", model=_word(lang, "model", result.get("model")),
              kind=_word(lang, "kind", data.get("kind")), examples=data.get("examples"),
              tokens=result.get("trained_tokens"), loss=_num(result.get("eval_loss")),
              ppl=_num(result.get("perplexity"), 2), rouge=_num(result.get("rouge_l")), bleu=_num(result.get("bleu")),
              seconds=result.get("seconds"))
    note = messages.say(data.get("note_i18n") or data["note"], lang) if data.get("note") else ""
    judged = judge_panel.summary(result.get("judge"), lang)
    return text + (f"\n\n{judged}" if judged else "") + (f"\n\n_{note}_" if note else "")


def show_run(run_id, lang="en"):
    """(progress, numbers, samples, saved table) for a run, from its folder."""
    try:
        run_dir = run_path(run_id)
    except ValueError:
        return "", tr(TEXT, lang, "pick"), NO_RESULTS, NO_RESULTS
    results = records.list_results(run_dir)
    latest = results[0] if results else None
    return progress_html(records.read_eval_status(run_dir), lang), numbers_markdown(latest, lang), \
        samples_table(latest, lang), results_table(results, lang)


def on_start(run_id, which, data_file, samples, max_new_tokens, judge, judge_mode, judge_model, lang="en"):
    try:
        start_evaluation(run_id, data_file, samples, which == "base", max_new_tokens,
                         judge_panel.judge_choice(judge, judge_mode, judge_model))
    except Exception as err:
        return reword.error(lang, said(__name__, "failed_start"), reason(err))
    return reword.note("ok", lang, said(__name__, "started", run=run_id))


def tick(run_id, seen, lang="en"):
    """Redraw only when the run's evaluation status (or the language) changed."""
    seen = dict(seen or {})
    try:
        run_dir = run_path(run_id)
    except ValueError:
        return (gr.skip(),) * 5 + (seen,)
    status = records.read_eval_status(run_dir)
    key = [run_id, lang, status.get("state"), status.get("done"), status.get("result"), status.get("updated_at")]
    if key == seen.get("key"):
        return (gr.skip(),) * 5 + (seen,)
    seen["key"] = key
    failure = error_box(tr(TEXT, lang, "failed"), engine([messages.status_error(status)]), lang) \
        if status.get("state") == RunState.FAILED else ""
    return (*show_run(run_id, lang), failure, seen)


def select_result(evt: gr.SelectData, run_id, lang="en"):
    row = getattr(evt, "row_value", None) or []
    try:
        result = next(r for r in records.list_results(run_path(run_id)) if r["file"] == row[0])
    except (StopIteration, ValueError, IndexError):
        return gr.skip(), gr.skip()
    return numbers_markdown(result, lang), samples_table(result, lang)


def refresh(current, data=None, lang="en"):
    """The run and data pickers again (runs finish and files are uploaded while the page is open)."""
    choices = run_choices(lang)
    values = [v for _, v in choices]
    files = data_choices(lang)
    return gr.update(choices=choices, value=current if current in values else (values[0] if values else None)), \
        gr.update(choices=files, value=data if data in [v for _, v in files] else "")


def build() -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    choices = run_choices()
    with gr.Row():
        c.run = loc(gr.Dropdown(choices, value=choices[0][1] if choices else None, label=en["run"], info=en["run_info"],
                                elem_id="eval-run", scale=3), TEXT, label="run", info="run_info", choices=run_choices)
        c.which = loc(gr.Radio(which_choices("en"), value="run", label=en["which"],
                               info=en["which_info"], scale=2), TEXT, label="which", info="which_info",
                      choices=which_choices)
        c.refresh = loc(gr.Button(en["refresh"], scale=0, size="sm"), TEXT, value="refresh")
    with gr.Row():
        c.data = loc(gr.Dropdown(data_choices(), value="", label=en["data"], info=en["data_info"], scale=3,
                                 elem_id="eval-data"), TEXT, label="data", info="data_info", choices=data_choices)
        c.samples = loc(gr.Slider(0, 50, value=records.DEFAULT_SAMPLES, step=1, label=en["samples"],
                                  info=en["samples_info"],
                                  elem_id="eval-samples"), TEXT, label="samples", info="samples_info")
        c.max_new_tokens = loc(gr.Number(records.DEFAULT_MAX_NEW_TOKENS, precision=0, minimum=1, maximum=2048,
                                         label=en["max_new_tokens"],
                                         info=en["max_new_tokens_info"], elem_id="eval-max-new-tokens"),
                               TEXT, label="max_new_tokens", info="max_new_tokens_info")
    c.judge = judge_panel.build()
    c.start = loc(gr.Button(en["start"], variant="primary", elem_id="eval-start"), TEXT, value="start")
    c.message = gr.Markdown("", elem_id="eval-message")
    c.progress = gr.HTML("", elem_id="eval-progress")
    c.failure = gr.Markdown("")
    c.numbers = gr.Markdown("", elem_id="eval-numbers")
    c.samples_table = loc(gr.Dataframe(NO_RESULTS, label=en["answers"], interactive=False, wrap=True, max_height=360,
                                       elem_id="eval-samples-table"), TEXT, label="answers")
    c.saved = loc(gr.Dataframe(NO_RESULTS, label=en["saved"], interactive=False, max_height=220, elem_id="eval-saved"),
                  TEXT, label="saved")
    c.seen = gr.State({})
    c.timer = gr.Timer(TICK_S, active=False)  # ticks while the tab is shown (ui/app.py tick_on_shown_tab)
    return c


def wire(c: SimpleNamespace, lang, shown: gr.Tab) -> None:
    private = dict(api_visibility="private")
    c.start.click(on_start, [c.run, c.which, c.data, c.samples, c.max_new_tokens, c.judge.judge, c.judge.mode,
                             c.judge.model, lang], c.message, **private)
    reword.follow_language(lang, c.message)
    c.refresh.click(refresh, [c.run, c.data, lang], [c.run, c.data], **private)
    c.run.change(show_run, [c.run, lang], [c.progress, c.numbers, c.samples_table, c.saved], **private)
    c.saved.select(select_result, [c.run, lang], [c.numbers, c.samples_table], **private)
    # on the timer, and at once when the tab is shown (its timer is off while it is hidden)
    gr.on([c.timer.tick, shown.select], tick, [c.run, c.seen, lang],
          [c.progress, c.numbers, c.samples_table, c.saved, c.failure, c.seen], show_progress="hidden",
          concurrency_limit=None, **private)


EVALUATION_TIMEOUT_S = 3600  # an API client's wait for its evaluation


def wait_for_evaluation(run_id: str) -> dict:
    """The result of the evaluation of `run_id` just started (the API's /evaluate and its judged one)."""
    run_dir, started = run_path(run_id), time.time()
    while time.time() - started < EVALUATION_TIMEOUT_S:
        status = records.read_eval_status(run_dir)
        if status.get("state") == RunState.FAILED:
            raise gr.Error(status.get("error") or "the evaluation failed")
        if status.get("state") == RunState.DONE:
            result = runs.read_json(run_dir / records.EVAL_DIR / status["result"]) if status.get("result") else None
            return result or {}
        time.sleep(0.5)
    raise gr.Error(f"the evaluation of {run_id} did not finish within {EVALUATION_TIMEOUT_S} s; it goes on "
                   "in the background (see the Evaluate tab)")
