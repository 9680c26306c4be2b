"""Train tab: method and hyperparameters -> a RunConfig -> a trainer process; then follow it.

Controls come from declarations (the method's `Param`s, and the schema's settings listed in MAIN_SETTINGS for the
`train:` section), the config is validated by the one schema (`RunConfig.from_dict`), and the
run is followed only through its folder, so a page reload or a UI restart loses nothing.
"""
from __future__ import annotations

import html
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.core import runs
from engine.core.config import ConfigError, RunConfig, overrides_between, schema_param, switch_method
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.core.security import web_config_problems
from engine.core.workspace import PROJECT_ROOT, data_display_name
from engine.estimate import DataLengths, ui_summary
from engine.training import launcher
from ui import chat_tab, data_tab, estimate_panel, follow, messages, params, rewards_view, reword
from ui.common import engine, error_box, note_box, run_path
from ui.data_tab import parse_columns
from ui.lang import loc, tr
from ui.reword import said
from ui.run_actions import confirm_text, on_delete_ask, on_delete_confirm, on_resume, on_stop
from ui.train_text import TEXT, TRAIN_PARAM_ZH  # noqa: F401  (the tab's words, en + zh)

PRESET = PROJECT_ROOT / "presets" / "quickstart.yaml"
TICK_S, IDLE_TICK_S = 1.0, 5.0  # while a run is active, and while none is (a tick costs the browser: page_idle_cpu.md)

# The settings on this tab, by (section, name): each is declared once, in the schema (engine/core/config.py),
# which gives its default, range, choices and help; the same renderer draws them as the methods' settings.
MAIN_SETTINGS = (("train", "objective"), ("preference", "beta"), ("preference", "loss_type"),
                 ("train", "learning_rate"), ("train", "max_steps"), ("train", "epochs"), ("train", "batch_size"),
                 ("train", "gradient_accumulation"), ("train", "max_seq_len"), ("train", "warmup_steps"),
                 ("train", "scheduler"), ("data", "validation_split"), ("train", "precision"),
                 ("train", "optimizer"), ("train", "seed"), ("train", "gradient_checkpointing"))
# less common settings, in a closed accordion: regularisation, speed, continual learning,
# distillation and several processes
ADVANCED_SETTINGS = (("train", "weight_decay"), ("train", "max_grad_norm"), ("train", "logging_steps"),
                     ("train", "eval_steps"), ("train", "save_steps"), ("train", "save_total_limit"),
                     ("train", "packing"), ("train", "fused_loss"), ("train", "torch_compile"),
                     ("train", "start_from"), ("train", "ewc_lambda"), ("train", "ewc_samples"),
                     ("data", "replay"), ("data", "replay_fraction"), ("distill", "teacher"), ("distill", "alpha"),
                     ("distill", "temperature"), ("train", "num_processes"), ("train", "distributed"),
                     ("train", "accelerate_config"), ("train", "num_machines"), ("train", "machine_rank"),
                     ("train", "main_address"), ("train", "main_port"), ("train", "report_to"),
                     ("preference", "simpo_gamma"),
                     ("preference", "desirable_weight"), ("preference", "undesirable_weight"), ("data", "split"),
                     ("data", "subset"), ("data", "reasoning"))
TRAIN_PARAMS = tuple((section, schema_param(section, name)) for section, name in MAIN_SETTINGS)
ADVANCED_PARAMS = tuple((section, schema_param(section, name)) for section, name in ADVANCED_SETTINGS)
SETTINGS = TRAIN_PARAMS + ADVANCED_PARAMS  # the order of c.train_inputs


# Chinese label and help of the TRAIN_PARAMS declarations (English comes from the Param itself)
params.PARAM_ZH.update(TRAIN_PARAM_ZH)


def preset_defaults() -> RunConfig:
    """The quickstart preset: the values a first run should start from."""
    try:
        return RunConfig.load(PRESET)
    except Exception:  # a broken preset must not keep the page from coming up
        return RunConfig()


# ---- building and starting a run -------------------------------------------------------------
RUN_REFERENCES = ("start_from", "replay", "teacher")  # fields that take an earlier run


def run_or_path(value: str) -> str:
    """A run id from the runs list becomes its folder; anything else (a path, a Hub id) stays as typed."""
    try:
        return str(run_path(value)) if value and "/" not in value else value
    except ValueError:
        return value


def build_raw(model, data_path, fmt, columns_text, mask, skip_bad, name, method, train_values,
              method_values) -> tuple[dict, list[str]]:
    """The config dict from the controls, plus problems the schema cannot see (empty fields)."""
    problems = []
    try:
        columns = parse_columns(columns_text)
    except ValueError as err:
        columns, problems = {}, [Message("config.columns", field="data.columns", reason=err.args[0])]
    raw = {"model": (model or "").strip(), "name": (name or "").strip(),
           "data": {"train": data_path or "", "format": fmt, "mask": mask, "columns": columns,
                    "skip_bad_rows": bool(skip_bad)},
           "method": {"name": method, **method_values}, "train": {}, "distill": {}, "preference": {}}
    for (section, param), value in zip(SETTINGS, train_values):
        if param.type is str and param.choices is None:
            value = (value or "").strip()  # free text (paths): empty means off
            if param.name in RUN_REFERENCES:
                value = run_or_path(value)
        elif value is None or value == "":
            problems.append(Message("config.empty", field=f"{section}.{param.name}"))
            continue
        raw[section][param.name] = value
    raw["method"] = {k: v for k, v in raw["method"].items() if v is not None}
    return raw, problems


def start_config(raw: dict, problems: list[str] | None = None, before_launch=None) -> Path:
    """Validate a config from the page or the API (every problem at once) and launch; raises ConfigError.

    Paths in it must stay inside what this server may read (engine/core/security.py); while one does
    not, nothing is read from any path it names, so no answer tells what lies outside. `before_launch(cfg)`
    runs on the valid config just before the launch (the API's data check, ui/api_data.py); it raises to refuse."""
    from engine.training.preflight import static_problems  # import-light: config.json and file checks

    outside = web_config_problems(raw)
    problems = list(problems or []) + outside
    try:
        cfg = RunConfig.from_dict(raw, "settings")
    except ConfigError as err:
        problems += err.problems
        if not outside:  # the launcher's own checks (data file, model limit) only run on a valid config
            problems += [p for p in static_problems(raw) if p not in err.problems]
    if problems:
        raise ConfigError(problems, "settings")
    if before_launch is not None:
        before_launch(cfg)
    return launcher.start(cfg)


def page_config(controls, model, data_path, fmt, columns_text, mask, skip_bad, name, method,
                values) -> tuple[dict, list[str]]:
    """build_raw for a handler's inputs: `values` are the SETTINGS controls, then the method's controls."""
    train_values, method_values = values[:len(SETTINGS)], values[len(SETTINGS):]
    return build_raw(model, data_path, fmt, columns_text, mask, skip_bad, name, method, train_values,
                     params.values_for(controls, method, list(method_values)))


def on_method_change(c: SimpleNamespace, previous: str, method: str, lang: str, *train_values) -> list:
    """Show the new method's settings and apply its starting values to the training settings the user has
    not changed (the rule `--set method.name=` follows too: engine.core.config.switch_method)."""
    raw: dict = {"method": {"name": previous or method}, "train": {}, "data": {}, "distill": {}, "preference": {}}
    for (section, param), value in zip(SETTINGS, train_values):
        raw[section][param.name] = value
    switch = switch_method(raw, method)
    updates = [gr.update(value=raw[section][param.name]) if f"{section}.{param.name}" in switch.changed
               else gr.skip() for section, param in SETTINGS]
    shown = {f"{section}.{param.name}": param for section, param in SETTINGS}
    changes = [tr(TEXT, lang, "changed_setting", setting=params.param_text(shown[key], lang)[0], before=before,
                  after=after) for key, (before, after) in switch.changed.items()]
    message = note_box(tr(TEXT, lang, "method_switched", method=params.method_text(method, lang)[0],
                          changes="; ".join(changes))) if changes else ""
    return [*params.show(c.method_controls, method), *updates, method, message]


def on_preview(controls, model, data_path, fmt, columns_text, mask, skip_bad, name, method, lang, *values):
    """The command that trains the settings on the page (nothing is started): the preset the page starts from,
    plus a `--set` for every value that differs from it."""
    raw, problems = page_config(controls, model, data_path, fmt, columns_text, mask, skip_bad, name, method, values)
    try:
        cfg = RunConfig.from_dict(raw, "settings")
    except ConfigError as err:
        problems += err.problems
    if problems:
        return gr.update(visible=False), error_box(tr(TEXT, lang, "need_attention", n=len(problems)),
                                                   engine(problems), lang)
    return gr.update(value=preview_command(cfg), visible=True), ""


def preview_command(cfg: RunConfig) -> str:
    """`python -m engine train presets/quickstart.yaml --set ...` for `cfg`, one `--set` per line."""
    overrides = overrides_between(preset_defaults().to_dict(), cfg.to_dict())
    return launcher.command_preview(cfg, PRESET.relative_to(PROJECT_ROOT), overrides=overrides)


def on_start(controls, report, model, data_path, fmt, columns_text, mask, skip_bad, name, method, lang, *values):
    """Start a run; data the Data tab would refuse is refused here with the Data tab's own message (one check:
    ui.data_tab.check_data / report_problem). Returns (message, run picker, the data report)."""
    raw, problems = page_config(controls, model, data_path, fmt, columns_text, mask, skip_bad, name, method, values)
    if data_path:
        key = data_key_for(raw, fmt, columns_text, mask, skip_bad)
        if (report or {}).get("inputs") != key:  # not checked as it will train (another max_seq_len): check now
            report = data_tab.check_data(key)
        if data_tab.refuses_start(report):
            return data_tab.report_problem(report, lang), gr.skip(), report
    try:
        run_dir = start_config(raw, problems)
    except ConfigError as err:
        return reword.error(lang, said(__name__, "need_attention", n=len(err.problems)), engine(err.problems)), \
            gr.skip(), report
    except Exception as err:
        return reword.error(lang, said(__name__, "cannot_start"), Message("run.error", type=type(err).__name__,
                                                                         detail=str(err))), gr.skip(), report
    ids = [r["id"] for r in runs.list_runs()]
    unloaded = chat_tab.make_room_for_training(ui_summary(raw).get("total_bytes"))
    started = reword.note("ok", lang, said(__name__, "started", run=run_dir.name),
                          said(__name__, "chat_unloaded") if unloaded else "")
    return started, gr.update(choices=ids, value=run_dir.name), report


def data_key_for(raw: dict, fmt, columns_text, mask, skip_bad) -> list:
    """The Data tab's key (ui.data_tab.data_key) for the data of a page config."""
    data, train = raw.get("data") or {}, raw.get("train") or {}
    return data_tab.data_key(data.get("train"), fmt, columns_text, mask, skip_bad, raw.get("model"),
                             train.get("max_seq_len"), data.get("split"), data.get("subset"),
                             data.get("reasoning", "auto"))


# ---- following runs --------------------------------------------------------------------------
def _loss(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def runs_table(listing: list[dict], lang="en") -> dict:
    """The run history: what each run trained, on which file (as uploaded), when, how it ended."""
    headers = tr(TEXT, lang, "runs_cols").split("|")
    data = []
    for r in listing:
        notes = [tr(TEXT, lang, "stopped_early")] if r.get("stopped_early") and r["state"] == RunState.DONE else []
        notes += [tr(TEXT, lang, "reproduces", run=r["reproduces"])] if r.get("reproduces") else []
        notes += [messages.say(messages.status_error(r), lang)[:120]] if r["state"] == RunState.FAILED else []
        data.append([r["id"], r.get("method") or "", r.get("data_file") or "",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])) if r.get("created_at") else "",
                     follow.state_name(r["state"], lang), f"{r['step'] or 0}/{r['max_steps'] or '?'}",
                     _loss(r.get("final_loss")), _loss(r.get("final_eval_loss")), _loss(r.get("best_eval_loss")),
                     "; ".join(n for n in notes if n)])
    return {"headers": headers, "data": data or [[tr(TEXT, lang, "no_runs")] + [""] * (len(headers) - 1)]}


def button_states(run_dir: Path | None, status: dict) -> dict:
    """Stop only while a run is queued or running; Resume only where a checkpoint exists and the run is not
    active; Delete only when nothing uses the folder. The same rules the API and the CLI apply."""
    if run_dir is None:
        return dict.fromkeys(("stop", "resume", "delete"), gr.update(interactive=False))
    return {"stop": gr.update(interactive=runs.can_stop(status)),
            "resume": gr.update(interactive=runs.resume_refusal(run_dir, status) is None),
            "delete": gr.update(interactive=runs.delete_refusal(run_dir) is None)}


def pick_on_load():
    """After a page load or a UI restart: follow a run that is still going, else the newest one."""
    listing = runs.list_runs()
    active = [r for r in listing if r["state"] in runs.ACTIVE]
    chosen = (active or listing or [{"id": None}])[0]["id"]
    return gr.update(choices=[r["id"] for r in listing], value=chosen), runs_table(listing)


def tick(run_id, seen, lang="en") -> follow.RunView:
    """One timer tick: re-send only what changed since this browser's last tick (the rest is left as gr.skip())."""
    view = follow.RunView(seen=dict(seen or {}))
    seen = view.seen
    listing = runs.list_runs()
    signature = [lang] + [(r["id"], r["state"], r["step"]) for r in listing]
    if signature != seen.get("runs"):
        view.runs = runs_table(listing, lang)
    ids = [r["id"] for r in listing]
    if ids != seen.get("ids"):
        view.choices = gr.update(choices=ids)
    interval = TICK_S if any(r["state"] in runs.ACTIVE for r in listing) else IDLE_TICK_S
    if interval != seen.get("interval"):
        view.timer = gr.Timer(interval)
    seen.update(runs=signature, ids=ids, interval=interval)
    try:
        run_dir = run_path(run_id) if run_id else None
    except ValueError:
        run_dir = None
    if run_dir is None:
        if seen.get("run") is not None:  # the followed run is gone: blank its view once
            rewards, logps = follow.objective_updates([], lang)
            view = replace(view, progress="", loss_plot=follow.EMPTY_LOSS, lr_plot=follow.EMPTY_LR, numbers="",
                           failure="", log="", rewards_plot=rewards, logps_plot=logps, **button_states(None, {}),
                           **rewards_view.updates(None, [], lang))
        seen["run"] = None
        return view

    status = runs.read_status(run_dir)
    rows = follow.metrics(run_dir)
    log = runs.log_tail(run_dir, 12)
    written = rewards_view.answers_written(run_dir)  # GRPO's sampled answers: appended after their metrics row
    key = [run_id, lang, len(rows), status.get("state"), status.get("step"), status.get("updated_at"), written]
    if key == seen.get("key") and log == seen.get("log"):
        return view
    fresh = run_id != seen.get("run") or [len(rows), written] != seen.get("rows")
    seen.update(run=run_id, key=key, log=log, rows=[len(rows), written])
    failed = status.get("state") == RunState.FAILED  # why it failed, then what it said while it trained
    problems = (follow.failure_lines(status, lang) if failed else []) + follow.warning_lines(status, lang)
    title = tr(TEXT, lang, "failed" if failed else "attention", run=run_id)
    fresh = fresh or lang != seen.get("lang")  # the loss series are named in the page's language
    seen["lang"] = lang
    view = replace(view, progress=follow.progress_html(status, lang),
                   numbers=follow.numbers_markdown(rows, status, lang), log=log, **button_states(run_dir, status),
                   failure=error_box(title, problems, lang) if problems else "")
    if fresh:
        view.rewards_plot, view.logps_plot = follow.objective_updates(rows, lang)
        view = replace(view, **rewards_view.updates(run_dir, rows, lang))
        view.loss_plot, view.lr_plot = follow.loss_frame(rows, lang, status.get("base_eval_loss")), \
            follow.lr_frame(rows)
    return view


def on_table_select(evt: gr.SelectData):
    row = getattr(evt, "row_value", None) or []
    return row[0] if row and row[0] and not str(row[0]).startswith("(") else gr.skip()


# ---- layout ----------------------------------------------------------------------------------
def build(defaults: RunConfig) -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    # in view wherever the tab is scrolled (CSS position: sticky): what will train, whether it fits, Start/Stop
    with gr.Column(elem_id="train-summary", elem_classes="tl-sticky"):
        with gr.Row(equal_height=True):
            first = ui_summary(defaults.to_dict(), estimate_panel.detect())  # pure: the panel's own first estimate
            c.summary = gr.HTML(summary_html(defaults.to_dict(), {}, first, "en"), elem_id="run-summary", scale=1,
                                min_width=400)
            c.start = loc(gr.Button(en["start"], variant="primary", scale=0, min_width=180, elem_id="start"), TEXT,
                          value="start")
            c.stop = loc(gr.Button(en["stop"], variant="stop", interactive=False, scale=0, min_width=240,
                                   elem_id="stop"), TEXT, value="stop")
        c.message = gr.Markdown("", elem_id="train-message")
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
            with gr.Accordion(en["advanced"], open=False) as c.advanced:
                with gr.Row():
                    for i in range(0, len(ADVANCED_PARAMS), 4):
                        with gr.Column(min_width=200):
                            for section, param in ADVANCED_PARAMS[i:i + 4]:
                                value = getattr(getattr(defaults, section), param.name)
                                c.train_inputs.append(params.component(param, value,
                                                                       elem_id=f"{section}-{param.name}"))
            loc(c.advanced, TEXT, label="advanced")
    c.estimate = estimate_panel.build(defaults.to_dict())
    with gr.Row():
        c.resume = loc(gr.Button(en["resume"], interactive=False, scale=1, elem_id="resume"), TEXT, value="resume")
        c.preview = loc(gr.Button(en["preview"], scale=1, elem_id="preview-command"), TEXT, value="preview")
    c.command = loc(gr.Code("", language="shell", label=en["preview_label"], visible=False, elem_id="command",
                            wrap_lines=True), TEXT, label="preview_label")
    with gr.Group():
        c.follow = loc(gr.Dropdown([], value=None, label=en["run"], info=en["run_info"], allow_custom_value=False),
                       TEXT, label="run", info="run_info")
        c.progress = gr.HTML("", elem_id="progress")
    c.failure = gr.Markdown("")
    with gr.Row():
        c.loss_plot = loc(gr.LinePlot(follow.EMPTY_LOSS, x="step", y="loss", color="series", title=en["loss"],
                                      elem_id="loss-plot", height=280, x_title=en["step"], y_title=en["loss"],
                                      color_map=follow.loss_colors("en"), color_title=en["series"]),
                          TEXT, title="loss", color_map=follow.loss_colors, x_title="step", y_title="loss",
                          color_title="series")
        c.lr_plot = loc(gr.LinePlot(follow.EMPTY_LR, x="step", y="learning rate", title=en["lr"], height=280,
                                    x_title=en["step"], y_title=en["lr"]),
                        TEXT, title="lr", x_title="step", y_title="lr")
    with gr.Row():  # a preference objective's own metrics (shown for such runs only)
        c.rewards_plot = loc(gr.LinePlot(None, x="step", y="value", color="series", title=en["rewards"],
                                         elem_id="rewards-plot", height=260, visible=False, x_title=en["step"],
                                         y_title=en["value"], color_title=en["series"]),
                             TEXT, title="rewards", x_title="step", y_title="value", color_title="series")
        c.logps_plot = loc(gr.LinePlot(None, x="step", y="value", color="series", title=en["logps"],
                                       elem_id="logps-plot", height=260, visible=False, x_title=en["step"],
                                       y_title=en["value"], color_title=en["series"]),
                           TEXT, title="logps", x_title="step", y_title="value", color_title="series")
    c.grpo_rewards, c.grpo_other, c.grpo_samples = rewards_view.build()  # GRPO's rewards and answers (if any)
    c.numbers = gr.Markdown("", elem_id="run-numbers")
    c.log = loc(gr.Textbox("", label=en["log"], lines=12, max_lines=12, autoscroll=True, interactive=False,
                           elem_id="train-log"),
                TEXT, label="log")
    with gr.Accordion(en["all_runs"], open=True) as c.all_runs:
        c.runs = gr.Dataframe(runs_table([]), interactive=False, wrap=True, max_height=260, elem_id="runs-table")
        with gr.Row():
            c.delete = loc(gr.Button(en["delete"], size="sm", interactive=False, scale=0, elem_id="delete-run"), TEXT,
                           value="delete")
        with gr.Row(visible=False, elem_id="delete-confirm") as c.confirm:
            c.confirm_text = gr.Markdown("")
            c.delete_yes = loc(gr.Button(en["delete_yes"], variant="stop", size="sm", scale=0, elem_id="delete-yes"),
                               TEXT, value="delete_yes")
            c.delete_no = loc(gr.Button(en["delete_no"], size="sm", scale=0), TEXT, value="delete_no")
    loc(c.all_runs, TEXT, label="all_runs")
    c.seen = gr.State({})
    c.current_method = gr.State(defaults.method.name)  # the method before a switch (engine rule: switch_method)
    c.timer = gr.Timer(TICK_S)
    return c


def wire(c: SimpleNamespace, model, data, lang) -> None:
    private = dict(api_visibility="private")
    c.method.change(lambda *values: on_method_change(c, *values), [c.current_method, c.method, lang, *c.train_inputs],
                    [*c.method_controls.groups.values(), *c.train_inputs, c.current_method, c.message],
                    show_progress="hidden", **private)
    c.start.click(lambda *values: on_start(c.method_controls, *values),
                  [data.report, model, data.path, data.format, data.columns, data.mask, data.skip_bad, c.name,
                   c.method, lang, *c.train_inputs, *c.method_controls.inputs], [c.message, c.follow, data.report],
                  concurrency_limit=1, **private)
    c.preview.click(lambda *values: on_preview(c.method_controls, *values),
                    [model, data.path, data.format, data.columns, data.mask, data.skip_bad, c.name, c.method, lang,
                     *c.train_inputs, *c.method_controls.inputs], [c.command, c.message], **private)
    reword.follow_language(lang, c.message)  # what Start, Stop, Resume and Delete said, in the new language
    c.stop.click(on_stop, [c.follow, lang], c.message, **private)
    c.resume.click(on_resume, [c.follow, lang], c.message, **private)
    c.runs.select(on_table_select, None, c.follow, **private)
    c.delete.click(on_delete_ask, [c.follow, lang], [c.message, c.confirm], **private).then(
        confirm_text, [c.follow, lang], c.confirm_text, **private)
    c.delete_no.click(lambda: gr.update(visible=False), None, c.confirm, **private)
    c.delete_yes.click(on_delete_confirm, [c.follow, lang], [c.message, c.confirm, c.follow], **private)
    c.follow.change(lambda: gr.update(visible=False), None, c.confirm, **private)  # a question about one run only
    settings = [model, data.path, data.format, data.columns, data.mask, data.skip_bad, c.name, c.method, lang,
                *c.train_inputs, *c.method_controls.inputs]
    panel = c.estimate
    # the timer ticks only while the model's structure is being read (estimate_panel)
    # ... and the data: its real lengths size the batch once the Data tab has checked it
    gr.on([x.change for x in (model, c.method, lang, data.path, data.report, *c.train_inputs,
                              *c.method_controls.inputs)] + [panel.timer.tick],
          lambda *values: on_estimate(c, *values), [data.report, *settings],
          [*estimate_panel.outputs(panel), c.summary],
          show_progress="hidden", trigger_mode="always_last", **private)
    for index, button in enumerate(panel.buttons):
        button.click(lambda options, i=index: apply_option(c, options, i), panel.options,
                     [*c.train_inputs, c.method, *c.method_controls.inputs], **private)
    # on every tab (ui/app.py tick_on_shown_tab says why), and at once for a new language or run: a hidden plot
    # gets its points before its tab is shown again
    gr.on([c.timer.tick, lang.change, c.follow.change], lambda *values: tick(*values).outputs(c),
          [c.follow, c.seen, lang], [getattr(c, name) for name in follow.RunView.component_names()],
          show_progress="hidden", concurrency_limit=None, **private)


def on_estimate(c: SimpleNamespace, report, model, data_path, fmt, columns_text, mask, skip_bad, name, method, lang,
                *values) -> list:
    """Re-estimate memory for the settings on the page (pure arithmetic on the model's structure) and the data's
    longest batch when the Data tab has checked this data; then the summary bar."""
    raw, _ = page_config(c.method_controls, model, data_path, fmt, columns_text, mask, skip_bad, name, method, values)
    report = report if data_tab.same_data(report, data_key_for(raw, fmt, columns_text, mask, skip_bad)) else {}
    lengths = DataLengths.from_stats(report.get("stats"), report["inputs"][6]) if report.get("stats") else None
    summary = estimate_panel.compute(c.estimate, raw, lengths)
    return [*estimate_panel.update(c.estimate, raw, lang, summary), summary_html(raw, report, summary, lang)]


def data_line(raw: dict, report: dict, lang="en") -> str:
    """The data the run will use, as the user knows it: name, format, rows, trained tokens (from the Data tab's
    check of this very data, else its name and that it is not checked yet)."""
    name = html.escape(data_display_name((raw.get("data") or {}).get("train") or ""))
    if data_tab.refuses_start(report):
        return f"<span class='tl-bad'>{tr(TEXT, lang, 'data_unusable', name=name)}</span>"
    stats = report.get("stats")
    if not stats:
        return tr(TEXT, lang, "data_unchecked", name=name)
    return tr(TEXT, lang, "data_line", name=name, format=html.escape(str(report.get("format") or "?")),
              rows=f"{stats.get('rows', stats.get('examples', 0)):,}", trained=f"{stats.get('trained_tokens', 0):,}")


def summary_html(raw: dict, report: dict, summary: dict, lang="en") -> str:
    """The summary bar: model, method, memory verdict; the data below."""
    method = (raw.get("method") or {}).get("name") or ""
    cells = [("summary_model", html.escape(str(raw.get("model") or ""))),
             ("summary_method", html.escape(params.method_text(method, lang)[0] if method else "")),
             ("summary_memory", estimate_panel.fit_badge(summary, lang))]
    head = " · ".join(f"<span><b>{tr(TEXT, lang, key)}</b> {value}</span>" for key, value in cells)
    return (f"<div class='tl-summary'><div>{head}</div><div id='summary-data'><b>{tr(TEXT, lang, 'summary_data')}"
            f"</b> {data_line(raw, report, lang)}</div></div>")


def apply_option(c: SimpleNamespace, options: list, index: int) -> list:
    """Set the controls to one of the estimate's cheaper settings."""
    if index >= len(options):
        return [gr.skip()] * (len(c.train_inputs) + 1 + len(c.method_controls.inputs))
    flat, method = estimate_panel.flatten(options[index]["overrides"])
    train = [gr.update(value=flat[f"{section}.{p.name}"]) if f"{section}.{p.name}" in flat else gr.skip()
             for section, p in SETTINGS]
    if not method:
        return train + [gr.skip()] + [gr.skip()] * len(c.method_controls.inputs)
    controls = [gr.update(value=method[name]) if key == method["name"] and name in method else gr.skip()
                for key, name in c.method_controls.keys]
    return train + [gr.update(value=method["name"])] + controls


def data_source_inputs(c: SimpleNamespace) -> tuple:
    """The split and subset of a datasets folder / Hub dataset: the Data tab reads the data as the run will."""
    names = [(section, p.name) for section, p in SETTINGS]
    return tuple(c.train_inputs[names.index(("data", name))] for name in ("split", "subset", "reasoning"))


def max_seq_len_input(c: SimpleNamespace):
    """The Data tab previews with the same max_seq_len the run will use."""
    return c.train_inputs[[p.name for _, p in SETTINGS].index("max_seq_len")]
