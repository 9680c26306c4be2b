"""Train tab: method and hyperparameters -> a RunConfig -> a trainer process; then follow it.

Controls come from declarations (the method's `Param`s, and `TRAIN_PARAMS` below for the
`train:` section), the config is validated by the one schema (`RunConfig.from_dict`), and the
run is followed only through its folder, so a page reload or a UI restart loses nothing.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine import launcher, runs
from engine.config import OPTIMIZERS, PRECISIONS, SCHEDULERS, ConfigError, RunConfig
from engine.registry import Param
from engine.workspace import PROJECT_ROOT
from ui import estimate_panel, follow, params
from ui.common import error_box, note_box, run_path
from ui.data_tab import parse_columns
from ui.lang import loc, tr

PRESET = PROJECT_ROOT / "presets" / "quickstart.yaml"
TICK_S = 1.0

# (section, declaration): the same Param type the methods use, so the same renderer draws them
TRAIN_PARAMS = (
    ("train", Param("learning_rate", float, 2e-4, "Step size: 1e-4 to 1e-3 for adapters, about 1e-5 for full "
                    "fine-tuning.", min=0.0, label="learning rate")),
    ("train", Param("max_steps", int, 0, "Optimizer steps to run; 0 trains for the number of epochs below.",
                    min=0, label="max steps")),
    ("train", Param("epochs", float, 1.0, "Passes over the data (used when max steps is 0).", min=0.0)),
    ("train", Param("batch_size", int, 4, "Examples per step; lower it if memory runs out.", min=1, max=4096,
                    label="batch size")),
    ("train", Param("gradient_accumulation", int, 1, "Steps whose gradients are summed before an update: a "
                    "bigger effective batch without more memory.", min=1, max=4096, label="gradient accumulation")),
    ("train", Param("max_seq_len", int, 512, "Longest example in tokens; longer ones are cut (examples left "
                    "with nothing to learn are dropped and counted).", min=16, label="max sequence length")),
    ("train", Param("warmup_steps", int, 0, "Steps over which the learning rate ramps up from 0.", min=0,
                    label="warmup steps")),
    ("train", Param("scheduler", str, "linear", "How the learning rate changes after warmup.", choices=SCHEDULERS)),
    ("data", Param("validation_split", float, 0.0, "Share of examples held out to measure eval loss (0 = none).",
                   min=0.0, max=0.5, label="validation split")),
    ("train", Param("precision", str, "auto", "auto picks bf16/fp16 on a GPU that supports it, fp32 on CPU.",
                    choices=PRECISIONS)),
    ("train", Param("optimizer", str, "adamw", "adamw suits almost everything; 8-bit variants save memory on "
                    "CUDA.", choices=OPTIMIZERS)),
    ("train", Param("seed", int, 0, "Same seed + same settings = the same run.", min=0)),
    ("train", Param("gradient_checkpointing", bool, False, "Recompute activations in backward: much less "
                    "memory, about 30% slower.", label="gradient checkpointing")),
)


TEXT = {
    "en": {
        "method": "Method", "method_info": "What gets trained. Each method shows its own settings below.",
        "name": "Run name", "name_info": "Used in the run folder's name.",
        "method_settings": "**Method settings**", "train_settings": "**Training settings**",
        "start": "Start training", "stop": "Stop (keeps the result so far)", "resume": "Resume",
        "run": "Run", "run_info": "The run shown below; new runs are followed automatically.",
        "loss": "Loss", "lr": "Learning rate", "log": "train.log (last lines)", "all_runs": "All runs",
        "need_attention": "{n} setting(s) need attention before training can start",
        "cannot_start": "Could not start the run",
        "started": "Started {run}. Loss points appear below once the model has loaded.",
        "cannot_stop": "Could not stop the run", "stopping": "Stopping {run}: the result is saved at the current step.",
        "cannot_resume": "Could not resume the run", "resuming": "Resuming {run} from its last checkpoint.",
        "failed": "{run} failed",
    },
    "zh": {
        "method": "方法", "method_info": "训练哪些参数。每种方法在下方显示自己的设置。",
        "name": "训练名称", "name_info": "用作训练文件夹名称的一部分。",
        "method_settings": "**方法设置**", "train_settings": "**训练设置**",
        "start": "开始训练", "stop": "停止（保留目前的结果）", "resume": "继续训练",
        "run": "训练", "run_info": "下方显示的训练；新开始的训练会自动跟随。",
        "loss": "损失", "lr": "学习率", "log": "train.log（最后几行）", "all_runs": "全部训练",
        "need_attention": "开始训练前有 {n} 项设置需要处理",
        "cannot_start": "无法开始训练",
        "started": "已开始 {run}。模型加载后，损失曲线会显示在下方。",
        "cannot_stop": "无法停止训练", "stopping": "正在停止 {run}：结果会保存在当前步。",
        "cannot_resume": "无法继续训练", "resuming": "正在从最后一个检查点继续 {run}。",
        "failed": "{run} 失败了",
    },
}
# Chinese label and help of the TRAIN_PARAMS declarations (English comes from the Param itself)
TRAIN_PARAM_ZH = {
    "learning_rate": ("学习率", "每步的更新幅度：适配器用 1e-4 到 1e-3，全量微调约 1e-5。"),
    "max_steps": ("最大步数", "要运行的优化步数；0 表示按下面的轮数训练。"),
    "epochs": ("轮数", "遍历数据的次数（最大步数为 0 时使用）。"),
    "batch_size": ("批大小", "每步的样例数；内存不够时调低。"),
    "gradient_accumulation": ("梯度累积", "累加这么多步的梯度后再更新一次：不增加内存就能得到更大的有效批。"),
    "max_seq_len": ("最大序列长度", "样例的最大词元数；更长的会被截断（截断后没有可学内容的样例会被丢弃并计数）。"),
    "warmup_steps": ("预热步数", "学习率从 0 逐渐升高所用的步数。"),
    "scheduler": ("学习率调度", "预热之后学习率如何变化。"),
    "validation_split": ("验证集比例", "留出用于计算评估损失的样例比例（0 表示不留）。"),
    "precision": ("精度", "auto 在支持的 GPU 上选 bf16/fp16，在 CPU 上用 fp32。"),
    "optimizer": ("优化器", "adamw 几乎适用于所有情况；8 位版本在 CUDA 上更省内存。"),
    "seed": ("随机种子", "相同的种子 + 相同的设置 = 相同的训练。"),
    "gradient_checkpointing": ("梯度检查点", "反向传播时重新计算激活：内存少很多，速度慢约 30%。"),
}
params.PARAM_ZH.update(TRAIN_PARAM_ZH)


def preset_defaults() -> RunConfig:
    """The quickstart preset: the values a first run should start from."""
    try:
        return RunConfig.load(PRESET)
    except Exception:  # a broken preset must not keep the page from coming up
        return RunConfig()


# ---- building and starting a run -------------------------------------------------------------
def build_raw(model, data_path, fmt, columns_text, mask, skip_bad, name, method, train_values,
              method_values) -> tuple[dict, list[str]]:
    """The config dict from the controls, plus problems the schema cannot see (empty fields)."""
    problems = []
    try:
        columns = parse_columns(columns_text)
    except ValueError as err:
        columns, problems = {}, [f"data.columns: {err}"]
    raw = {"model": (model or "").strip(), "name": (name or "").strip(),
           "data": {"train": data_path or "", "format": fmt, "mask": mask, "columns": columns,
                    "skip_bad_rows": bool(skip_bad)},
           "method": {"name": method, **method_values}, "train": {}}
    for (section, param), value in zip(TRAIN_PARAMS, train_values):
        if value is None or value == "":
            problems.append(f"{section}.{param.name}: empty; enter a value")
            continue
        raw[section][param.name] = value
    raw["method"] = {k: v for k, v in raw["method"].items() if v is not None}
    return raw, problems


def start_config(raw: dict, problems: list[str] | None = None) -> Path:
    """Validate (every problem at once) and launch; raises ConfigError."""
    from engine.preflight import static_problems  # import-light: config.json and file checks

    problems = list(problems or [])
    try:
        cfg = RunConfig.from_dict(raw, "settings")
    except ConfigError as err:
        # the launcher's own checks (data file, model limit) only run on a valid config: add them now
        problems += err.problems + [p for p in static_problems(raw) if p not in err.problems]
    if problems:
        raise ConfigError(problems, "settings")
    return launcher.start(cfg)


def on_start(controls, model, data_path, fmt, columns_text, mask, skip_bad, name, method, lang, *values):
    train_values, method_values = values[:len(TRAIN_PARAMS)], values[len(TRAIN_PARAMS):]
    raw, problems = build_raw(model, data_path, fmt, columns_text, mask, skip_bad, name, method, train_values,
                              params.values_for(controls, method, list(method_values)))
    try:
        run_dir = start_config(raw, problems)
    except ConfigError as err:
        return error_box(tr(TEXT, lang, "need_attention", n=len(err.problems)), err.problems), gr.skip()
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_start"), f"{type(err).__name__}: {err}"), gr.skip()
    ids = [r["id"] for r in runs.list_runs()]
    return note_box(tr(TEXT, lang, "started", run=run_dir.name), "ok"), gr.update(choices=ids, value=run_dir.name)


def on_stop(run_id, lang="en"):
    try:
        launcher.stop(run_path(run_id))
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_stop"), str(err))
    return note_box(tr(TEXT, lang, "stopping", run=run_id))


def on_resume(run_id, lang="en"):
    try:
        launcher.resume(run_path(run_id))
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_resume"), str(err))
    return note_box(tr(TEXT, lang, "resuming", run=run_id), "ok")


# ---- following runs --------------------------------------------------------------------------
def runs_table(listing: list[dict]) -> dict:
    headers = ["run", "state", "step", "final loss", "error"]
    data = [[r["id"], r["state"], f"{r['step'] or 0}/{r['max_steps'] or '?'}",
             f"{r['final_loss']:.4f}" if isinstance(r.get("final_loss"), (int, float)) else "",
             (r.get("error") or "")[:120]] for r in listing]
    return {"headers": headers, "data": data or [["(no runs yet)", "", "", "", ""]]}


def pick_on_load():
    """After a page load or a UI restart: follow a run that is still going, else the newest one."""
    listing = runs.list_runs()
    active = [r for r in listing if r["state"] in runs.ACTIVE]
    chosen = (active or listing or [{"id": None}])[0]["id"]
    return gr.update(choices=[r["id"] for r in listing], value=chosen), runs_table(listing)


def tick(run_id, seen, lang="en"):
    """One timer tick: re-send only what changed since this browser's last tick (gr.skip() otherwise)."""
    seen = dict(seen or {})
    skip = gr.skip()
    listing = runs.list_runs()
    signature = [(r["id"], r["state"], r["step"]) for r in listing]
    table = runs_table(listing) if signature != seen.get("runs") else skip
    ids = [r["id"] for r in listing]
    choices = gr.update(choices=ids) if ids != seen.get("ids") else skip
    seen.update(runs=signature, ids=ids)
    try:
        run_dir = run_path(run_id) if run_id else None
    except ValueError:
        run_dir = None
    if run_dir is None:
        blank = (seen.get("run") is not None)
        seen["run"] = None
        outs = ("", follow.EMPTY_LOSS, follow.EMPTY_LR, "", "", "", gr.update(interactive=False),
                gr.update(interactive=False)) if blank else (skip,) * 8
        return (choices, table, *outs, seen)

    status = runs.read_status(run_dir)
    rows = follow.metrics(run_dir)
    log = runs.log_tail(run_dir, 12)
    key = [run_id, lang, len(rows), status.get("state"), status.get("step"), status.get("updated_at")]
    if key == seen.get("key") and log == seen.get("log"):
        return (choices, table, *(skip,) * 8, seen)
    fresh = run_id != seen.get("run") or len(rows) != seen.get("rows")
    seen.update(run=run_id, key=key, log=log, rows=len(rows))
    state = status.get("state")
    failure = follow.failure_lines(status) if state == "failed" else []
    resumable = state == "failed" or bool(status.get("stopped_early"))
    return (choices, table, follow.progress_html(status),
            follow.loss_frame(rows) if fresh else skip, follow.lr_frame(rows) if fresh else skip,
            follow.numbers_markdown(rows, status),
            error_box(tr(TEXT, lang, "failed", run=run_id), failure) if failure else "",
            log, gr.update(interactive=state in runs.ACTIVE), gr.update(interactive=resumable), seen)


def on_table_select(evt: gr.SelectData):
    row = getattr(evt, "row_value", None) or []
    return row[0] if row and row[0] and not str(row[0]).startswith("(") else gr.skip()


# ---- layout ----------------------------------------------------------------------------------
def build(defaults: RunConfig) -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    with gr.Row():
        c.method = loc(gr.Dropdown(params.method_choices(), value=defaults.method.name, label=en["method"], scale=3,
                                   info=en["method_info"]), TEXT, label="method", info="method_info",
                       choices=params.method_choices)
        c.name = loc(gr.Textbox(defaults.name, label=en["name"], elem_id="run-name", scale=1, info=en["name_info"]),
                     TEXT, label="name", info="name_info")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            loc(gr.Markdown(en["method_settings"]), TEXT, value="method_settings")
            c.method_controls = params.build(defaults.method.name, defaults.method.params)
        with gr.Column(scale=3, min_width=420):
            loc(gr.Markdown(en["train_settings"]), TEXT, value="train_settings")
            c.train_inputs = []
            with gr.Row():
                for i in range(0, len(TRAIN_PARAMS), 5):
                    with gr.Column(min_width=200):
                        for section, param in TRAIN_PARAMS[i:i + 5]:
                            value = getattr(getattr(defaults, section), param.name)
                            c.train_inputs.append(params.component(param, value, elem_id=f"{section}-{param.name}"))
    c.estimate = estimate_panel.build(defaults.to_dict())
    with gr.Row():
        c.start = loc(gr.Button(en["start"], variant="primary", scale=2, elem_id="start"), TEXT, value="start")
        c.stop = loc(gr.Button(en["stop"], variant="stop", interactive=False, scale=1), TEXT, value="stop")
        c.resume = loc(gr.Button(en["resume"], interactive=False, scale=1), TEXT, value="resume")
    c.message = gr.Markdown("", elem_id="train-message")
    with gr.Group():
        c.follow = loc(gr.Dropdown([], value=None, label=en["run"], info=en["run_info"], allow_custom_value=False),
                       TEXT, label="run", info="run_info")
        c.progress = gr.HTML("", elem_id="progress")
    c.failure = gr.Markdown("")
    with gr.Row():
        c.loss_plot = loc(gr.LinePlot(follow.EMPTY_LOSS, x="step", y="loss", color="series", title=en["loss"],
                                      elem_id="loss-plot", height=280,
                                      color_map={"train loss": "#2563eb", "eval loss": "#f97316"}),
                          TEXT, title="loss")
        c.lr_plot = loc(gr.LinePlot(follow.EMPTY_LR, x="step", y="learning rate", title=en["lr"], height=280),
                        TEXT, title="lr")
    c.numbers = gr.Markdown("")
    c.log = loc(gr.Textbox("", label=en["log"], lines=12, max_lines=12, autoscroll=True, interactive=False),
                TEXT, label="log")
    with gr.Accordion(en["all_runs"], open=True) as c.all_runs:
        c.runs = gr.Dataframe(runs_table([]), interactive=False, wrap=True, max_height=260)
    loc(c.all_runs, TEXT, label="all_runs")
    c.seen = gr.State({})
    c.timer = gr.Timer(TICK_S)
    return c


def wire(c: SimpleNamespace, model, data, lang) -> None:
    private = dict(api_visibility="private")
    c.method.change(lambda m: params.show(c.method_controls, m), c.method,
                    list(c.method_controls.groups.values()), **private)
    c.start.click(lambda *values: on_start(c.method_controls, *values), [model, data.path, data.format, data.columns, data.mask, data.skip_bad, c.name,
                             c.method, lang, *c.train_inputs, *c.method_controls.inputs], [c.message, c.follow],
                  concurrency_limit=1, **private)
    c.stop.click(on_stop, [c.follow, lang], c.message, **private)
    c.resume.click(on_resume, [c.follow, lang], c.message, **private)
    c.runs.select(on_table_select, None, c.follow, **private)
    settings = [model, data.path, data.format, data.columns, data.mask, data.skip_bad, c.name, c.method, lang,
                *c.train_inputs, *c.method_controls.inputs]
    panel = c.estimate
    gr.on([x.change for x in (model, c.method, lang, *c.train_inputs, *c.method_controls.inputs)],
          lambda *values: on_estimate(c, *values), settings,
          [panel.bar, panel.options_note, *panel.buttons, panel.options], show_progress="hidden",
          trigger_mode="always_last", **private)
    for index, button in enumerate(panel.buttons):
        button.click(lambda options, i=index: apply_option(c, options, i), panel.options,
                     [*c.train_inputs, c.method, *c.method_controls.inputs], **private)
    c.timer.tick(tick, [c.follow, c.seen, lang],
                 [c.follow, c.runs, c.progress, c.loss_plot, c.lr_plot, c.numbers, c.failure, c.log, c.stop,
                  c.resume, c.seen], show_progress="hidden", concurrency_limit=None, **private)


def on_estimate(c: SimpleNamespace, model, data_path, fmt, columns_text, mask, skip_bad, name, method, lang,
                *values) -> list:
    """Re-estimate memory for the settings on the page (pure arithmetic on config.json)."""
    train_values, method_values = values[:len(TRAIN_PARAMS)], values[len(TRAIN_PARAMS):]
    raw, _ = build_raw(model, data_path, fmt, columns_text, mask, skip_bad, name, method, train_values,
                       params.values_for(c.method_controls, method, list(method_values)))
    return estimate_panel.update(c.estimate, raw, lang)


def apply_option(c: SimpleNamespace, options: list, index: int) -> list:
    """Set the controls to one of the estimate's cheaper settings."""
    if index >= len(options):
        return [gr.skip()] * (len(c.train_inputs) + 1 + len(c.method_controls.inputs))
    flat, method = estimate_panel.flatten(options[index]["overrides"])
    train = [gr.update(value=flat[f"{section}.{p.name}"]) if f"{section}.{p.name}" in flat else gr.skip()
             for section, p in TRAIN_PARAMS]
    if not method:
        return train + [gr.skip()] + [gr.skip()] * len(c.method_controls.inputs)
    controls = [gr.update(value=method[name]) if key == method["name"] and name in method else gr.skip()
                for key, name in c.method_controls.keys]
    return train + [gr.update(value=method["name"])] + controls


def max_seq_len_input(c: SimpleNamespace):
    """The Data tab previews with the same max_seq_len the run will use."""
    return c.train_inputs[[p.name for _, p in TRAIN_PARAMS].index("max_seq_len")]
