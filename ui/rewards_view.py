"""The Train tab's GRPO view: reward curves (the mean total reward and each reward's mean, training and held-out),
answer length and KL, and the table of sampled prompts, answers and their rewards (RUN/completions.jsonl).

Shown only for runs that log rewards; it follows the run the Train tab follows, on that tab's timer (one event a
tick for the whole tab: each event costs the browser time), and reads the run folder only (metrics.jsonl,
completions.jsonl).
"""
from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from ui.lang import loc, tr

COMPLETIONS_FILE = "completions.jsonl"  # written by engine/training/grpo.py
TABLE_ROWS = 24  # the latest sampled answers shown
TEXT = {
    "en": {"rewards": "Rewards (GRPO)", "length_kl": "Answer length and KL", "samples": "Sampled answers",
           "step": "step", "value": "value", "series": "series", "total": "mean total reward",
           "length": "answer length",
           "kl": "KL to the start", "eval": "eval", "prompt": "prompt", "answer": "answer", "reward": "reward"},
    "zh": {"rewards": "奖励（GRPO）", "length_kl": "回答长度与 KL", "samples": "采样的回答",
           "step": "步", "value": "数值", "series": "曲线", "total": "平均总奖励", "length": "回答长度",
           "kl": "与初始模型的 KL", "eval": "验证", "prompt": "提示", "answer": "回答", "reward": "奖励"},
}


def _name(text: str, held_out: bool, lang: str) -> str:
    return (tr(TEXT, lang, "eval") + " " if held_out else "") + text


def reward_frame(rows: list[dict], lang="en") -> pd.DataFrame | None:
    """The mean total reward and each reward's mean (TRL's rewards/<name>/mean), training and held-out."""
    points = []
    for r in rows:
        for prefix in ("", "eval_"):
            if r.get(prefix + "reward") is not None:
                points.append((r["step"], r[prefix + "reward"], _name(tr(TEXT, lang, "total"), bool(prefix), lang)))
            for key, value in r.items():
                if key.startswith(prefix + "rewards/") and key.endswith("/mean") and value is not None:
                    name = key[len(prefix + "rewards/"):-len("/mean")]
                    points.append((r["step"], value, _name(name, bool(prefix), lang)))
    return pd.DataFrame(points, columns=["step", "value", "series"]) if points else None


def length_kl_frame(rows: list[dict], lang="en") -> pd.DataFrame | None:
    series = {"completions/mean_length": "length", "kl": "kl"}
    points = [(r["step"], r[prefix + key], _name(tr(TEXT, lang, name), bool(prefix), lang))
              for r in rows for key, name in series.items() for prefix in ("", "eval_")
              if r.get(prefix + key) is not None]
    return pd.DataFrame(points, columns=["step", "value", "series"]) if points else None


def samples(run_dir, lang="en", limit: int = TABLE_ROWS) -> pd.DataFrame:
    """The latest sampled answers, newest first: step, prompt, answer, total reward, then each reward."""
    path = run_dir / COMPLETIONS_FILE
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line being written
                continue
    names = list(dict.fromkeys(name for r in rows for name in r.get("rewards", {})))
    header = [tr(TEXT, lang, k) for k in ("step", "prompt", "answer", "reward")] + names
    body = [[r.get("step"), r.get("prompt", ""), r.get("completion", ""), r.get("reward")]
            + [r.get("rewards", {}).get(n) for n in names] for r in reversed(rows)]
    return pd.DataFrame(body, columns=header)


def answers_written(run_dir) -> int:
    """How much of RUN/completions.jsonl is written (its size): the Train tab's tick re-sends the view when it grows."""
    try:
        return (run_dir / COMPLETIONS_FILE).stat().st_size
    except OSError:
        return 0


def updates(run_dir, rows: list[dict], lang="en") -> dict:
    """The view's updates for the followed run (its metrics rows already read), by the Train tab's RunView field:
    hidden unless the run logs rewards. Sent by that tab's tick when the run's rows, the run or the language change."""
    frame = reward_frame(rows, lang) if run_dir is not None else None
    if frame is None:
        return dict.fromkeys(("grpo_rewards", "grpo_other", "grpo_samples"), gr.update(visible=False))
    other = length_kl_frame(rows, lang)
    return {"grpo_rewards": gr.update(value=frame, visible=True),
            "grpo_other": gr.update(value=other, visible=other is not None),
            "grpo_samples": gr.update(value=samples(run_dir, lang), visible=True)}


def build():
    """The view's components, placed where it is called inside the Train tab's layout (wired by `wire`)."""
    en = TEXT["en"]
    with gr.Row():
        plot = loc(gr.LinePlot(None, x="step", y="value", color="series", title=en["rewards"], elem_id="grpo-rewards",
                               height=260, visible=False, x_title=en["step"], y_title=en["value"],
                               color_title=en["series"]),
                   TEXT, title="rewards", x_title="step", y_title="value", color_title="series")
        other = loc(gr.LinePlot(None, x="step", y="value", color="series", title=en["length_kl"],
                                elem_id="grpo-length-kl", height=260, visible=False, x_title=en["step"],
                                y_title=en["value"], color_title=en["series"]),
                    TEXT, title="length_kl", x_title="step", y_title="value", color_title="series")
    table = loc(gr.Dataframe(None, label=en["samples"], elem_id="grpo-samples", visible=False, wrap=True,
                             interactive=False), TEXT, label="samples")
    return plot, other, table
