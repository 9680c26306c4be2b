"""The Evaluate tab's judge: its controls, and how a judged result is shown (engine/evaluation/judge.py).

A judge is optional: left empty, the evaluation is the usual one. With a judge, the evaluation process also
grades every generated answer (rubric) or compares it with the base model's (pairwise, both orders); the
summary line and each example's verdict and reasons are added to what the tab already shows.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from engine.core.messages import Message
from engine.core.security import web_config_problems
from engine.evaluation.judge import MODES, is_endpoint
from ui.common import run_path
from ui.lang import loc, tr

TEXT = {
    "en": {
        "judge": "Judge (optional)",
        "judge_info": "Also grade the answers with a model: an OpenAI-compatible endpoint (http://127.0.0.1:8000/v1, "
                      "e.g. another run served from the Export tab), a finished run's id, or a model (alias or "
                      "folder). Empty: no judge.",
        "mode": "Judge mode", "rubric": "rubric: each answer 1-5 against its reference",
        "pairwise": "pairwise: this run vs its base model, both orders",
        "judge_model": "Endpoint's model name", "judge_model_info": "Empty: the first model the endpoint lists.",
        "rubric_line": "**Judge** {judge}: mean score **{score}** of 5 (95% CI {low}–{high}); {judged} graded, "
                       "{unparsed} unreadable",
        "pairwise_line": "**Judge** {judge}, each pair shown in both orders: win rate of this run over its base "
                         "**{rate}** (95% CI {low}–{high}); {wins} wins, {losses} losses, {ties} split or tie; "
                         "the judge kept its choice when the order was swapped in {consistency} of the examples",
        "score_col": "judge", "reason_col": "judge's reasons", "base_col": "base model's answer",
        "win": "win", "loss": "loss", "split": "split / tie",
    },
    "zh": {
        "judge": "评审模型（可选）",
        "judge_info": "再用一个模型给回答打分：OpenAI 兼容的接口（http://127.0.0.1:8000/v1，例如在“导出”页启动服务的另一个训练）、"
                      "某个已完成训练的 ID，或一个模型（别名或文件夹）。留空：不评审。",
        "mode": "评审方式", "rubric": "评分：每个回答对照参考答案打 1-5 分",
        "pairwise": "成对比较：本次训练对比基础模型，两种顺序各一次",
        "judge_model": "接口的模型名", "judge_model_info": "留空：使用接口列出的第一个模型。",
        "rubric_line": "**评审** {judge}：平均得分 **{score}** / 5（95% 置信区间 {low}–{high}）；{judged} 个已评分，"
                       "{unparsed} 个无法读取",
        "pairwise_line": "**评审** {judge}，每对回答按两种顺序各评一次：本次训练胜过基础模型的胜率 **{rate}**"
                         "（95% 置信区间 {low}–{high}）；{wins} 胜，{losses} 负，{ties} 个一胜一负或平局；"
                         "交换顺序后评审保持选择的比例为 {consistency}",
        "score_col": "评审", "reason_col": "评审理由", "base_col": "基础模型的回答",
        "win": "胜", "loss": "负", "split": "一胜一负 / 平局",
    },
}


def mode_choices(lang="en") -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, mode), mode) for mode in MODES]


def build() -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    with gr.Row():
        c.judge = loc(gr.Textbox("", label=en["judge"], info=en["judge_info"], elem_id="eval-judge", scale=3),
                      TEXT, label="judge", info="judge_info")
        c.mode = loc(gr.Radio(mode_choices(), value="rubric", label=en["mode"], elem_id="eval-judge-mode", scale=2),
                     TEXT, label="mode", choices=mode_choices)
        c.model = loc(gr.Textbox("", label=en["judge_model"], info=en["judge_model_info"], elem_id="eval-judge-model",
                                 scale=1), TEXT, label="judge_model", info="judge_model_info")
    return c


def judge_choice(judge: str, mode: str, model: str = "") -> dict | None:
    """The judge dict an evaluation is started with (None: no judge). A run id from the page becomes its folder;
    a model path must be one this server may read (ValueError otherwise)."""
    judge = (judge or "").strip()
    if not judge:
        return None
    if mode not in MODES:
        raise ValueError(Message("judge.mode", mode=mode))
    if not is_endpoint(judge):
        try:
            judge = str(run_path(judge))
        except ValueError:
            outside = web_config_problems({"model": judge})
            if outside:
                raise ValueError(outside[0]) from None
    return {"judge": judge, "mode": mode, "model": (model or "").strip()}


def _num(value, places: int = 3) -> str:
    return "–" if value is None else f"{value:.{places}f}"


def summary(judged: dict | None, lang="en") -> str:
    if not judged:
        return ""
    values = dict(judge=judged.get("judge"), low=_num(judged.get("ci_low")), high=_num(judged.get("ci_high")),
                  judged=judged.get("judged"), unparsed=judged.get("unparsed"))
    if judged.get("mode") == "pairwise":
        consistency = judged.get("position_consistency")
        return tr(TEXT, lang, "pairwise_line", rate=_num(judged.get("win_rate")), wins=judged.get("wins"),
                  losses=judged.get("losses"), ties=judged.get("split_or_tie"),
                  consistency="–" if consistency is None else f"{consistency:.0%}", **values)
    return tr(TEXT, lang, "rubric_line", score=_num(judged.get("score"), 2), **values)


def verdict_cells(row: dict, lang="en") -> list[str]:
    """[verdict, reasons] (pairwise: also the base model's answer) of one example."""
    verdict = row.get("judge") or {}
    if "verdicts" in verdict:
        points = verdict.get("run_points")
        word = "–" if points is None else tr(TEXT, lang, "win" if points == 1 else "loss" if points == 0 else "split")
        reasons = "\n\n".join(f"[{v['order']}] {v['reply']}" for v in verdict["verdicts"])
        return [row.get("base_generated", ""), word, reasons]
    return ["–" if verdict.get("score") is None else str(verdict["score"]), verdict.get("reply", "")]


def extra_headers(result: dict | None, lang="en") -> list[str]:
    judged = (result or {}).get("judge")
    if not judged:
        return []
    cols = [tr(TEXT, lang, "score_col"), tr(TEXT, lang, "reason_col")]
    return [tr(TEXT, lang, "base_col"), *cols] if judged.get("mode") == "pairwise" else cols
