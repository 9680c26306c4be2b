"""The API's side of the data: a client's own file comes in through `upload_data`, and `start_training` checks the
data exactly as the page's Start does.

Both reuse the Data tab's functions (ui/data_tab.py): `store_upload` keeps the file in the workspace's uploads with
its name as uploaded (uploaded-as.txt), and `check_data` / `refuses_start` / `report_problem` are the one data check
the page runs, so a client and the page refuse the same data with the same words.
"""
from __future__ import annotations

import html
import re

import gradio as gr
from gradio import FileData

from engine.core.config import DEFAULT_MODEL, RunConfig
from engine.core.security import web_config_problems
from engine.core.workspace import data_display_name
from ui import data_tab

DEFAULT_CHECK_SEQ_LEN = 512  # the schema's train.max_seq_len default: what a run trains with unless told
SUMMARY_STATS = ("examples", "rows", "tokens", "trained_tokens", "max_tokens", "dropped", "skipped_bad_rows_count")


def plain_text(box_html: str) -> str:
    """The text of an error box (ui.common.error_box): its title, then each listed problem, for a client that
    reads text, not HTML."""
    items = [html.unescape(re.sub(r"<[^>]+>", "", part)).strip()
             for part in re.split(r"</li>|<ul>", box_html or "")]
    items = [item for item in items if item]
    return f"{items[0]}: {'; '.join(items[1:])}" if len(items) > 1 else (items[0] if items else "")


def summary(report: dict) -> dict:
    """What a client needs of a data check: how the file was read, how much will train, and the problem (the
    page's words) when it cannot train."""
    stats = report.get("stats") or {}
    problem = data_tab.report_problem(report, "en")
    return {"name": report.get("name"), "format": report.get("format"), "kind": report.get("kind"),
            "fields": report.get("fields"), "stats": {k: stats[k] for k in SUMMARY_STATS if k in stats},
            "ok": not data_tab.refuses_start(report) and not report.get("failure"),
            "problem": plain_text(problem) or None}


def upload_data(file: FileData, model: str = DEFAULT_MODEL, format: str = "auto") -> dict:
    """Store a client's data file (gradio_client `handle_file(path)`) in the workspace's uploads, as the Data tab's
    upload does, and check it with `model`'s tokenizer. Returns {"data_train": the value for data.train,
    "name", "format", "kind", "fields", "stats", "ok", "problem"}."""
    path = (file or {}).get("path") if isinstance(file, dict) else getattr(file, "path", None)
    outside = web_config_problems({"model": model})
    if outside:
        raise gr.Error("; ".join(outside))
    try:
        stored = data_tab.store_upload(path)
    except (ValueError, OSError) as err:
        raise gr.Error(f"upload refused: {err}") from None
    key = data_tab.data_key(stored, format or "auto", "", "assistant", False, model or DEFAULT_MODEL,
                            DEFAULT_CHECK_SEQ_LEN)
    return {"data_train": stored, **summary(data_tab.check_data(key))}


def check_key(cfg: RunConfig) -> list:
    """The Data tab's key (ui.data_tab.data_key) for the data of a validated run config."""
    columns = ", ".join(f"{source}={target}" for source, target in (cfg.data.columns or {}).items())
    return data_tab.data_key(cfg.data.train, cfg.data.format, columns, cfg.data.mask, cfg.data.skip_bad_rows,
                             cfg.model, cfg.train.max_seq_len, cfg.data.split, cfg.data.subset)


def refuse_unusable_data(cfg: RunConfig) -> None:
    """Start's data check for an API start (called once the config is valid and its paths are allowed): data the
    page would refuse is refused with the page's message; a check that could not run is no verdict (the trainer
    then says what it finds), as on the page."""
    report = data_tab.check_data(check_key(cfg))
    if data_tab.refuses_start(report):
        raise gr.Error(plain_text(data_tab.report_problem(report, "en"))
                       or f"{data_display_name(cfg.data.train)} cannot be used for training")
