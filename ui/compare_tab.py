"""Compare tab: several runs' loss curves on one plot, the settings that differ, their final numbers.

All of it comes from the run folders through engine/evaluation/compare.py (pure, tested there).
"""
from __future__ import annotations

import html
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from engine.core import runs
from engine.evaluation import compare
from ui import follow, messages
from ui.common import reason, run_path
from ui.lang import loc, tr

EMPTY = {"headers": ["—"], "data": [[""]]}

TEXT = {
    "en": {
        "runs": "Runs to compare", "runs_info": "Pick two or more runs (finished or still going).",
        "x": "X axis", "x_info": "Loss by optimizer step, or by tokens trained on (fair across batch sizes).",
        "by_step": "step", "by_tokens": "tokens seen",
        "refresh": "↻ Refresh", "plot": "Loss (train and eval) of each run",
        "settings": "Settings that differ", "numbers": "Final numbers",
        "same": "These runs have the same settings.",
        "pick": "Pick runs above to compare them.",
        "bad": "Could not read a run",
        "cols": "run|state|steps|final train loss|final eval loss|eval perplexity|ROUGE-L|BLEU|wall time|"
                "peak memory|tokens seen",
        "setting": "setting",
        "x_step": "step", "x_tokens": "tokens", "loss": "loss", "series": "series", "train": "train", "eval": "eval",
    },
    "zh": {
        "runs": "要对比的训练", "runs_info": "选择两个或更多训练（已完成或仍在进行）。",
        "x": "横轴", "x_info": "按优化步数，或按已训练的词元数（不同批大小之间更公平）显示损失。",
        "by_step": "步数", "by_tokens": "已训练词元数",
        "refresh": "↻ 刷新", "plot": "各训练的损失（训练与评估）",
        "settings": "不同的设置", "numbers": "最终指标",
        "same": "这些训练的设置完全相同。",
        "pick": "在上方选择训练来对比。",
        "bad": "无法读取训练",
        "cols": "训练|状态|步数|最终训练损失|最终评估损失|评估困惑度|ROUGE-L|BLEU|用时|峰值内存|已训练词元",
        "setting": "设置项",
        "x_step": "步数", "x_tokens": "词元数", "loss": "损失", "series": "曲线", "train": "训练", "eval": "验证",
    },
}


def run_choices() -> list[str]:
    return [r["id"] for r in runs.list_runs()]


def x_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(tr(TEXT, lang, "x_step"), "step"), (tr(TEXT, lang, "x_tokens"), "tokens")]


def series_name(series: str, lang="en") -> str:
    """'<run> train' / '<run> eval' (engine/evaluation/compare.py) in the page's language."""
    run, _, kind = series.rpartition(" ")
    return f"{run} {tr(TEXT, lang, kind)}" if run and kind in ("train", "eval") else series


def build_view(run_ids, x="step", lang="en"):
    """(plot frame or None, x axis title, settings table, numbers table, note)."""
    run_ids = [r for r in (run_ids or []) if r]
    if not run_ids:
        return None, tr(TEXT, lang, "by_step"), EMPTY, EMPTY, tr(TEXT, lang, "pick")
    try:
        view = compare.compare([run_path(r) for r in run_ids], x)
    except ValueError as err:
        return None, gr.skip(), EMPTY, EMPTY, f"{tr(TEXT, lang, 'bad')}: {messages.say(reason(err), lang)}"
    points = [(x_value, loss, series_name(series, lang)) for x_value, loss, series in view["points"]]
    frame = pd.DataFrame(points, columns=["x", "loss", "series"]) if points else None
    headers, rows = view["settings"]["headers"], view["settings"]["rows"]
    settings = {"headers": [tr(TEXT, lang, "setting"), *headers[1:]], "data": rows} if rows else EMPTY
    _, table = compare.summary_table(view["summaries"])
    table = [[cell if i != 1 else follow.state_name(cell, lang) for i, cell in enumerate(row)] for row in table]
    numbers = {"headers": tr(TEXT, lang, "cols").split("|"), "data": table}
    note = tr(TEXT, lang, "same") if len(run_ids) > 1 and not rows else ""
    return frame, tr(TEXT, lang, "by_tokens" if x == "tokens" else "by_step"), settings, numbers, note


def on_compare(run_ids, x, lang="en"):
    """Both plots get their data (by step and by tokens); the X axis choice shows one of them.

    (One plot whose x values change in place kept its old x domain in Gradio 6.31.) Gradio 6.31's plot keeps the
    series it was first drawn with when only its data changes: a run added to the choice was drawn late or not at
    all. So the plots are emptied first, then drawn anew with every chosen run, each series with its colour
    (`series_colors`); the legend is ours, below the plot, wrapping to fit (`legend_html`; the plot's own cut long
    run names off)."""
    by_step, _, settings, numbers, note = build_view(run_ids, "step", lang)
    by_tokens = build_view(run_ids, "tokens", lang)[0]
    colors = series_colors([r for r in (run_ids or []) if r], by_step)
    yield gr.update(value=None), gr.update(value=None), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    yield gr.update(value=by_step, visible=x != "tokens", color_map=colors), \
        gr.update(value=by_tokens, visible=x == "tokens", color_map=colors), settings, numbers, note, \
        legend_html(colors)


PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777")


def _lighter(color: str, amount: float = 0.45) -> str:
    """The colour mixed with white (a run's eval loss beside its train loss)."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def series_colors(run_ids: list[str], frame) -> dict:
    """{series: colour} for the plotted series: one colour per run, its eval loss a lighter shade of it."""
    if frame is None:
        return {}
    colors = {}
    for name in dict.fromkeys(frame["series"]):
        index = next((i for i, run in enumerate(run_ids) if name.startswith(run + " ")), len(colors))
        base = PALETTE[index % len(PALETTE)]
        colors[name] = _lighter(base) if name.endswith(" eval") else base
    return colors


def legend_html(colors: dict) -> str:
    """Every series with its colour, wrapping within the page's width (never cut off)."""
    items = "".join(f"<span><i style='background:{color}'></i>{html.escape(name)}</span>"
                    for name, color in colors.items())
    return f"<div class='tl-legend' id='compare-legend'>{items}</div>" if items else ""


def refresh(current):
    choices = run_choices()
    return gr.update(choices=choices, value=[r for r in (current or []) if r in choices])


def build() -> SimpleNamespace:
    en = TEXT["en"]
    c = SimpleNamespace()
    with gr.Row():
        c.runs = loc(gr.Dropdown(run_choices(), value=[], multiselect=True, label=en["runs"], info=en["runs_info"],
                                 elem_id="compare-runs", scale=4), TEXT, label="runs", info="runs_info")
        c.x = loc(gr.Radio(x_choices("en"), value="step", label=en["x"], info=en["x_info"],
                           elem_id="compare-x", scale=2), TEXT, label="x", info="x_info", choices=x_choices)
        c.refresh = loc(gr.Button(en["refresh"], scale=0, size="sm"), TEXT, value="refresh")
    c.note = gr.Markdown("", elem_id="compare-note")
    # colors_in_legend=[]: no legend inside the plot (it cut long run names off); `c.legend` lists them all
    axes = dict(y_title="loss", color_title="series")  # the y axis and legend titles, in the page's language
    c.plot = loc(gr.LinePlot(None, x="x", y="loss", color="series", title=en["plot"], x_title=en["by_step"],
                             y_title=en["loss"], color_title=en["series"], elem_id="compare-plot", height=320,
                             colors_in_legend=[]), TEXT, title="plot", x_title="by_step", **axes)
    c.plot_tokens = loc(gr.LinePlot(None, x="x", y="loss", color="series", title=en["plot"], x_title=en["by_tokens"],
                                    y_title=en["loss"], color_title=en["series"], elem_id="compare-plot-tokens",
                                    height=320, visible=False, colors_in_legend=[]),
                        TEXT, title="plot", x_title="by_tokens", **axes)
    c.legend = gr.HTML("", elem_id="compare-legend-box")
    c.numbers = loc(gr.Dataframe(EMPTY, label=en["numbers"], interactive=False, wrap=True, elem_id="compare-numbers"),
                    TEXT, label="numbers")
    c.settings = loc(gr.Dataframe(EMPTY, label=en["settings"], interactive=False, wrap=True,
                                  elem_id="compare-settings"), TEXT, label="settings")
    return c


def wire(c: SimpleNamespace, lang) -> None:
    private = dict(api_visibility="private")
    show = dict(fn=on_compare, inputs=[c.runs, c.x, lang],
                outputs=[c.plot, c.plot_tokens, c.settings, c.numbers, c.note, c.legend], **private)
    c.runs.change(**show)
    c.x.change(**show)
    lang.change(**show, show_progress="hidden")  # the series names and the state column, in the page's language
    c.refresh.click(refresh, c.runs, c.runs, **private).then(**show)
