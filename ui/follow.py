"""Following a run from its folder: metrics tails, chart data, progress bar, numbers.

One `MetricsTail` per run lives for the life of the UI process, so each timer tick reads only
the bytes appended since the last one, whichever browser tab asks.
"""
from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import pandas as pd

from engine import runs

_TAILS: dict[str, runs.MetricsTail] = {}
_LOCK = threading.Lock()
# "no points yet" is None: a LinePlot first given an empty frame with a color column stays blank
# even after real data arrives (seen with Gradio 6.31)
EMPTY_LOSS = EMPTY_LR = None


def metrics(run_dir: Path) -> list[dict]:
    key = str(run_dir)
    with _LOCK:
        tail = _TAILS.get(key)
        if tail is None:
            tail = _TAILS[key] = runs.MetricsTail(Path(run_dir) / "metrics.jsonl")
        tail.poll()
        return list(tail.rows)


def loss_frame(rows: list[dict]) -> pd.DataFrame | None:
    points = [(r["step"], r["loss"], "train loss") for r in rows if r.get("loss") is not None]
    points += [(r["step"], r["eval_loss"], "eval loss") for r in rows if r.get("eval_loss") is not None]
    return pd.DataFrame(points, columns=["step", "loss", "series"]) if points else EMPTY_LOSS


def lr_frame(rows: list[dict]) -> pd.DataFrame | None:
    points = [(r["step"], r["learning_rate"]) for r in rows if r.get("learning_rate") is not None]
    return pd.DataFrame(points, columns=["step", "learning rate"]) if points else EMPTY_LR


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def progress_html(status: dict) -> str:
    state = status.get("state", "unknown")
    step, total = status.get("step") or 0, status.get("max_steps") or 0
    elapsed = status.get("elapsed_s")
    if state in runs.ACTIVE and status.get("started_at") and elapsed is None:
        elapsed = time.time() - status["started_at"]
    fraction = min(1.0, step / total) if total else (1.0 if state == "done" else 0.0)
    eta = elapsed / step * (total - step) if elapsed and step and total and state in runs.ACTIVE else None
    parts = [f"<b>{html.escape(state)}</b>", f"step {step}/{total or '?'}", f"{fraction:.0%}",
             f"elapsed {duration(elapsed)}"]
    if eta is not None:
        parts.append(f"ETA {duration(eta)}")
    if status.get("stopped_early"):
        parts.append("stopped early (result saved)")
    return (f"<div class='tl-progress tl-{html.escape(state)}'><div class='tl-bar' style='width:{fraction * 100:.1f}%'>"
            f"</div></div><div class='tl-progress-text'>{' · '.join(parts)}</div>")


def numbers_markdown(rows: list[dict], status: dict) -> str:
    train = [r for r in rows if r.get("loss") is not None]
    evals = [r for r in rows if r.get("eval_loss") is not None]
    last = train[-1] if train else {}
    peak = max((r.get("peak_memory_bytes") or 0 for r in rows), default=0)
    cells = [
        ("train loss", f"{last['loss']:.4f}" if train else "–"),
        ("eval loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "–"),
        ("learning rate", f"{last['learning_rate']:.2e}" if last.get("learning_rate") is not None else "–"),
        ("tokens/s", f"{last['tokens_per_second']:,.0f}" if last.get("tokens_per_second") is not None else "–"),
        ("peak memory", f"{peak / 2**20:,.0f} MB" if peak else "–"),
    ]
    if status.get("trainable_params"):
        cells.append(("trainable params", f"{status['trainable_params']:,}"))
    return "| " + " | ".join(k for k, _ in cells) + " |\n|" + "---|" * len(cells) + "\n| " + \
        " | ".join(v for _, v in cells) + " |"


def failure_lines(status: dict) -> list[str]:
    lines = [status["error"]] if status.get("error") else []
    advice = (status.get("failure") or {}).get("advice") or []
    return lines + [f"Try: {a}" for a in advice]
