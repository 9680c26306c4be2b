"""A job's state (engine/core/jobs.py RunState) and an evaluation's phase, in the page's language. Its own
room: the run list, the progress bars and the messages that quote a state all word it here."""
from __future__ import annotations

from ui.lang import tr

TEXT = {
    "en": {"queued": "queued", "starting": "starting", "running": "running", "stopping": "stopping", "done": "done",
           "failed": "failed", "stopped": "stopped", "unknown": "unknown", "loading": "loading",
           "loading model": "loading model", "eval loss": "eval loss", "generating": "generating",
           "created": "created", "base answers": "base model's answers", "judging": "judging"},
    "zh": {"queued": "排队中", "starting": "启动中", "running": "运行中", "stopping": "停止中", "done": "已完成",
           "failed": "失败", "stopped": "已停止", "unknown": "未知", "loading": "加载中",
           "loading model": "加载模型", "eval loss": "计算验证损失", "generating": "生成回答",
           "created": "已创建", "base answers": "基础模型作答", "judging": "评审中"},
}


def state_name(state: str, lang="en") -> str:
    """A run's or evaluation's state (or phase) in the page's language; unknown words pass through."""
    return tr(TEXT, lang, state) if state in TEXT["en"] else state
