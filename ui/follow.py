"""Following a run from its folder: metrics tails, chart data, progress bar, numbers.

One `MetricsTail` per run lives for the life of the UI process, so each timer tick reads only
the bytes appended since the last one, whichever browser tab asks.
"""
from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import gradio as gr
import pandas as pd

from engine.core import runs
from engine.core.jobs import RunState
from ui import messages
from ui.common import progress_bar
from ui.lang import tr
from ui.states import state_name

TEXT = {
    "en": {"step": "step", "elapsed": "elapsed", "eta": "ETA", "stopped_early": "stopped early (result saved)",
           "train_loss": "train loss", "eval_loss": "eval loss", "learning_rate": "learning rate",
           "base_eval_loss": "base model (eval)",
           "tokens_per_second": "tokens/s", "peak_memory": "peak memory", "trainable": "trainable params",
           "try": "Try: {advice}", "memory": "memory: estimated / measured peak"},
    "zh": {"step": "步", "elapsed": "已用", "eta": "预计剩余", "stopped_early": "已提前停止（结果已保存）",
           "train_loss": "训练损失", "eval_loss": "验证损失", "learning_rate": "学习率",
           "base_eval_loss": "基础模型（验证）",
           "tokens_per_second": "词元/秒", "peak_memory": "峰值内存", "trainable": "可训练参数",
           "try": "建议：{advice}", "memory": "内存：估算 / 实测峰值"},
}

@dataclass
class RunView:
    """One timer tick's changes to the Train tab's view of its runs, by name; a field left alone is gr.skip()
    (nothing re-sent). `outputs` pairs the fields with the tab's components, as Gradio takes a dict."""
    choices: object = field(default_factory=gr.skip)  # the run picker's choices
    runs: object = field(default_factory=gr.skip)  # the runs table
    progress: object = field(default_factory=gr.skip)
    loss_plot: object = field(default_factory=gr.skip)
    lr_plot: object = field(default_factory=gr.skip)
    numbers: object = field(default_factory=gr.skip)
    failure: object = field(default_factory=gr.skip)
    log: object = field(default_factory=gr.skip)
    rewards_plot: object = field(default_factory=gr.skip)
    logps_plot: object = field(default_factory=gr.skip)
    grpo_rewards: object = field(default_factory=gr.skip)  # GRPO's view (ui/rewards_view.py)
    grpo_other: object = field(default_factory=gr.skip)
    grpo_samples: object = field(default_factory=gr.skip)
    stop: object = field(default_factory=gr.skip)
    resume: object = field(default_factory=gr.skip)
    delete: object = field(default_factory=gr.skip)
    timer: object = field(default_factory=gr.skip)  # the tab's timer, slower while no run is active
    seen: dict = field(default_factory=dict)  # what this browser has been sent (gr.State)

    # the component of the Train tab each field updates (attribute names of its SimpleNamespace)
    COMPONENTS = {"choices": "follow"}

    @classmethod
    def component_names(cls) -> list[str]:
        return [cls.COMPONENTS.get(f.name, f.name) for f in fields(cls)]

    def outputs(self, tab) -> dict:
        return {getattr(tab, self.COMPONENTS.get(f.name, f.name)): getattr(self, f.name) for f in fields(self)}


_TAILS: dict[str, runs.MetricsTail] = {}
_LOCK = threading.Lock()
# "no points yet" is None: a LinePlot first given an empty frame with a color column stays blank
# even after real data arrives (seen with Gradio 6.31)
EMPTY_LOSS = EMPTY_LR = None


def _tail(run_dir: Path) -> runs.MetricsTail:
    """The run's tail, with the lines appended since the last poll read (call under _LOCK)."""
    key = str(run_dir)
    tail = _TAILS.get(key)
    if tail is None:
        tail = _TAILS[key] = runs.MetricsTail(Path(run_dir) / "metrics.jsonl")
    tail.poll()
    return tail


def metrics(run_dir: Path) -> list[dict]:
    with _LOCK:
        return list(_tail(run_dir).rows)


def latest(run_dir: Path) -> tuple[dict | None, dict | None, int]:
    """(last train row, last eval row, number of train rows): what a status read needs, from the bytes appended
    since the last read, without copying the run's rows."""
    with _LOCK:
        rows = _tail(run_dir).rows
        train = next((r for r in reversed(rows) if "loss" in r), None)
        held_out = next((r for r in reversed(rows) if "eval_loss" in r), None)
        return train, held_out, sum(1 for r in rows if "loss" in r)


def loss_colors(lang="en") -> dict:
    """The loss plot's colours, keyed by the series names of the page's language."""
    return {tr(TEXT, lang, "train_loss"): "#2563eb", tr(TEXT, lang, "eval_loss"): "#f97316",
            tr(TEXT, lang, "base_eval_loss"): "#94a3b8"}


def loss_frame(rows: list[dict], lang="en", base_eval_loss: float | None = None) -> pd.DataFrame | None:
    """Train and eval loss by step; the base model's eval loss (status.json base_eval_loss) as a flat line across
    the steps shown, the level the eval loss has to get below."""
    train, held_out = tr(TEXT, lang, "train_loss"), tr(TEXT, lang, "eval_loss")
    points = [(r["step"], r["loss"], train) for r in rows if r.get("loss") is not None]
    points += [(r["step"], r["eval_loss"], held_out) for r in rows if r.get("eval_loss") is not None]
    if points and base_eval_loss is not None:
        steps = [step for step, _, _ in points]
        points += [(step, base_eval_loss, tr(TEXT, lang, "base_eval_loss")) for step in (min(steps), max(steps))]
    return pd.DataFrame(points, columns=["step", "loss", "series"]) if points else EMPTY_LOSS


# a preference objective's metrics (TRL's names, engine/training/objectives.py) -> the series shown
REWARD_SERIES = {"rewards/margins": "reward margin", "rewards/accuracies": "reward accuracy",
                 "rewards/chosen": "chosen reward", "rewards/rejected": "rejected reward"}
LOGP_SERIES = {"logps/chosen": "chosen log-prob", "logps/rejected": "rejected log-prob"}
SERIES_ZH = {"reward margin": "奖励间隔", "reward accuracy": "奖励准确率", "chosen reward": "选中回答奖励",
             "rejected reward": "被拒回答奖励", "chosen log-prob": "选中回答对数概率",
             "rejected log-prob": "被拒回答对数概率", "eval": "验证"}


def _series_name(name: str, held_out: bool, lang: str) -> str:
    if lang == "zh":
        return ("验证 " if held_out else "") + SERIES_ZH[name]
    return ("eval " if held_out else "") + name


def metric_frame(rows: list[dict], series: dict, lang="en") -> pd.DataFrame | None:
    """Long-format points (step, value, series) of the given metrics, training and held-out (eval_ prefix)."""
    points = [(r["step"], r[prefix + key], _series_name(name, bool(prefix), lang))
              for r in rows for key, name in series.items() for prefix in ("", "eval_")
              if r.get(prefix + key) is not None]
    return pd.DataFrame(points, columns=["step", "value", "series"]) if points else None


def objective_updates(rows: list[dict], lang="en") -> tuple:
    """The rewards and log-prob plots: shown, with their points, only for runs that log them."""
    frames = (metric_frame(rows, REWARD_SERIES, lang), metric_frame(rows, LOGP_SERIES, lang))
    return tuple(gr.update(value=frame, visible=frame is not None) for frame in frames)


def lr_frame(rows: list[dict]) -> pd.DataFrame | None:
    points = [(r["step"], r["learning_rate"]) for r in rows if r.get("learning_rate") is not None]
    return pd.DataFrame(points, columns=["step", "learning rate"]) if points else EMPTY_LR


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def progress_html(status: dict, lang="en") -> str:
    state = status.get("state", "unknown")
    step, total = status.get("step") or 0, status.get("max_steps") or 0
    elapsed = status.get("elapsed_s")
    if state in runs.ACTIVE and status.get("started_at") and elapsed is None:
        elapsed = time.time() - status["started_at"]
    fraction = min(1.0, step / total) if total else (1.0 if state == RunState.DONE else 0.0)
    eta = elapsed / step * (total - step) if elapsed and step and total and state in runs.ACTIVE else None
    parts = [f"<b>{html.escape(state_name(state, lang))}</b>", f"{tr(TEXT, lang, 'step')} {step}/{total or '?'}",
             f"{fraction:.0%}", f"{tr(TEXT, lang, 'elapsed')} {duration(elapsed)}"]
    if eta is not None:
        parts.append(f"{tr(TEXT, lang, 'eta')} {duration(eta)}")
    if status.get("stopped_early"):
        parts.append(tr(TEXT, lang, "stopped_early"))
    return progress_bar(fraction, state, " · ".join(parts))


def numbers_markdown(rows: list[dict], status: dict, lang="en") -> str:
    train = [r for r in rows if r.get("loss") is not None]
    evals = [r for r in rows if r.get("eval_loss") is not None]
    last = train[-1] if train else {}
    cells = [
        ("train_loss", f"{last['loss']:.4f}" if train else "–"),
        ("eval_loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "–"),
        ("learning_rate", f"{last['learning_rate']:.2e}" if last.get("learning_rate") is not None else "–"),
        ("tokens_per_second",
         f"{last['tokens_per_second']:,.0f}" if last.get("tokens_per_second") is not None else "–"),
        ("memory", memory_cell(rows, status)),
    ]
    if status.get("trainable_params"):
        cells.append(("trainable", f"{status['trainable_params']:,}"))
    return "| " + " | ".join(tr(TEXT, lang, k) for k, _ in cells) + " |\n|" + "---|" * len(cells) + "\n| " + \
        " | ".join(v for _, v in cells) + " |"


def memory_cell(rows: list[dict], status: dict) -> str:
    """The estimate made at launch beside the measured peak, both in GiB. The estimate compared is the peak the
    trainer's measurement should read (engine/estimate: peak_bytes; on a GPU without the allocator's reserve)."""
    peak = max((r.get("peak_memory_bytes") or 0 for r in rows), default=0)
    last = rows[-1] if rows else {}
    estimate = status.get("estimate_peak_bytes") or last.get("estimate_peak_bytes") or status.get("estimate_bytes") \
        or last.get("estimate_bytes")
    cells = [f"{estimate / 2**30:.2f}" if estimate else "–", f"{peak / 2**30:.2f}" if peak else "–"]
    return " / ".join(cells) + " GiB"


def warning_lines(status: dict, lang="en") -> list[str]:
    """What a run reported about itself that the user should act on, in the page's language: it is diverging
    (engine/training/divergence.py), or its eval loss ended above the base model's
    (engine/training/base_reference.py)."""
    return [messages.say(status[key], lang) for key in ("diverging", "worse_than_base") if status.get(key)]


def failure_lines(status: dict, lang="en") -> list[str]:
    """Why a run failed and what to try, in the page's language (status.json keeps the message codes)."""
    error = messages.status_error(status)
    lines = [messages.say(error, lang)] if error else []
    failure = status.get("failure") or {}
    advice = failure.get("advice_i18n") or failure.get("advice") or []
    return lines + [tr(TEXT, lang, "try", advice=messages.say(a, lang)) for a in advice]
