"""Sweep & merge tab: search settings with Optuna (each trial an ordinary run), and merge finished runs.

The sweep is a background process (`python -m engine sweep --resume SWEEP`, engine/sweep/) writing its folder
(sweep.json, status.json): this tab starts, stops and resumes it and follows the folder on a timer, so closing
the page loses nothing. Merging runs `python -m engine merge` in a child process (no torch here); refusals
(different bases, methods that cannot be merged that way) are shown before it starts.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from engine.core.config import ConfigError
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.core.security import web_config_problems
from engine.core.workspace import PROJECT_ROOT, inside
from engine.inference.merge_runs import HOWS, NEEDS_DENSITY, merge_problems
from engine.sweep import folder as sf
from ui import follow
from ui.common import cli_failure, engine, error_box, finished_runs, note_box, reason, run_engine, run_label
from ui.lang import loc, tr

TICK_S = 2.0
EMPTY = {"headers": ["—"], "data": [[""]]}
DEFAULT_SPACE = "train.learning_rate=1e-4:3e-3:log\nmethod.r=4,8,16"

TEXT = {
    "en": {
        "sweep_title": "### Sweep: find the best settings",
        "config": "Start from", "config_info": "A preset, or a finished run's settings; every trial starts from it.",
        "sets": "Also set (one KEY=VALUE per line)", "sets_info": "e.g. train.max_steps=30 for short trials.",
        "space": "Search space (one per line)",
        "space_info": "KEY=LOW:HIGH, KEY=LOW:HIGH:log, or KEY=A,B,C; KEY is a setting such as train.learning_rate "
                      "or method.r.",
        "trials": "Trials", "sampler": "Sampler", "metric": "Metric",
        "sampler_info": "tpe: learns from earlier trials; random; grid: every combination of the listed values.",
        "metric_info": "What the trials are ranked by, at each run's last evaluation; trials worse than the median "
                       "at an eval step are stopped early (pruned).",
        "name": "Sweep name", "start": "Start sweep", "stop": "Stop", "resume": "Resume",
        "sweep": "Sweep", "refresh": "↻ Refresh", "longer": "Train the best longer (2× steps)",
        "started": "Sweep {sweep} started in the background; you can close the page.",
        "stopping": "Stopping {sweep}: its current trial saves a checkpoint; Resume continues there.",
        "resumed": "Sweep {sweep} resumes in the background.",
        "longer_started": "Run {run} trains the best settings for twice the steps (Train tab).",
        "failed": "Could not do that", "pick": "Pick a sweep, or start one above.",
        "summary": "**{sweep}** · {state} · {done}/{target} trials · metric {metric} ({direction}) · sampler "
                   "{sampler}{best}",
        "best": " · best: trial {number}, {metric} **{value:.4f}** ({params})",
        "cols": "trial|state|metric|run|settings", "plot": "Metric against a searched setting",
        "axis": "Setting on the x axis", "value": "value", "process_failed": "The sweep process failed",
        "minimize": "lower is better", "maximize": "higher is better",
        "merge_title": "### Merge runs of one base model (adapters with peft, full-weight runs with mergekit)",
        "runs": "Runs to merge", "runs_info": "Two or more finished runs on the same base model: LoRA / IA3 "
                                              "adapters, or full-weight runs (full, freeze, layer-wise; BitFit "
                                              "where the base model has its biases already).",
        "how": "How", "how_info": "TIES and DARE keep each run's strongest changes (density) and resolve sign "
                                  "conflicts; linear averages; cat stacks LoRA ranks; slerp (two full-weight runs) "
                                  "interpolates between them: the second weight's share is t (0 = the first run).",
        "weights": "Weights", "weights_info": "One per run, comma-separated (empty: equal); for full-weight runs "
                                                "mergekit divides them by their sum.",
        "density": "Density", "density_info": "TIES / DARE / magnitude prune: share of each run's changes kept.",
        "merge_name": "Name of the merged run", "merge": "Merge",
        "merged": "Merged into run {run}: Chat, Evaluate, Export and serve take it like any run.",
        "merge_refused": "These runs cannot be merged this way", "merge_failed": "The merge failed",
    },
    "zh": {
        "sweep_title": "### 超参数搜索：找出最好的设置",
        "config": "起点", "config_info": "一个预设，或某个已完成训练的设置；每次试验都从它开始。",
        "sets": "另外设置（每行一个 KEY=VALUE）", "sets_info": "例如 train.max_steps=30，让每次试验短一些。",
        "space": "搜索空间（每行一个）",
        "space_info": "KEY=下限:上限、KEY=下限:上限:log，或 KEY=A,B,C；KEY 是一个设置，如 train.learning_rate "
                      "或 method.r。",
        "trials": "试验次数", "sampler": "采样器", "metric": "指标",
        "sampler_info": "tpe：从之前的试验中学习；random：随机；grid：列出的取值的所有组合。",
        "metric_info": "按每次训练最后一次评估的该指标排序；在某个评估步比中位数差的试验会被提前停止（剪枝）。",
        "name": "搜索名称", "start": "开始搜索", "stop": "停止", "resume": "继续",
        "sweep": "搜索", "refresh": "↻ 刷新", "longer": "用最佳设置训练更久（2 倍步数）",
        "started": "搜索 {sweep} 已在后台开始；可以关闭页面。",
        "stopping": "正在停止 {sweep}：当前试验会保存检查点；“继续”会从那里接着训练。",
        "resumed": "搜索 {sweep} 在后台继续。",
        "longer_started": "训练 {run} 以两倍步数训练最佳设置（见“训练”页）。",
        "failed": "无法执行", "pick": "请选择一个搜索，或在上方开始一个。",
        "summary": "**{sweep}** · {state} · {done}/{target} 次试验 · 指标 {metric}（{direction}）· "
                   "采样器 {sampler}{best}",
        "best": " · 最佳：试验 {number}，{metric} **{value:.4f}**（{params}）",
        "cols": "试验|状态|指标|训练|设置", "plot": "指标与某个搜索设置的关系",
        "axis": "横轴上的设置", "value": "取值", "process_failed": "搜索进程失败",
        "minimize": "越低越好", "maximize": "越高越好",
        "merge_title": "### 合并同一基础模型上的训练（适配器用 peft，全量权重用 mergekit）",
        "runs": "要合并的训练", "runs_info": "两个或更多在同一基础模型上完成的训练：LoRA / IA3 适配器，或全量权重的训练"
                                        "（full、freeze、逐层解冻；BitFit 仅限基础模型本来就有这些偏置时）。",
        "how": "方式",
        "how_info": "TIES 与 DARE 保留每个训练中最强的改变（密度）并解决符号冲突；linear 取平均；cat 拼接 LoRA 的秩；"
                    "slerp（两个全量权重的训练）在两者之间插值：第二个权重所占的比例为 t（0 即第一个训练）。",
        "weights": "权重",
        "weights_info": "每个训练一个，用逗号分隔（留空：相等）；全量权重的训练由 mergekit 按总和归一。",
        "density": "密度", "density_info": "TIES / DARE / 幅度剪枝：每个训练保留的改变比例。",
        "merge_name": "合并后训练的名称", "merge": "合并",
        "merged": "已合并为训练 {run}：对话、评估、导出和服务都可以像普通训练一样使用它。",
        "merge_refused": "这些训练不能以这种方式合并", "merge_failed": "合并失败",
    },
}
STATE_ZH = {"complete": "完成", "pruned": "已剪枝", "fail": "失败", "running": "运行中", "waiting": "等待中"}


# ---- choices -----------------------------------------------------------------------------------------
def config_choices(lang="en") -> list[tuple[str, str]]:
    presets = [(p.name, str(p.relative_to(PROJECT_ROOT))) for p in sorted((PROJECT_ROOT / "presets").glob("*.yaml"))]
    return presets + [(run_label(r, lang), str(Path(r["path"]) / "config.yaml")) for r in finished_runs()]


def sweep_choices() -> list[str]:
    return [s["id"] for s in sf.list_sweeps()]


def merge_run_choices(lang="en") -> list[tuple[str, str]]:
    return [(run_label(r, lang), r["id"]) for r in finished_runs()]


def sweep_path(sweep_id: str) -> Path:
    """A sweep folder named by the browser: never outside sweeps/."""
    path = inside(sf.sweeps_dir(), (sweep_id or "").strip() or ".")
    if path.parent != sf.sweeps_dir().resolve() or not (path / sf.PLAN).is_file():
        raise ValueError(Message("sweep.not_found", sweep=repr(sweep_id), folder=str(sf.sweeps_dir())))
    return path


def _config_path(choice: str) -> Path:
    allowed = {value for _, value in config_choices()}
    if choice not in allowed:
        raise ValueError(f"{choice!r} is not a preset or a finished run's config")
    path = Path(choice)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]


# ---- sweep actions (the page and the API call these) --------------------------------------------------
def start_sweep(config: str, sets: str, space: str, trials, sampler: str, metric: str, name: str) -> Path:
    """Check everything, create the sweep folder and start its process; ConfigError / ValueError say why not."""
    raw = sf.load_raw(_config_path(config), _lines(sets))
    outside = web_config_problems(raw)
    if outside:
        raise ConfigError(outside, "settings")
    folder = sf.create_sweep(raw, _lines(space), int(trials or 0), sampler, metric, name)
    sf.spawn(folder)
    return folder


def on_start(config, sets, space, trials, sampler, metric, name, lang="en"):
    try:
        folder = start_sweep(config, sets, space, trials, sampler, metric, name)
    except ConfigError as err:
        return error_box(tr(TEXT, lang, "failed"), engine(err.problems), lang), gr.skip()
    except (ValueError, OSError) as err:
        return error_box(tr(TEXT, lang, "failed"), engine([reason(err)]), lang), gr.skip()
    return note_box(tr(TEXT, lang, "started", sweep=folder.name), "ok"), \
        gr.update(choices=sweep_choices(), value=folder.name)


def on_stop(sweep_id, lang="en"):
    try:
        sf.request_stop(sweep_path(sweep_id))
    except ValueError as err:
        return error_box(tr(TEXT, lang, "failed"), engine([reason(err)]), lang)
    return note_box(tr(TEXT, lang, "stopping", sweep=sweep_id))


def on_resume(sweep_id, lang="en"):
    try:
        sf.spawn(sweep_path(sweep_id))
    except ValueError as err:
        return error_box(tr(TEXT, lang, "failed"), engine([reason(err)]), lang)
    return note_box(tr(TEXT, lang, "resumed", sweep=sweep_id), "ok")


def train_best_longer(sweep_id: str) -> Path:
    from ui.train_tab import start_config  # the Train tab's checks and launcher

    return start_config(sf.longer_config(sweep_path(sweep_id)))


def on_longer(sweep_id, lang="en"):
    try:
        run_dir = train_best_longer(sweep_id)
    except ConfigError as err:
        return error_box(tr(TEXT, lang, "failed"), engine(err.problems), lang)
    except ValueError as err:
        return error_box(tr(TEXT, lang, "failed"), engine([reason(err)]), lang)
    return note_box(tr(TEXT, lang, "longer_started", run=run_dir.name), "ok")


# ---- the sweep's view --------------------------------------------------------------------------------
def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in (params or {}).items())


def trials_table(plan: dict, lang="en") -> dict:
    trials = plan.get("trials") or []
    if not trials:
        return EMPTY
    state = (lambda s: STATE_ZH.get(s, s)) if lang == "zh" else (lambda s: s)
    return {"headers": tr(TEXT, lang, "cols").split("|"),
            "data": [[t["number"], state(t["state"]), "–" if t["value"] is None else f"{t['value']:.4f}",
                      t.get("run") or "", _params_text(t["params"])] for t in trials]}


def metric_frame(plan: dict, setting: str | None) -> pd.DataFrame | None:
    """(value of `setting`, metric, state) of every trial with a metric (a pruned one: its last reported step)."""
    points = []
    for t in plan.get("trials") or []:
        value = t["value"] if t["value"] is not None else (list(t["steps"].values())[-1] if t.get("steps") else None)
        if value is not None and setting in t["params"]:
            points.append((t["params"][setting], value, t["state"]))
    if not points:
        return None
    frame = pd.DataFrame(points, columns=["value", "metric", "state"])
    frame["value"] = frame["value"].astype(float) if all(isinstance(p[0], (int, float)) for p in points) else \
        frame["value"].astype(str)
    return frame


def summary_markdown(plan: dict, status: dict, lang="en") -> str:
    best = plan.get("best")
    done = sum(t["state"] in ("complete", "pruned") for t in plan.get("trials") or [])
    best_text = tr(TEXT, lang, "best", number=best["number"], metric=plan["metric_key"], value=best["value"],
                   params=_params_text(best["params"])) if best else ""
    return tr(TEXT, lang, "summary", sweep=plan["id"], state=follow.state_name(status.get("state") or "", lang),
              done=done, target=plan["trials_target"], metric=plan["metric_key"],
              direction=tr(TEXT, lang, plan["direction"]), sampler=plan["sampler"], best=best_text)


def show_sweep(sweep_id, setting=None, lang="en"):
    """(summary, failure, trials table, plot, setting choices) from the sweep's folder."""
    try:
        folder = sweep_path(sweep_id)
    except ValueError:
        return tr(TEXT, lang, "pick"), "", EMPTY, None, gr.update(choices=[], value=None)
    plan, status = sf.read_plan(folder), sf.read_status(folder)
    settings = [spec.split("=", 1)[0] for spec in plan.get("space", [])]
    setting = setting if setting in settings else (settings[0] if settings else None)
    failure = error_box(tr(TEXT, lang, "process_failed"), engine([status.get("error") or ""]), lang) \
        if status.get("state") == RunState.FAILED else ""
    return summary_markdown(plan, status, lang), failure, trials_table(plan, lang), \
        gr.update(value=metric_frame(plan, setting), x_title=setting or "", y_title=plan.get("metric_key")), \
        gr.update(choices=settings, value=setting)


def tick(sweep_id, setting, seen, lang="en"):
    """Redraw only when the sweep's files changed."""
    try:
        folder = sweep_path(sweep_id)
    except ValueError:
        return (gr.skip(),) * 5 + (seen,)
    key = [sweep_id, setting, lang] + [(folder / name).stat().st_mtime if (folder / name).exists() else 0
                                       for name in (sf.PLAN, sf.STATUS)]
    if key == (seen or {}).get("key"):
        return (gr.skip(),) * 5 + (seen,)
    return (*show_sweep(sweep_id, setting, lang), {"key": key})


# ---- merging -----------------------------------------------------------------------------------------
# merging two 7B full-weight runs on a CPU takes far longer than the page's usual limit for an engine command
MERGE_TIMEOUT_S = 6 * 3600


def merge_runs(run_ids: list[str], how: str, weights: str, density, name: str) -> Path:
    """Merge finished runs (the page and the API); ConfigError names what cannot be merged, RuntimeError a failure."""
    from ui.common import run_path

    paths = [str(run_path(r)) for r in run_ids or []]
    from engine.inference.merge_cli import parse_weights

    problems = merge_problems(paths, how, parse_weights(weights), float(density))
    if problems:
        raise ConfigError(problems, "the merge")
    args = ["merge", *paths, "--how", how, "--density", str(float(density))]
    args += (["--weights", weights.strip()] if (weights or "").strip() else []) + (["--name", name] if name else [])
    result = run_engine(*args, timeout=MERGE_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(cli_failure(result))
    return Path(result.stdout.strip().splitlines()[-1])


def on_merge(run_ids, how, weights, density, name, lang="en"):
    try:
        run_dir = merge_runs(run_ids, how, weights, density, name)
    except ConfigError as err:
        return error_box(tr(TEXT, lang, "merge_refused"), engine(err.problems), lang)
    except (ValueError, RuntimeError) as err:
        return error_box(tr(TEXT, lang, "merge_failed"), engine([reason(err)]), lang)
    return note_box(tr(TEXT, lang, "merged", run=run_dir.name), "ok")


def refresh(sweep_id, merge_selected, config, lang="en"):
    sweeps = sweep_choices()
    runs_now = merge_run_choices(lang)
    configs = config_choices(lang)
    return gr.update(choices=sweeps, value=sweep_id if sweep_id in sweeps else (sweeps[0] if sweeps else None)), \
        gr.update(choices=runs_now, value=[r for r in merge_selected or [] if r in [v for _, v in runs_now]]), \
        gr.update(choices=configs, value=config if config in [v for _, v in configs] else configs[0][1])


# ---- the page ----------------------------------------------------------------------------------------
def build() -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    loc(gr.Markdown(en["sweep_title"]), TEXT, value="sweep_title")
    configs = config_choices()
    with gr.Row():
        c.config = loc(gr.Dropdown(configs, value="presets/quickstart.yaml", label=en["config"],
                                   info=en["config_info"], elem_id="sweep-config", scale=3),
                       TEXT, label="config", info="config_info", choices=config_choices)
        c.name = loc(gr.Textbox("", label=en["name"], elem_id="sweep-name", scale=2), TEXT, label="name")
        c.trials = loc(gr.Number(6, precision=0, minimum=1, maximum=500, label=en["trials"], elem_id="sweep-trials",
                                 scale=1), TEXT, label="trials")
    with gr.Row():
        c.space = loc(gr.Textbox(DEFAULT_SPACE, lines=3, label=en["space"], info=en["space_info"],
                                 elem_id="sweep-space", scale=3), TEXT, label="space", info="space_info")
        c.sets = loc(gr.Textbox("train.max_steps=30", lines=3, label=en["sets"], info=en["sets_info"],
                                elem_id="sweep-sets", scale=2), TEXT, label="sets", info="sets_info")
    with gr.Row():
        c.sampler = loc(gr.Radio(list(sf.SAMPLERS), value="tpe", label=en["sampler"], info=en["sampler_info"],
                                 elem_id="sweep-sampler"), TEXT, label="sampler", info="sampler_info")
        c.metric = loc(gr.Dropdown(list(sf.METRICS), value="eval_loss", allow_custom_value=True, label=en["metric"],
                                   info=en["metric_info"], elem_id="sweep-metric"), TEXT, label="metric",
                       info="metric_info")
    c.start = loc(gr.Button(en["start"], variant="primary", elem_id="sweep-start"), TEXT, value="start")
    c.message = gr.Markdown("", elem_id="sweep-message")
    sweeps = sweep_choices()
    with gr.Row():
        c.sweep = loc(gr.Dropdown(sweeps, value=sweeps[0] if sweeps else None, label=en["sweep"], elem_id="sweep-pick",
                                  scale=3), TEXT, label="sweep")
        c.stop = loc(gr.Button(en["stop"], scale=0, elem_id="sweep-stop"), TEXT, value="stop")
        c.resume = loc(gr.Button(en["resume"], scale=0, elem_id="sweep-resume"), TEXT, value="resume")
        c.refresh = loc(gr.Button(en["refresh"], scale=0, size="sm"), TEXT, value="refresh")
    c.summary = gr.Markdown("", elem_id="sweep-summary")
    c.failure = gr.Markdown("")
    c.table = loc(gr.Dataframe(EMPTY, interactive=False, wrap=True, max_height=300, elem_id="sweep-trials-table"),
                  TEXT, label="cols")
    c.setting = loc(gr.Dropdown([], label=en["axis"], elem_id="sweep-axis"), TEXT, label="axis")
    c.plot = loc(gr.ScatterPlot(None, x="value", y="metric", color="state", title=en["plot"], height=300,
                                elem_id="sweep-plot"), TEXT, title="plot")
    c.longer = loc(gr.Button(en["longer"], elem_id="sweep-longer"), TEXT, value="longer")
    c.seen = gr.State({})
    c.timer = gr.Timer(TICK_S, active=False)  # ticks while the tab is shown (ui/app.py tick_on_shown_tab)

    loc(gr.Markdown(en["merge_title"]), TEXT, value="merge_title")
    with gr.Row():
        c.merge_runs = loc(gr.Dropdown(merge_run_choices(), value=[], multiselect=True, label=en["runs"],
                                       info=en["runs_info"], elem_id="merge-runs", scale=3),
                           TEXT, label="runs", info="runs_info", choices=merge_run_choices)
        c.how = loc(gr.Dropdown(list(HOWS), value="ties", label=en["how"], info=en["how_info"], elem_id="merge-how",
                                scale=2), TEXT, label="how", info="how_info")
    with gr.Row():
        c.weights = loc(gr.Textbox("", label=en["weights"], info=en["weights_info"], elem_id="merge-weights"),
                        TEXT, label="weights", info="weights_info")
        c.density = loc(gr.Slider(0.05, 1.0, value=0.5, step=0.05, label=en["density"], info=en["density_info"],
                                  elem_id="merge-density", interactive=True),
                        TEXT, label="density", info="density_info")
        c.merge_name = loc(gr.Textbox("", label=en["merge_name"], elem_id="merge-name"), TEXT, label="merge_name")
    c.merge = loc(gr.Button(en["merge"], variant="primary", elem_id="merge-start"), TEXT, value="merge")
    c.merge_message = gr.Markdown("", elem_id="merge-message")
    return c


def wire(c: SimpleNamespace, lang, shown: gr.Tab) -> None:
    private = dict(api_visibility="private")
    view = [c.summary, c.failure, c.table, c.plot, c.setting]
    c.start.click(on_start, [c.config, c.sets, c.space, c.trials, c.sampler, c.metric, c.name, lang],
                  [c.message, c.sweep], **private)
    c.stop.click(on_stop, [c.sweep, lang], c.message, **private)
    c.resume.click(on_resume, [c.sweep, lang], c.message, **private)
    c.longer.click(on_longer, [c.sweep, lang], c.message, **private)
    c.sweep.change(show_sweep, [c.sweep, c.setting, lang], view, **private)
    c.setting.input(show_sweep, [c.sweep, c.setting, lang], view, **private)
    c.refresh.click(refresh, [c.sweep, c.merge_runs, c.config, lang], [c.sweep, c.merge_runs, c.config], **private)
    # on the timer, and at once when the tab is shown (its timer is off while it is hidden)
    gr.on([c.timer.tick, shown.select], tick, [c.sweep, c.setting, c.seen, lang], view + [c.seen],
          show_progress="hidden", concurrency_limit=None, **private)
    c.how.change(lambda how: gr.update(interactive=how in NEEDS_DENSITY), c.how, c.density, **private)
    c.merge.click(on_merge, [c.merge_runs, c.how, c.weights, c.density, c.merge_name, lang], c.merge_message,
                  **private)
