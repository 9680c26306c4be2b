"""The stable Gradio API (gradio_client, `/gradio_api/...`): everything else is private.

    start_training(config)  config: YAML or JSON text of a run config, the same keys as
                            presets/quickstart.yaml (model, name, data, method, train); keys left
                            out take their defaults. Returns the run id.
    run_status(run_id)      -> {"run": id, "state", "step", "max_steps", "error", "status": {...},
                            "last": last train metrics row, "last_eval": last eval row}
    chat(run_id, message, system, max_new_tokens, temperature, top_p, top_k, repetition_penalty)
                            run_id is a run or "base" (then `model` names the base model) -> reply
    export(run_id, kind)    kind adapter | merged -> a zip file (registered in ui/export_tab.py)

Errors come back to the client as gr.Error with the same message the UI would show.
"""
from __future__ import annotations

import json

import gradio as gr
import yaml

from engine.core import runs
from engine.core.config import DEFAULT_MODEL, ConfigError
from ui import chat_tab, follow
from ui.common import run_path
from ui.train_tab import start_config


def parse_config(config: str) -> dict:
    text = (config or "").strip()
    if not text:
        raise gr.Error("config is empty: send YAML or JSON with at least data.train")
    try:
        raw = json.loads(text) if text.startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise gr.Error(f"config is not valid YAML or JSON: {err}") from None
    if not isinstance(raw, dict):
        raise gr.Error("config must be a mapping (model:, data:, method:, train:)")
    return raw


def start_training(config: str) -> str:
    """Validate a run config (YAML or JSON text, keys as in presets/quickstart.yaml) and start it; returns the run id."""
    try:
        return start_config(parse_config(config)).name
    except ConfigError as err:
        raise gr.Error(str(err)) from None


def run_status(run_id: str) -> dict:
    """A run's status.json (state, step, max_steps, error, ...) and its last train and eval metrics."""
    try:
        run_dir = run_path(run_id)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    status = runs.read_status(run_dir)
    rows = follow.metrics(run_dir)
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_loss" in r]
    return {"run": run_dir.name, "state": status.get("state"), "step": status.get("step"),
            "max_steps": status.get("max_steps"), "error": status.get("error"), "status": status,
            "last": train[-1] if train else None, "last_eval": evals[-1] if evals else None,
            "points": len(train)}


def chat(run_id: str, message: str, system: str = "", max_new_tokens: int = 128, temperature: float = 0.0,
         top_p: float = 1.0, top_k: int = 50, repetition_penalty: float = 1.0, model: str = DEFAULT_MODEL) -> str:
    """One reply from a finished run (or run_id "base": the base model named by `model`)."""
    try:
        chat_tab.load(run_id, model)
        params = chat_tab.generation_params(max_new_tokens, temperature, top_p, top_k, repetition_penalty)
        reply = ""
        for reply in chat_tab.reply_stream(system, [{"role": "user", "content": message}], params):
            pass
        return reply
    except (chat_tab.WorkerError, ValueError) as err:
        raise gr.Error(str(err)) from None


def register() -> None:
    """Call inside the Blocks context."""
    gr.api(start_training, api_name="start_training")
    gr.api(run_status, api_name="run_status")
    gr.api(chat, api_name="chat", concurrency_id=chat_tab.CHAT_QUEUE, concurrency_limit=1)
