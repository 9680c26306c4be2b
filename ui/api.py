"""The stable Gradio API (gradio_client, `/gradio_api/...`): everything else is private.

    upload_data(file, model, format)
                            store a client's data file (gradio_client handle_file) in the workspace's uploads
                            and check it -> {"data_train": the value for data.train, "name", "format", "kind",
                            "fields", "stats", "ok", "problem"} (ui/api_data.py)
    start_training(config)  config: YAML or JSON text of a run config, the same keys as
                            presets/quickstart.yaml (model, name, data, method, train); keys left
                            out take their defaults. The data is checked as the page's Start checks it.
                            Returns the run id.
    run_status(run_id)      -> {"run": id, "state", "step", "max_steps", "error", "status": {...},
                            "last": last train metrics row, "last_eval": last eval row, "points": train rows}
    stop_training(run_id)   stop a queued or running run; it saves a resumable checkpoint -> run_status
    resume_training(run_id) continue a stopped or failed run from its last checkpoint -> run_status
    list_runs()             every run: id, state, method, data_file, model, created_at, step, max_steps,
                            final_loss, final_eval_loss, best_eval_loss, stopped_early, resumable, reproduces, error
    delete_run(run_id)      delete a run that nothing is using -> the id deleted
    estimate(config)        the Train tab's memory estimate for a config (same text as start_training)
    evaluate(run_id, data, samples, base, max_new_tokens)
                            evaluate a run (or its base) on its validation split ("") or a data file of the
                            workspace's uploads or the presets; waits and returns the result
    chat(run_id, message, system, max_new_tokens, temperature, top_p, top_k, repetition_penalty, model)
                            run_id is a run or "base" (then `model` names the base model) -> reply; while
                            waiting for the worker, log messages give its place ("2 requests ahead")
    export(run_id, kind, dtype)
                            kind adapter | merged | gguf, dtype (merged) auto | bf16 | fp16 | fp32 -> a zip file
                            (registered in ui/export_tab.py)
    evaluate_judged, start_sweep, sweep_status, stop_sweep, resume_sweep, train_best_longer, merge_runs
                            judged evaluation, sweeps and merging runs (ui/api_sweep.py)

README.md's "Gradio API" table documents the same; tests/test_readme.py checks it against view_api().

Errors come back to the client as gr.Error with the same message the UI would show: the page's
handlers and these call the same functions (ui/train_tab.py, ui/eval_tab.py), which apply the same rules.
"""
from __future__ import annotations

import json
import time

import gradio as gr
import yaml

from engine.core import runs
from engine.core.config import DEFAULT_MODEL, ConfigError
from engine.estimate import ui_summary
from engine.inference.generation import EVALUATION, SHORT_FORM
from ui import api_data, api_sweep, chat_line, chat_tab, eval_tab, follow, run_actions
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
    """Validate a run config (YAML or JSON text, keys as in presets/quickstart.yaml) and start it; returns the
    run id."""
    try:
        return start_config(parse_config(config), before_launch=api_data.refuse_unusable_data).name
    except ConfigError as err:
        raise gr.Error(str(err)) from None


def run_status(run_id: str) -> dict:
    """A run's status.json (state, step, max_steps, error, ...) and its last train and eval metrics."""
    try:
        run_dir = run_path(run_id)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    status = runs.read_status(run_dir)
    last, last_eval, points = follow.latest(run_dir)  # metrics.jsonl read from where the last poll stopped
    return {"run": run_dir.name, "state": status.get("state"), "step": status.get("step"),
            "max_steps": status.get("max_steps"), "error": status.get("error"), "status": status,
            "last": last, "last_eval": last_eval, "points": points}


def _run_action(action, run_id: str):
    try:
        action(run_id)
    except ValueError as err:
        raise gr.Error(str(err)) from None


def stop_training(run_id: str) -> dict:
    """Stop a queued or running run: it saves a resumable checkpoint at the current step. Returns its status."""
    _run_action(run_actions.stop_run, run_id)
    return run_status(run_id)


def resume_training(run_id: str) -> dict:
    """Continue a stopped or failed run from its last checkpoint. Returns its status."""
    _run_action(run_actions.resume_run, run_id)
    return run_status(run_id)


def list_runs() -> list[dict]:
    """Every run, newest first: what it trained, on which data file, when, its state and losses."""
    listing = []
    for run in runs.list_runs():
        status = runs.read_status(run["path"])
        listing.append({**{k: v for k, v in run.items() if k != "path"},
                        "resumable": runs.resume_refusal(run["path"], status) is None})
    return listing


def delete_run(run_id: str) -> str:
    """Delete a run's folder for good (refused while it, an evaluation of it or its server runs)."""
    _run_action(run_actions.delete_run, run_id)
    return run_id


STRUCTURE_WAIT_S = 180  # a model's structure is read once, in a child process (seconds; minutes for remote code)


def estimate(config: str) -> dict:
    """Peak training memory for a config (YAML or JSON text, as for start_training): the Train tab's estimate.
    A model met for the first time has its structure read in a child process: the page asks again on its
    timer, a client gets the answer when it is there (it failed as "reading the structure of ...")."""
    raw = parse_config(config)
    summary, deadline = ui_summary(raw), time.monotonic() + STRUCTURE_WAIT_S
    while summary.get("pending") and time.monotonic() < deadline:
        time.sleep(0.5)
        summary = ui_summary(raw)
    if not summary.get("ok"):
        raise gr.Error(summary.get("error") or "the config cannot be estimated")
    return summary


def evaluate(run_id: str, data: str = "", samples: int = EVALUATION["samples"], base: bool = False,
             max_new_tokens: int = EVALUATION["max_new_tokens"]) -> dict:
    """Evaluate a finished run (or its base model) and wait for the result. `data`: "" for the run's
    validation split, or a file from the workspace's uploads or the presets' data (its path or name)."""
    try:
        eval_tab.start_evaluation(run_id, data, samples, base, max_new_tokens)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    return eval_tab.wait_for_evaluation(run_id)


def chat(run_id: str, message: str, system: str = "", max_new_tokens: int = SHORT_FORM["max_new_tokens"],
         temperature: float = SHORT_FORM["temperature"], top_p: float = SHORT_FORM["top_p"],
         top_k: int = SHORT_FORM["top_k"], repetition_penalty: float = SHORT_FORM["repetition_penalty"],
         model: str = DEFAULT_MODEL) -> str:
    """One reply from a finished run (or run_id "base": the base model named by `model`). While other chats are
    answered first, each change of its place comes as a log message: "2 requests ahead" (ui/chat_line.py)."""
    try:
        with chat_line.api_turn():
            chat_tab.load(run_id, model)
            params = chat_tab.generation_params(max_new_tokens, temperature, top_p, top_k, repetition_penalty)
            reply = ""
            for text in chat_tab.reply_stream(system, [{"role": "user", "content": message}], params):
                reply = text  # each event is the reply so far
            return reply
    except (chat_tab.WorkerError, ValueError) as err:
        raise gr.Error(str(err)) from None


def register() -> None:
    """Call inside the Blocks context."""
    gr.api(api_data.upload_data, api_name="upload_data")
    gr.api(start_training, api_name="start_training")
    # status reads never wait behind training, chat or evaluation calls: no concurrency limit (each is a small
    # file read; metrics are tailed by byte offset in ui/follow.py)
    gr.api(run_status, api_name="run_status", concurrency_limit=None)
    gr.api(stop_training, api_name="stop_training")
    gr.api(resume_training, api_name="resume_training")
    gr.api(list_runs, api_name="list_runs", concurrency_limit=None)
    gr.api(delete_run, api_name="delete_run")
    gr.api(estimate, api_name="estimate")
    gr.api(evaluate, api_name="evaluate")
    gr.api(chat, api_name="chat", concurrency_limit=None)  # waits in ui/chat_line.py's line, which says its place
    api_sweep.register()  # evaluate_judged, start_sweep, sweep_status, stop_sweep, resume_sweep, ..., merge_runs
