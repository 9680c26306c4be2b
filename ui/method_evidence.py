"""The line under the method picker that says what the method's preset measured on real instructions
(engine/methods/measured.py reads the record bench/methods_real.py writes), in English and Chinese."""
from __future__ import annotations

from engine.methods.measured import Measured, load
from ui.lang import norm

TEXT = {
    "en": {"measured": "**Measured** on real instructions ({data}, {steps} steps, seeds {seeds}; {cpu}, {cores} "
                       "cores): held-out loss {versus_base} against the base model{versus_full}, {s_per_step:.2f} "
                       "s/step, peak {peak_gb:.1f} GB.",
           "versus_full": " (against full fine-tuning: {value})",
           "worse": " **It ended above the base model's loss in {steps} steps: this preset needs far longer (or "
                    "another learning rate) before it helps.**",
           "diverged": " **It diverged ({where}): lower the learning rate.**",
           "where": "seed {seed} at step {step}",
           "failed": "**Measured** on real instructions: the preset did not finish ({error})."},
    "zh": {"measured": "**实测**（真实指令数据 {data}，{steps} 步，种子 {seeds}；{cpu}，{cores} 核）：留出集损失相对基础模型 "
                       "{versus_base}{versus_full}，每步 {s_per_step:.2f} 秒，峰值 {peak_gb:.1f} GB。",
           "versus_full": "（相对全量微调：{value}）",
           "worse": " **{steps} 步后损失仍高于基础模型：这个预设需要长得多的训练（或换一个学习率）才有帮助。**",
           "diverged": " **训练发散了（{where}）：请降低学习率。**",
           "where": "种子 {seed} 第 {step} 步",
           "failed": "**实测**：这个预设没有跑完（{error}）。"},
}


def _percent(value: float) -> str:
    return f"{100 * value:+.1f}%"


def line(key: str, lang: str = "en") -> str:
    """What the record measured for `key`, or "" where it has no row for it."""
    about, methods = load()
    measured: Measured | None = methods.get(key)
    if measured is None:
        return ""
    text = TEXT[norm(lang)]
    if measured.error:
        return text["failed"].format(error=measured.error)
    versus_full = "" if key == "full" or measured.versus_full is None else \
        text["versus_full"].format(value=_percent(measured.versus_full))
    said = text["measured"].format(
        data=about.get("data", "?"), steps=about.get("steps", "?"), seeds=", ".join(map(str, measured.seeds)),
        cpu=about.get("cpu", "?"), cores=about.get("cores", "?"), versus_base=_percent(measured.versus_base),
        versus_full=versus_full, s_per_step=measured.s_per_step or 0, peak_gb=(measured.peak_mb or 0) / 1024)
    if measured.diverged:
        where = ", ".join(text["where"].format(seed=seed, step=step) for seed, step in measured.diverged)
        said += text["diverged"].format(where=where)
    elif not measured.beats_base:
        said += text["worse"].format(steps=about.get("steps", "?"))
    return said
