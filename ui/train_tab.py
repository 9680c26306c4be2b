"""Train tab: method and hyperparameters -> a RunConfig -> a trainer process; then follow it.

Controls come from declarations (the method's `Param`s, and the schema's settings listed in MAIN_SETTINGS for the
`train:` section), the config is validated by the one schema (`RunConfig.from_dict`), and the
run is followed only through its folder, so a page reload or a UI restart loses nothing.
"""
from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.core import runs
from engine.core.config import ConfigError, RunConfig, overrides_between, schema_param, switch_method
from engine.core.messages import Message
from engine.core.security import web_config_problems
from engine.core.workspace import PROJECT_ROOT, data_display_name
from engine.estimate import DataLengths, ui_summary
from engine.training import launcher
from ui import chat_tab, data_tab, estimate_panel, follow, messages, params, rewards_view
from ui.common import engine, error_box, note_box, reason, run_path
from ui.data_tab import parse_columns
from ui.lang import loc, tr

PRESET = PROJECT_ROOT / "presets" / "quickstart.yaml"
TICK_S = 1.0

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
                     ("train", "accelerate_config"), ("train", "report_to"), ("preference", "simpo_gamma"),
                     ("preference", "desirable_weight"), ("preference", "undesirable_weight"), ("data", "split"),
                     ("data", "subset"))
TRAIN_PARAMS = tuple((section, schema_param(section, name)) for section, name in MAIN_SETTINGS)
ADVANCED_PARAMS = tuple((section, schema_param(section, name)) for section, name in ADVANCED_SETTINGS)
SETTINGS = TRAIN_PARAMS + ADVANCED_PARAMS  # the order of c.train_inputs


TEXT = {
    "en": {
        "method": "Method", "method_info": "What gets trained. Each method shows its own settings below.",
        "name": "Run name", "name_info": "Used in the run folder's name.",
        "method_settings": "**Method settings**", "train_settings": "**Training settings**",
        "advanced": "More settings: regularisation, speed, continual learning, distillation, several devices",
        "preview": "Preview command", "preview_label": "The command that runs this training (run it by hand "
                   "elsewhere, e.g. on a multi-GPU machine)",
        "start": "Start training", "stop": "Stop (keeps the result so far)", "resume": "Resume",
        "run": "Run", "run_info": "The run shown below; new runs are followed automatically.",
        "loss": "Loss", "lr": "Learning rate", "rewards": "Preference rewards and accuracy",
        "logps": "Log-probabilities of the answers", "log": "train.log (last lines)", "all_runs": "All runs",
        "need_attention": "{n} setting(s) need attention before training can start",
        "cannot_start": "Could not start the run",
        "started": "Started {run}. Loss points appear below once the model has loaded.",
        "chat_unloaded": "The chat models were unloaded: the memory estimate says training and chat do not fit "
                         "on this device together.",
        "cannot_stop": "Could not stop the run", "stopping": "Stopping {run}: the result is saved at the current step.",
        "cannot_resume": "Could not resume the run", "resuming": "Resuming {run} from its last checkpoint.",
        "failed": "{run} failed",
        "runs_cols": "run|method|data|started|state|step|final loss|final eval loss|best eval loss|note",
        "no_runs": "(no runs yet)", "stopped_early": "stopped early", "reproduces": "reproduces {run}",
        "delete": "Delete run…", "confirm_delete": "Delete {run} and all its files (result, checkpoints, "
        "evaluations)? This cannot be undone.", "delete_yes": "Delete for good", "delete_no": "Cancel",
        "deleted": "Deleted {run}.", "cannot_delete": "Could not delete the run",
        "method_switched": "Switched to {method}: {changes} (the method's starting values; settings you changed "
                           "stay).",
        "changed_setting": "{setting} {before} → {after}",
        "summary_model": "Model", "summary_method": "Method", "summary_data": "Data", "summary_memory": "Memory",
        "data_line": "{name} · {format} · {rows} rows · {trained} trained tokens",
        "data_unchecked": "{name} · not checked yet (Data tab)",
        "data_unusable": "{name} · cannot be used as it is (see the Data tab)",
        "checking_data": "Checking the data before the run starts…",
        "step": "step", "value": "value", "series": "series",
    },
    "zh": {
        "method": "方法", "method_info": "训练哪些参数。每种方法在下方显示自己的设置。",
        "name": "训练名称", "name_info": "用作训练文件夹名称的一部分。",
        "method_settings": "**方法设置**", "train_settings": "**训练设置**",
        "advanced": "更多设置：正则化、速度、持续学习、蒸馏、多设备",
        "preview": "预览命令", "preview_label": "运行这次训练的命令（可在别处手动运行，例如多 GPU 机器上）",
        "start": "开始训练", "stop": "停止（保留目前的结果）", "resume": "继续训练",
        "run": "训练", "run_info": "下方显示的训练；新开始的训练会自动跟随。",
        "loss": "损失", "lr": "学习率", "rewards": "偏好奖励与准确率", "logps": "回答的对数概率",
        "log": "train.log（最后几行）", "all_runs": "全部训练",
        "need_attention": "开始训练前有 {n} 项设置需要处理",
        "cannot_start": "无法开始训练",
        "started": "已开始 {run}。模型加载后，损失曲线会显示在下方。",
        "chat_unloaded": "已卸载对话模型：内存估算显示训练和对话无法同时放进这台设备。",
        "cannot_stop": "无法停止训练", "stopping": "正在停止 {run}：结果会保存在当前步。",
        "cannot_resume": "无法继续训练", "resuming": "正在从最后一个检查点继续 {run}。",
        "failed": "{run} 失败了",
        "runs_cols": "运行|方法|数据|开始时间|状态|步数|最终损失|最终验证损失|最佳验证损失|备注",
        "no_runs": "（还没有运行）", "stopped_early": "提前停止", "reproduces": "复现 {run}",
        "delete": "删除训练…", "confirm_delete": "删除 {run} 及其所有文件（结果、检查点、评估）？此操作无法撤销。",
        "delete_yes": "永久删除", "delete_no": "取消",
        "deleted": "已删除 {run}。", "cannot_delete": "无法删除训练",
        "method_switched": "已切换到 {method}：{changes}（该方法的起始值；你改过的设置保持不变）。",
        "changed_setting": "{setting} {before} → {after}",
        "summary_model": "模型", "summary_method": "方法", "summary_data": "数据", "summary_memory": "内存",
        "data_line": "{name} · {format} · {rows} 行 · {trained} 个参与训练的词元",
        "data_unchecked": "{name} · 尚未检查（数据页）",
        "data_unusable": "{name} · 无法直接使用（见数据页）",
        "checking_data": "开始训练前正在检查数据…",
        "step": "步数", "value": "数值", "series": "曲线",
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
    "precision": ("精度", "auto 在支持的 GPU 上选 bf16/fp16，在 CPU 上用 fp32。"
                  "bf16/fp16：混合精度（保留 fp32 主权重）。"
                  "bf16_pure：权重、梯度和优化器状态全部用 bf16，全参数微调的内存减半；小于权重 1/256 的更新会被舍去，"
                  "适合适配器方法和较大的学习率。"),
    "optimizer": ("优化器", "adamw 几乎适用于所有情况；8 位版本在 CUDA 上更省内存。"),
    "seed": ("随机种子", "相同的种子 + 相同的设置 = 相同的训练。"),
    "weight_decay": ("权重衰减", "解耦权重衰减（AdamW）；全量微调时 0.01-0.1 起正则作用。"),
    "max_grad_norm": ("最大梯度范数", "把梯度范数裁剪到此值（0 表示不裁剪）。"),
    "logging_steps": ("记录间隔步数", "损失曲线上两个点之间的步数。"),
    "eval_steps": ("评估间隔步数", "两次评估损失之间的步数（0 表示只在结束时评估）。"),
    "save_steps": ("保存间隔步数", "两个可恢复检查点之间的步数（0 表示只在结束时保存）。"),
    "save_total_limit": ("保留的检查点数", "保留的检查点个数；更早的会被删除。"),
    "packing": ("打包", "无填充批次：样例首尾相接打包，每个样例只关注自身（更快，损失相同）。"),
    "fused_loss": ("融合损失", "分块计算损失，从不保存整批的 logits（大词表时更省内存）。"),
    "torch_compile": ("torch.compile 编译", "用 torch.compile 编译模型：最初几步较慢（编译），之后在 GPU 上可能更快。"
                                           "使用普通损失（完整 logits）。"
                                           "本项目尚未测量其速度（bench/results/ 中没有结果）。"),
    "start_from": ("从此运行开始", "持续学习：以一个较早运行（文件夹或编号）的结果作为本次的起点。"),
    "ewc_lambda": ("EWC 强度", "相对起点运行的弹性权重巩固强度（0 表示关闭；常用 1e3-1e5）。"),
    "ewc_samples": ("EWC 样例数", "用于估计起点运行 Fisher 信息的样例数。"),
    "replay": ("回放来源", "经验回放：混入一个较早运行（或数据文件）的训练数据。"),
    "replay_fraction": ("回放比例", "混入的回放数据比例（0 表示关闭）。"),
    "teacher": ("教师模型", "蒸馏：与本模型共用分词器的教师模型（文件夹、Hub 编号或较早的运行）；留空表示关闭。"),
    "alpha": ("蒸馏 alpha", "对教师 KL 的权重；1 - alpha 是标签损失的权重。"),
    "temperature": ("蒸馏温度", "使两个分布更平滑（常用 1-4）。"),
    "num_processes": ("进程数", "用于训练的进程（设备）数；大于 1 时通过 `accelerate launch` 启动。"),
    "distributed": ("分布式方式", "多个进程如何分担工作：数据并行，或分片（FSDP、DeepSpeed ZeRO-2/3，需已安装）。"),
    "accelerate_config": ("accelerate 配置文件", "一个 `accelerate config` 文件（例如用于多台机器）；"
                                                 "留空则用上面的设置。"),
    "gradient_checkpointing": ("梯度检查点", "反向传播时重新计算激活：内存少很多，速度慢约 30%。"),
    "objective": ("训练目标", "sft 学习回答；dpo、orpo、simpo 从偏好对（prompt / chosen / rejected）学习，kto 从标记为"
                              "好或不好的回答学习。"),
    "report_to": ("记录到", "同时记录到 TensorBoard（RUN/tensorboard）和/或 MLflow（本地文件存储 RUN/mlruns）；"
                            "已安装时可用 W&B。"),
    "beta": ("beta", "模型可偏离参考模型的程度（DPO、KTO），几率比项的权重（ORPO），"
                     "或奖励尺度（SimPO；论文中为 2-10）。"),
    "loss_type": ("DPO 损失", "DPO 的损失：sigmoid（论文原版）、ipo（平方，带正则）或 hinge（SLiC）。"),
    "simpo_gamma": ("SimPO gamma", "SimPO 的目标奖励间隔。"),
    "desirable_weight": ("KTO 好回答权重", "KTO：好回答的权重（好回答较少时调高）。"),
    "undesirable_weight": ("KTO 坏回答权重", "KTO：坏回答的权重。"),
    "split": ("数据划分", "从 datasets 文件夹或 Hub 数据集读取的划分（split）。"),
    "subset": ("子集", "有多个配置的 Hub 数据集要读取的配置（子集）；留空为默认。"),
}
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


def start_config(raw: dict, problems: list[str] | None = None) -> Path:
    """Validate a config from the page or the API (every problem at once) and launch; raises ConfigError.

    Paths in it must stay inside what this server may read (engine/core/security.py); while one does
    not, nothing is read from any path it names, so no answer tells what lies outside."""
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
        return error_box(tr(TEXT, lang, "need_attention", n=len(err.problems)), engine(err.problems), lang), \
            gr.skip(), report
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_start"), Message("run.error", type=type(err).__name__,
                                                                  detail=str(err)), lang), gr.skip(), report
    ids = [r["id"] for r in runs.list_runs()]
    started = tr(TEXT, lang, "started", run=run_dir.name)
    if chat_tab.make_room_for_training(ui_summary(raw).get("total_bytes")):
        started += " " + tr(TEXT, lang, "chat_unloaded")
    return note_box(started, "ok"), gr.update(choices=ids, value=run_dir.name), report


def data_key_for(raw: dict, fmt, columns_text, mask, skip_bad) -> list:
    """The Data tab's key (ui.data_tab.data_key) for the data of a page config."""
    data, train = raw.get("data") or {}, raw.get("train") or {}
    return data_tab.data_key(data.get("train"), fmt, columns_text, mask, skip_bad, raw.get("model"),
                             train.get("max_seq_len"), data.get("split"), data.get("subset"))


def stop_run(run_id: str) -> None:
    """Stop a queued or running run (the page's Stop and the API's /stop_training); ValueError says why not."""
    launcher.stop(run_path(run_id))


def resume_run(run_id: str) -> None:
    """Resume a stopped or failed run from its checkpoint (Resume and /resume_training); ValueError says why not."""
    launcher.resume(run_path(run_id))


def delete_run(run_id: str) -> None:
    """Delete a run's folder (Delete and /delete_run); ValueError while it, an evaluation or a server runs."""
    runs.delete_run(run_path(run_id))


def on_stop(run_id, lang="en"):
    try:
        stop_run(run_id)
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_stop"), reason(err), lang)
    return note_box(tr(TEXT, lang, "stopping", run=run_id))


def on_resume(run_id, lang="en"):
    try:
        resume_run(run_id)
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_resume"), reason(err), lang)
    return note_box(tr(TEXT, lang, "resuming", run=run_id), "ok")


def on_delete_ask(run_id, lang="en"):
    """The first click: say what will go and ask again (nothing is deleted yet)."""
    try:
        refusal = runs.delete_refusal(run_path(run_id))
    except ValueError as err:
        refusal = reason(err)
    if refusal:
        return error_box(tr(TEXT, lang, "cannot_delete"), refusal, lang), gr.update(visible=False)
    return "", gr.update(visible=True)


def on_delete_confirm(run_id, lang="en"):
    try:
        delete_run(run_id)
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_delete"), reason(err), lang), gr.update(visible=False), gr.skip()
    listing = runs.list_runs()
    return note_box(tr(TEXT, lang, "deleted", run=run_id), "ok"), gr.update(visible=False), \
        gr.update(choices=[r["id"] for r in listing], value=listing[0]["id"] if listing else None)


def confirm_text(run_id, lang="en") -> str:
    return tr(TEXT, lang, "confirm_delete", run=run_id or "")


# ---- following runs --------------------------------------------------------------------------
def _loss(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def runs_table(listing: list[dict], lang="en") -> dict:
    """The run history: what each run trained, on which file (as uploaded), when, how it ended."""
    import time

    headers = tr(TEXT, lang, "runs_cols").split("|")
    data = []
    for r in listing:
        notes = [tr(TEXT, lang, "stopped_early")] if r.get("stopped_early") and r["state"] == "done" else []
        notes += [tr(TEXT, lang, "reproduces", run=r["reproduces"])] if r.get("reproduces") else []
        notes += [messages.say(messages.status_error(r), lang)[:120]] if r["state"] == "failed" else []
        data.append([r["id"], r.get("method") or "", r.get("data_file") or "",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])) if r.get("created_at") else "",
                     follow.state_name(r["state"], lang), f"{r['step'] or 0}/{r['max_steps'] or '?'}",
                     _loss(r.get("final_loss")), _loss(r.get("final_eval_loss")), _loss(r.get("best_eval_loss")),
                     "; ".join(n for n in notes if n)])
    return {"headers": headers, "data": data or [[tr(TEXT, lang, "no_runs")] + [""] * (len(headers) - 1)]}


def button_states(run_dir: Path | None, status: dict) -> tuple[dict, dict, dict]:
    """Stop only while a run is queued or running; Resume only where a checkpoint exists and the run is not
    active; Delete only when nothing uses the folder. The same rules the API and the CLI apply."""
    if run_dir is None:
        return (gr.update(interactive=False),) * 3
    return (gr.update(interactive=runs.can_stop(status)),
            gr.update(interactive=runs.resume_refusal(run_dir, status) is None),
            gr.update(interactive=runs.delete_refusal(run_dir) is None))


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
    signature = [lang] + [(r["id"], r["state"], r["step"]) for r in listing]
    table = runs_table(listing, lang) if signature != seen.get("runs") else skip
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
        outs = ("", follow.EMPTY_LOSS, follow.EMPTY_LR, "", "", "", *follow.objective_updates([], lang),
                *button_states(None, {})) if blank else (skip,) * 11
        return (choices, table, *outs, seen)

    status = runs.read_status(run_dir)
    rows = follow.metrics(run_dir)
    log = runs.log_tail(run_dir, 12)
    key = [run_id, lang, len(rows), status.get("state"), status.get("step"), status.get("updated_at")]
    if key == seen.get("key") and log == seen.get("log"):
        return (choices, table, *(skip,) * 11, seen)
    fresh = run_id != seen.get("run") or len(rows) != seen.get("rows")
    seen.update(run=run_id, key=key, log=log, rows=len(rows))
    state = status.get("state")
    failure = follow.failure_lines(status, lang) if state == "failed" else []
    fresh = fresh or lang != seen.get("lang")  # the loss series are named in the page's language
    seen["lang"] = lang
    return (choices, table, follow.progress_html(status, lang),
            follow.loss_frame(rows, lang) if fresh else skip, follow.lr_frame(rows) if fresh else skip,
            follow.numbers_markdown(rows, status, lang),
            error_box(tr(TEXT, lang, "failed", run=run_id), failure, lang) if failure else "",
            log, *(follow.objective_updates(rows, lang) if fresh else (skip, skip)), *button_states(run_dir, status),
            seen)


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
    c.grpo = rewards_view.build()  # GRPO's reward curves and sampled answers (shown for such runs only)
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
    rewards_view.wire(c.grpo, c.follow, lang)
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
    c.timer.tick(tick, [c.follow, c.seen, lang],
                 [c.follow, c.runs, c.progress, c.loss_plot, c.lr_plot, c.numbers, c.failure, c.log, c.rewards_plot,
                  c.logps_plot, c.stop, c.resume, c.delete, c.seen], show_progress="hidden", concurrency_limit=None,
                 **private)


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
    return tuple(c.train_inputs[names.index(("data", name))] for name in ("split", "subset"))


def max_seq_len_input(c: SimpleNamespace):
    """The Data tab previews with the same max_seq_len the run will use."""
    return c.train_inputs[[p.name for _, p in SETTINGS].index("max_seq_len")]
