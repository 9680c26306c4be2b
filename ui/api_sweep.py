"""The stable API's sweep, merge and judge endpoints (registered by ui/api.py `register`; README "Gradio API").

    evaluate_judged(run_id, judge, mode, judge_model, data, samples, max_new_tokens)
                      an evaluation whose answers a judge also grades (rubric) or compares with the base model's
                      (pairwise, both orders); waits and returns the result with its "judge" summary
    start_sweep(config, space, trials, sampler, metric, sets, name)      -> the sweep id
    sweep_status(sweep_id)      -> sweep.json (every trial, best) and the sweep process's state
    stop_sweep(sweep_id) / resume_sweep(sweep_id)  -> sweep_status
    train_best_longer(sweep_id) -> the new run's id (the best trial's settings, twice the steps)
    merge_runs(run_ids, how, weights, density, name)  run_ids comma-separated -> the merged run's id

The page's handlers and these call the same functions (ui/sweep_tab.py, ui/eval_tab.py, ui/judge_panel.py).
"""
from __future__ import annotations

import gradio as gr

from engine.core.config import ConfigError
from engine.core.messages import Message
from engine.sweep import folder as sf
from ui import eval_tab, judge_panel, sweep_tab


def _fail(err: BaseException):
    raise gr.Error(str(err)) from None


def evaluate_judged(run_id: str, judge: str, mode: str = "rubric", judge_model: str = "", data: str = "",
                    samples: int = 5, max_new_tokens: int = 64) -> dict:
    """Evaluate a finished run and grade its answers with a judge (endpoint URL, run id or model); waits."""

    try:
        choice = judge_panel.judge_choice(judge, mode, judge_model)
        if choice is None:
            raise ValueError(Message("judge.empty"))
        eval_tab.start_evaluation(run_id, data, samples, False, max_new_tokens, choice)
    except (ValueError, ConfigError) as err:
        _fail(err)
    return eval_tab.wait_for_evaluation(run_id)


def start_sweep(config: str, space: str, trials: int = 6, sampler: str = "tpe", metric: str = "eval_loss",
                sets: str = "", name: str = "") -> str:
    """Start a sweep from a preset (presets/NAME.yaml) or a finished run's config; `space` and `sets` one per line."""
    try:
        return sweep_tab.start_sweep(config, sets, space, trials, sampler, metric, name).name
    except (ValueError, ConfigError, OSError) as err:
        _fail(err)


def sweep_status(sweep_id: str) -> dict:
    """sweep.json (plan, every trial's settings, state, metric and run, `best`) and the process's `state`."""
    try:
        folder = sweep_tab.sweep_path(sweep_id)
    except ValueError as err:
        _fail(err)
    status = sf.read_status(folder)
    return {**sf.read_plan(folder), "state": status.get("state"), "error": status.get("error")}


def stop_sweep(sweep_id: str) -> dict:
    try:
        sf.request_stop(sweep_tab.sweep_path(sweep_id))
    except ValueError as err:
        _fail(err)
    return sweep_status(sweep_id)


def resume_sweep(sweep_id: str) -> dict:
    try:
        sf.spawn(sweep_tab.sweep_path(sweep_id))
    except ValueError as err:
        _fail(err)
    return sweep_status(sweep_id)


def train_best_longer(sweep_id: str) -> str:
    try:
        return sweep_tab.train_best_longer(sweep_id).name
    except (ValueError, ConfigError) as err:
        _fail(err)


def merge_runs(run_ids: str, how: str = "ties", weights: str = "", density: float = 0.5, name: str = "") -> str:
    try:
        ids = [r.strip() for r in (run_ids or "").split(",") if r.strip()]
        return sweep_tab.merge_runs(ids, how, weights, density, name).name
    except (ValueError, ConfigError, RuntimeError) as err:
        _fail(err)


def register() -> None:
    for fn in (evaluate_judged, start_sweep, sweep_status, stop_sweep, resume_sweep, train_best_longer, merge_runs):
        gr.api(fn, api_name=fn.__name__)
