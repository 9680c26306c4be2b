"""An evaluation's folder (RUN/eval/): start one in its own process, follow it, read its results.

Import-light: the UI spawns evaluations and reads their results from here; the evaluation itself
(engine/evaluation/evaluate.py) runs in the process this starts.
"""
from __future__ import annotations

import time
from pathlib import Path

from engine.core import jobs, runs
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.inference.generation import EVALUATION

EVAL_DIR = "eval"
STATUS = "status.json"
DEFAULT_SAMPLES = EVALUATION["samples"]
DEFAULT_MAX_NEW_TOKENS = EVALUATION["max_new_tokens"]


# ---- the folder side (import-light) ----------------------------------------------------------
def eval_dir(run_dir: Path) -> Path:
    return Path(run_dir) / EVAL_DIR


def read_eval_status(run_dir: Path) -> dict:
    """RUN/eval/status.json; a running evaluation whose process is gone reads as failed."""
    return runs.job_status(eval_dir(run_dir) / STATUS, "eval.gone")


def update_eval_status(run_dir: Path, **fields) -> dict:
    folder = eval_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    status = runs.read_json(folder / STATUS, {}) or {}
    status.update(fields, updated_at=time.time())
    runs.write_json(folder / STATUS, status)
    return status


def list_results(run_dir: Path) -> list[dict]:
    """Saved evaluations of a run, newest first (each the whole result JSON plus its file name)."""
    found = []
    for path in sorted(eval_dir(run_dir).glob("*.json"), reverse=True):
        if path.name == STATUS:
            continue
        result = runs.read_json(path)
        if isinstance(result, dict):
            found.append({**result, "file": path.name})
    return found


def latest_result(run_dir: Path, model: str = "run") -> dict | None:
    """The newest saved evaluation of the run's result ("run") or of its base model ("base")."""
    return next((r for r in list_results(run_dir) if r.get("model") == model), None)


def eval_command(run_dir: Path, data: str | None = None, samples: int = DEFAULT_SAMPLES, base: bool = False,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, judge: dict | None = None) -> list[str]:
    from engine.evaluation.judge_run import judge_command_args

    command = jobs.engine_command("evaluate", run_dir, "--samples", int(samples), "--max-new-tokens",
                                  int(max_new_tokens))
    if data:
        command += ["--data", str(data)]
    return command + (["--base"] if base else []) + judge_command_args(judge)


def spawn(run_dir: Path, data: str | None = None, samples: int = DEFAULT_SAMPLES, base: bool = False,
          max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, judge: dict | None = None) -> int:
    """Start an evaluation in its own process and session (as the launcher starts a trainer)."""
    run_dir = Path(run_dir)
    current = read_eval_status(run_dir)
    if current.get("state") in runs.ACTIVE:
        raise RuntimeError(Message("eval.busy", run=run_dir.name, state=current["state"],
                                   done=current.get("done", 0), total=current.get("total") or "?"))
    eval_dir(run_dir).mkdir(parents=True, exist_ok=True)
    runs.write_json(eval_dir(run_dir) / STATUS, {
        "state": RunState.QUEUED, "phase": "starting", "done": 0, "total": 0, "model": "base" if base else "run",
        "data": data, "samples": samples, "created_at": time.time(), "updated_at": time.time(), "pid": None})
    process = jobs.spawn(eval_command(run_dir, data, samples, base, max_new_tokens, judge),
                         eval_dir(run_dir) / "eval.log")
    update_eval_status(run_dir, pid=process.pid)
    return process.pid
