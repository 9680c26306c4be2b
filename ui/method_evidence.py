"""The line under the method picker that says what the method's preset measured on real instructions
(engine/methods/measured.py reads the record bench/methods_real.py writes), in English and Chinese."""
from __future__ import annotations

from engine.methods import METHODS
from engine.methods.measured import load
from ui.lang import norm

TEXT = {
    "en": {"measured": "**Measured** on real instructions ({data}, {steps} steps, seeds {seeds}; {cpu}, {cores} "
                       "cores): held-out loss {versus_base} against {base}{versus_full}, {s_per_step} s/step, peak "
                       "memory (RSS) {peak_gib:.1f} GiB.",
           "base": "the base model", "quantised_base": "its {bits} base model",
           "versus_full": " (against full fine-tuning: {value})",
           "worse": " **On seed {seeds} it ended above the base model's loss after {steps} steps: this preset needs "
                    "far longer (or another learning rate) before it helps.**",
           "diverged": " **It diverged ({where}): lower the learning rate.**",
           "where": "seed {seed} at step {step}",
           "failed": "**Measured** on real instructions: the preset did not finish ({error})."},
    "zh": {"measured": "**实测**（真实指令数据 {data}，{steps} 步，种子 {seeds}；{cpu}，{cores} 核）："
                       "留出集损失相对{base} {versus_base}{versus_full}，每步 {s_per_step} 秒，"
                       "内存峰值（RSS）{peak_gib:.1f} GiB。",
           "base": "基础模型", "quantised_base": "它的 {bits} 基础模型",
           "versus_full": "（相对全量微调：{value}）",
           "worse": " **种子 {seeds} 训练 {steps} 步后损失仍高于基础模型：这个预设需要长得多的训练"
                    "（或换一个学习率）才有帮助。**",
           "diverged": " **训练发散了（{where}）：请降低学习率。**",
           "where": "种子 {seed} 第 {step} 步",
           "failed": "**实测**：这个预设没有跑完（{error}）。"},
}


def _percent(value: float) -> str:
    return f"{100 * value:+.1f}%"


def line(key: str, lang: str = "en", record: tuple[dict, dict] | None = None) -> str:
    """What the record (`load()`, read here when not given) measured for `key`, or "" where it has no row."""
    about, methods = record if record is not None else load()
    measured = methods.get(key)
    if measured is None:
        return ""
    text = TEXT[norm(lang)]
    if measured.error:
        return text["failed"].format(error=measured.error)
    bits = METHODS.get(key).quantize({}) if key in METHODS else None  # QLoRA / 8-bit LoRA train on a quantised base
    base = text["quantised_base"].format(bits=bits.replace("bit", "-bit")) if bits else text["base"]
    versus_full = "" if key == "full" or measured.versus_full is None else \
        text["versus_full"].format(value=_percent(measured.versus_full))
    said = text["measured"].format(
        data=about.get("data", "?"), steps=about.get("steps", "?"), seeds=", ".join(map(str, measured.seeds)),
        cpu=about.get("cpu", "?"), cores=about.get("cores", "?"), versus_base=_percent(measured.versus_base),
        base=base, versus_full=versus_full,
        s_per_step=f"{measured.s_per_step:.2f}" if measured.s_per_step else "?",
        peak_gib=(measured.peak_mb or 0) / 1024)
    if measured.diverged:
        where = ", ".join(text["where"].format(seed=seed, step=step) for seed, step in measured.diverged)
        said += text["diverged"].format(where=where)
    elif measured.above_base:
        said += text["worse"].format(seeds=", ".join(map(str, measured.above_base)), steps=about.get("steps", "?"))
    return said
