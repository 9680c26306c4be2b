"""The live memory estimate on the Train tab: a stacked bar against the device, a verdict, and
one-click changes that would fit.

The estimate is engine.estimate.options.ui_summary: pure arithmetic on the model's structure (no
weights, no torch), so it runs on every change of model, method or hyperparameter. The structure of a
model not seen before is read by a child process (`python -m engine model describe`); meanwhile the
panel says so, shows no number, and a timer asks again every second until it is there.
"""
from __future__ import annotations

import html
from types import SimpleNamespace

import gradio as gr

from engine.core.device import detect
from engine.core.security import web_config_problems
from engine.estimate import ui_summary
from ui import messages
from ui.lang import loc, norm, tr

MAX_OPTIONS = 4
COLORS = {
    "framework": "#94a3b8", "frozen_weights": "#64748b", "trainable_weights": "#2563eb",
    "master_weights": "#1d4ed8", "weight_copies": "#60a5fa", "gradients": "#7c3aed", "optimizer": "#a855f7",
    "activations": "#f97316", "logits_loss": "#ef4444", "teacher": "#0d9488", "reference": "#14b8a6",
    "generation": "#c026d3",
    "temporary": "#eab308", "fragmentation": "#d1d5db",
}
VERDICT_COLORS = {"fits": "#16a34a", "tight": "#d97706", "does not fit": "#dc2626", "unknown": "#6b7280"}

TEXT = {
    "en": {
        "title": "Memory estimate", "options": "Cheaper settings that would fit (one click applies them):",
        "trainable": "{trainable} trainable of {total} parameters ({pct})",
        "fits": "fits", "tight": "tight", "does not fit": "does not fit", "unknown": "unknown",
        "of": "{need} of {have} available on {device}", "none_fit": "No single change makes it fit; combine "
        "them or pick a smaller model.", "no_estimate": "No estimate yet: {error}",
        "pending": "Reading the model's structure (its layers and linear layers, from its config; no weights "
                   "are loaded)… the estimate follows in a few seconds.",
        "structure": "Model: {structure}",
        "framework": "Framework / CUDA context", "frozen_weights": "Frozen weights",
        "trainable_weights": "Trainable parameters", "master_weights": "Master weights (fp32)",
        "weight_copies": "Half-precision weight copies", "gradients": "Gradients", "optimizer": "Optimizer states",
        "activations": "Activations", "logits_loss": "Logits and loss", "teacher": "Teacher model (distillation)",
        "reference": "Reference model (preference)", "temporary": "Temporary buffers",
        "generation": "Generation (sampled answers)",
        "fragmentation": "Allocator allowance",
        "framework_cpu": "Framework (Python, torch, libraries)",
        "basis_padded": "Sized for the longest batch of your data: {rows} rows × {row} tokens (each row padded to "
                        "its batch's longest example), not every row at max_seq_len {max}.",
        "basis_packed": "Sized for the longest batch of your data: {tokens} tokens (its {rows} longest examples "
                        "packed into one row, no padding), not {rows} × max_seq_len {max}.",
        "basis_worst": "Worst case: every row at max_seq_len ({rows} rows × {max} tokens). Once the Data tab has "
                       "checked the data, its real lengths are used.",
        "quantized_above": "Why the 4-bit base costs more here than an unquantised one ({plain}): {why}",
        "why_loading": "while the model loads, the full-precision checkpoint is read as its weights are quantised. "
                       "With this batch that moment is the peak, and it outweighs what the 4-bit weights save; the "
                       "saving shows with larger batches or models.",
        "why_other": "each 4-bit weight is de-quantised for its matrix product (a temporary copy), which outweighs "
                     "what the 4-bit weights save at this size.",
    },
    "zh": {
        "title": "显存/内存估算", "options": "可以放得下的更省内存的设置（点击即可应用）：",
        "trainable": "可训练参数 {trainable} / 共 {total}（{pct}）",
        "fits": "放得下", "tight": "偏紧", "does not fit": "放不下", "unknown": "未知",
        "of": "需要 {need}，{device} 可用 {have}", "none_fit": "单项修改都不够；请组合几项，或换更小的模型。",
        "no_estimate": "暂无估算：{error}",
        "pending": "正在读取模型结构（从配置读取各层与线性层，不加载权重）……几秒后显示估算。",
        "structure": "模型：{structure}",
        "framework": "框架 / CUDA 上下文", "frozen_weights": "冻结的权重", "trainable_weights": "可训练参数",
        "master_weights": "主权重（fp32）", "weight_copies": "半精度权重副本", "gradients": "梯度",
        "optimizer": "优化器状态", "activations": "激活值", "logits_loss": "logits 与损失",
        "teacher": "教师模型（蒸馏）",
        "reference": "参考模型（偏好训练）", "temporary": "临时缓冲区", "fragmentation": "分配器余量",
        "generation": "生成（采样回答）",
        "framework_cpu": "框架（Python、torch 和各库）",
        "basis_padded": "按你的数据中最长的批次估算：{rows} 行 × {row} 个词元（每行填充到该批次最长的样例），"
                        "而不是每行都按最大序列长度 {max}。",
        "basis_packed": "按你的数据中最长的批次估算：{tokens} 个词元（最长的 {rows} 个样例打包成一行，无填充），"
                        "而不是 {rows} × 最大序列长度 {max}。",
        "basis_worst": "最坏情况：每行都按最大序列长度（{rows} 行 × {max} 个词元）。数据页检查过数据后，"
                       "会按数据的实际长度估算。",
        "quantized_above": "为什么这里 4 位基座比不量化的基座（{plain}）更占内存：{why}",
        "why_loading": "加载模型时，会一边读取全精度检查点一边量化权重。在这个批大小下，这一刻就是峰值，"
                       "超过了 4 位权重省下的内存；批次或模型更大时才能看到节省。",
        "why_other": "每个 4 位权重在做矩阵乘法时都要反量化（一份临时副本），在这个规模下超过了 4 位权重省下的内存。",
    },
}


def gib(n: float) -> str:
    return f"{n / 1024 ** 3:.2f} GiB"


def label(key: str, device: dict, lang: str) -> str:
    """A component's name for the device the run trains on (a CPU run has no CUDA context)."""
    if key == "framework" and (device or {}).get("kind") != "cuda":
        return tr(TEXT, lang, "framework_cpu")
    return tr(TEXT, lang, key)


def basis_line(details: dict, lang: str) -> str:
    """Which lengths the estimate rests on: the data's longest batch, or every row at max_seq_len."""
    rows = details.get("batch_rows", 0) * details.get("sequences", 1)
    if details.get("length_basis") != "data":
        return tr(TEXT, lang, "basis_worst", rows=rows, max=details.get("max_seq_len"))
    if details.get("packing"):
        return tr(TEXT, lang, "basis_packed", tokens=f"{details.get('tokens_per_micro_batch', 0):,}",
                  rows=details.get("batch_rows"), max=details.get("max_seq_len"))
    return tr(TEXT, lang, "basis_padded", rows=rows, row=details.get("row_tokens"), max=details.get("max_seq_len"))


def quantized_note(details: dict, lang: str) -> str:
    """Why a 4-bit base is estimated above the same run on an unquantised base ("" when it is not)."""
    above = details.get("quantized_above")
    if not above:
        return ""
    why = tr(TEXT, lang, "why_loading" if above.get("phase") == "loading" else "why_other")
    return tr(TEXT, lang, "quantized_above", plain=gib(above["unquantised_bytes"]), why=why)


def render(summary: dict, lang: str) -> str:
    """The stacked bar (HTML) for one estimate."""
    if summary.get("pending"):
        return f"<div class='tl-estimate' id='memory-estimate-pending'>{html.escape(tr(TEXT, lang, 'pending'))}</div>"
    if not summary.get("ok"):
        error = messages.say(summary.get("error") or "", lang)
        return f"<div class='tl-estimate'>{html.escape(tr(TEXT, lang, 'no_estimate', error=error))}</div>"
    total, available = summary["total_bytes"], summary.get("available_bytes") or 0
    scale = max(total, available, 1)
    device = summary.get("device") or {}
    segments = "".join(
        f"<div title='{html.escape(label(c['key'], device, lang))}: {gib(c['bytes'])}' "
        f"style='width:{100 * c['bytes'] / scale:.3f}%;background:{COLORS.get(c['key'], '#999')}'></div>"
        for c in summary["components"] if c["bytes"] > 0)
    marker = (f"<div class='tl-capacity' style='left:{100 * available / scale:.2f}%'></div>" if available else "")
    legend = "".join(
        f"<span><i style='background:{COLORS.get(c['key'], '#999')}'></i>{html.escape(label(c['key'], device, lang))} "
        f"{gib(c['bytes'])}</span>" for c in summary["components"] if c["bytes"] > 0)
    verdict = summary.get("verdict", "unknown")
    headline = tr(TEXT, lang, "of", need=gib(total), have=gib(available),
                  device=messages.say(device.get("name", "?"), lang))
    params = tr(TEXT, lang, "trainable", trainable=f"{summary['trainable_params']:,}",
                total=f"{summary['total_params']:,}",
                pct=f"{100 * summary['trainable_params'] / max(summary['total_params'], 1):.3f}%")
    details = summary.get("details") or {}
    basis = f"<div class='tl-params' id='estimate-basis'>{html.escape(basis_line(details, lang))}</div>"
    why = quantized_note(details, lang)  # the page's own text, already in `lang`
    notes = (f"<li>{html.escape(why)}</li>" if why else "") + \
        "".join(f"<li>{messages.say_html(n, lang)}</li>" for n in summary.get("notes") or [])
    structure = tr(TEXT, lang, "structure", structure=messages.say(summary["structure"], lang)) \
        if summary.get("structure") else ""
    notes_list = f"<ul class='tl-notes'>{notes}</ul>" if notes else ""
    colour = VERDICT_COLORS.get(verdict, "#6b7280")
    return f"""<div class='tl-estimate' id='memory-estimate'>
<div class='tl-head'><b>{html.escape(tr(TEXT, lang, 'title'))}</b>
<span class='tl-verdict' style='background:{colour}'>{html.escape(tr(TEXT, lang, verdict))}</span>
<span>{html.escape(headline)}</span></div>
<div class='tl-membar'>{segments}{marker}</div>
<div class='tl-legend'>{legend}</div>
<div class='tl-params'>{html.escape(params)}</div>{basis}
<div class='tl-params' id='model-structure'>{html.escape(structure)}</div>{notes_list}
</div>"""


CSS = """
.tl-estimate{font-size:13px;padding:8px 4px}
.tl-head{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin-bottom:6px}
.tl-verdict{color:white;border-radius:4px;padding:1px 8px;font-weight:600}
.tl-membar{position:relative;display:flex;height:22px;border-radius:4px;overflow:visible;
  background:var(--background-fill-secondary);border:1px solid var(--border-color-primary)}
.tl-membar>div:not(.tl-capacity){height:100%}
.tl-capacity{position:absolute;top:-4px;bottom:-4px;width:2px;background:var(--body-text-color)}
.tl-legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:6px;color:var(--body-text-color)}
.tl-legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.tl-params{margin-top:4px;color:var(--body-text-color-subdued)}
.tl-notes{margin:4px 0 0 18px;color:var(--body-text-color-subdued)}
"""


def build(initial: dict) -> SimpleNamespace:
    """The panel, showing the estimate for `initial` (a config dict) until the first change."""
    c = SimpleNamespace(device=detect())
    first = ui_summary(initial, c.device)
    c.bar = gr.HTML(render(first, "en"), elem_id="estimate-panel")
    c.timer = gr.Timer(1.0, active=bool(first.get("pending")))  # asks again while the structure is being read
    c.options_note = loc(gr.Markdown(TEXT["en"]["options"], visible=False), TEXT, value="options")
    with gr.Row():
        c.buttons = [gr.Button("", visible=False, size="sm", elem_id=f"estimate-option-{i}")
                     for i in range(MAX_OPTIONS)]
    c.options = gr.State([])
    return c


def compute(c: SimpleNamespace, raw: dict, data=None) -> dict:
    """The estimate for one config dict; `data`: the data's token lengths (engine/estimate/lengths.py), when known."""
    outside = web_config_problems({"model": raw.get("model")})  # read no config.json the server may not read
    if outside:
        return {"ok": False, "error": outside[0], "components": [], "options": []}
    return ui_summary(raw, c.device, data=data)


def update(c: SimpleNamespace, raw: dict, lang: str, summary: dict | None = None) -> list:
    """[bar html, note visibility, *button updates, options state, timer] for one config dict (or its summary)."""
    summary = compute(c, raw) if summary is None else summary
    options = [o for o in summary.get("options") or [] if o.get("fits")][:MAX_OPTIONS]
    show_options = summary.get("ok") and summary.get("verdict") in ("does not fit", "tight")
    buttons = [gr.update(value=f"{messages.say(o['label'], lang)}: {gib(o['bytes'])}", visible=bool(show_options))
               if i < len(options) else gr.update(visible=False) for i, o in enumerate(
                   options + [None] * (MAX_OPTIONS - len(options)))]
    note = tr(TEXT, lang, "options") if options else tr(TEXT, lang, "none_fit")
    return [render(summary, norm(lang)), gr.update(visible=bool(show_options), value=note), *buttons,
            options if show_options else [], gr.Timer(active=bool(summary.get("pending")))]


def fit_badge(summary: dict, lang: str) -> str:
    """The verdict and the numbers in a few words (the Train tab's summary bar)."""
    if summary.get("pending") or not summary.get("ok"):
        verdict, text = "unknown", ""
    else:
        verdict = summary.get("verdict", "unknown")
        text = f"{gib(summary['total_bytes'])} / {gib(summary.get('available_bytes') or 0)}"
    return (f"<span class='tl-verdict' style='background:{VERDICT_COLORS.get(verdict, '#6b7280')}'>"
            f"{html.escape(tr(TEXT, lang, verdict))}</span> {html.escape(text)}")


def outputs(c: SimpleNamespace) -> list:
    """The components `update` returns values for, in its order."""
    return [c.bar, c.options_note, *c.buttons, c.options, c.timer]


def flatten(overrides: dict) -> tuple[dict, dict | None]:
    """{"train.x": v, "method": {...}} -> ({"train.x": v}, method dict or None)."""
    method = overrides.get("method")
    return {k: v for k, v in overrides.items() if k != "method"}, method
