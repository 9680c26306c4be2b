"""What the Data tab says beside the numbers about tools, reasoning, raw text and the detected layout, and how the
token preview names tool calls, tool outputs and reasoning (engine/data/masking.py marks them as `part`)."""
from __future__ import annotations

from ui import messages
from ui.lang import tr

PART_COLORS = {"tool_call": "#3b82f6", "tool_output": "#f59e0b", "reasoning": "#a855f7"}

TEXT = {
    "en": {
        "tool_call": "tool call (trained)", "tool_output": "tool output (not trained)",
        "reasoning": "reasoning (trained)",
        "detection": "Layout: {note}",
        "blocks": "Raw text: **{documents}** documents joined with EOS and cut into **{blocks}** blocks of up to "
                  "{max_seq_len} tokens; every token is trained.",
        "tools": "**{n}** example(s) use tools: the calls are trained with the assistant's turn; the tools' outputs "
                 "and the tools list are context, not trained.",
        "reasoning_place": "**{n}** example(s) carry reasoning: this model's chat template renders it in its own "
                           "place, and it is trained with the answer.",
        "reasoning_inline": "**{n}** example(s) carry reasoning, and this model's chat template has no place for it: "
                            "it is kept inline as <think>…</think> before the answer and trained. To leave it out, "
                            "set Reasoning to drop (Train tab, more settings).",
        "reasoning_forced": "**{n}** example(s) carry reasoning: kept inline as <think>…</think> and trained "
                            "(Reasoning: inline; drop leaves it out).",
        "reasoning_dropped": "**{n}** example(s) carry reasoning: dropped, neither shown nor trained (Reasoning: "
                             "drop; inline keeps it as <think>…</think>).",
    },
    "zh": {
        "tool_call": "工具调用（参与训练）", "tool_output": "工具输出（不训练）", "reasoning": "推理过程（参与训练）",
        "detection": "数据布局：{note}",
        "blocks": "纯文本：**{documents}** 篇文档以 EOS 连接，切成 **{blocks}** 块（每块最多 {max_seq_len} 个词元）；"
                  "每个词元都参与训练。",
        "tools": "**{n}** 个样例使用工具：调用随助手消息一起训练；工具输出和工具列表只是上下文，不训练。",
        "reasoning_place": "**{n}** 个样例带有推理过程：该模型的对话模板有专门的位置来渲染它，并与回答一起训练。",
        "reasoning_inline": "**{n}** 个样例带有推理过程，而该模型的对话模板没有它的位置：推理过程以 <think>…</think> "
                            "内联在回答之前并参与训练。如不需要，请把“推理过程”设为 drop（训练页，更多设置）。",
        "reasoning_forced": "**{n}** 个样例带有推理过程：以 <think>…</think> 内联并参与训练（推理过程：inline；"
                            "drop 会删除它）。",
        "reasoning_dropped": "**{n}** 个样例带有推理过程：已删除，不显示也不训练（推理过程：drop；inline 会以 "
                             "<think>…</think> 保留）。",
    },
}


def part_label(token: dict, lang: str) -> str | None:
    """The legend entry of a token that belongs to a tool call, a tool output or reasoning; None otherwise."""
    part = token.get("part")
    return tr(TEXT, lang, part) if part in PART_COLORS else None


def part_colors(lang: str) -> dict:
    return {tr(TEXT, lang, part): color for part, color in PART_COLORS.items()}


def notes(report: dict, lang: str) -> list[str]:
    """Lines for the Data tab's numbers: the layout chosen over another, raw-text blocks, tools, reasoning."""
    stats, lines = report.get("stats") or {}, []
    if stats.get("detection_note"):
        lines.append(tr(TEXT, lang, "detection", note=messages.say(stats.get("detection_note_i18n")
                                                                    or stats["detection_note"], lang)))
    if stats.get("documents"):
        lines.append(tr(TEXT, lang, "blocks", documents=f"{stats['documents']:,}", blocks=f"{stats['blocks']:,}",
                        max_seq_len=(report.get("inputs") or [0] * 7)[6] or stats.get("max_tokens", 0)))
    if stats.get("tool_examples"):
        lines.append(tr(TEXT, lang, "tools", n=f"{stats['tool_examples']:,}"))
    count = stats.get("reasoning_examples")
    if count:
        mode, place = report.get("reasoning", "auto"), (report.get("template_has") or {}).get("reasoning")
        key = {"drop": "reasoning_dropped", "inline": "reasoning_forced"}.get(
            mode, "reasoning_place" if place else "reasoning_inline")
        lines.append(tr(TEXT, lang, key, n=f"{count:,}"))
    return lines
