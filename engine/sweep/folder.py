"""A sweep's folder, read and written without torch or Optuna (the UI and the sweep process share it).

sweeps/<id>/config.yaml   the resolved base config every trial starts from
sweeps/<id>/sweep.json    the plan (space, trials, sampler, metric), every trial (settings, state, metric, run)
                          and `best`; rewritten by the sweep process after every change
sweeps/<id>/study.db      Optuna's SQLite storage: the sweep survives a restart and resumes from it
sweeps/<id>/status.json   the sweep process: state (running, stopping, stopped, done, failed), pid, error
sweeps/<id>/sweep.log     its log;  STOP: asks it to stop its current trial and exit
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import yaml

from engine.core import jobs, runs
from engine.core.config import ConfigError, RunConfig, apply_overrides
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.core.workspace import safe_name, subdir
from engine.sweep.space import grid_size, parse_space

SAMPLERS = ("tpe", "random", "grid")
# the metric a sweep optimises: read from each trial run's eval rows in metrics.jsonl, and its direction
METRICS = {"eval_loss": ("eval_loss", "minimize"), "reward": ("eval_rewards/margins", "maximize")}
PLAN, STATUS, STOP_FILE, STORAGE, LOG = "sweep.json", "status.json", "STOP", "study.db", "sweep.log"


def sweeps_dir() -> Path:
    return subdir("sweeps")


def metric_key(metric: str) -> tuple[str, str]:
    """(the metrics.jsonl key, minimize|maximize) of a --metric; any eval_* key of the trial runs is accepted."""
    if metric in METRICS:
        return METRICS[metric]
    if metric == "judge":
        raise ConfigError([Message("sweep.judge_metric")], "the sweep")
    if metric.startswith("eval_"):
        return metric, "minimize" if "loss" in metric else "maximize"
    raise ConfigError([Message("sweep.metric", metric=metric)], "the sweep")


def create_sweep(raw: dict, specs: list[str], trials: int, sampler: str = "tpe", metric: str = "eval_loss",
                 name: str = "") -> Path:
    """Check everything (config, space, sampler, metric) and make the folder; ConfigError lists what is wrong."""
    problems = []
    cfg = RunConfig.from_dict(copy.deepcopy(raw), "the sweep's config")
    if sampler not in SAMPLERS:
        problems.append(Message("sweep.sampler", sampler=sampler, choices=", ".join(SAMPLERS)))
    if int(trials) < 1:
        problems.append(Message("sweep.trials", trials=trials))
    key, direction = metric_key(metric)
    if key.startswith("eval_") and cfg.data.validation_split <= 0:
        problems.append(Message("sweep.no_validation", metric=key))
    if problems:
        raise ConfigError(problems, "the sweep")
    dims = parse_space(specs, cfg, sampler)
    if sampler == "grid" and int(trials) > grid_size(dims):
        trials = grid_size(dims)  # a grid has no more points than this
    label = safe_name(name or cfg.name or "sweep")
    base = sweeps_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    runs.write_atomic(folder / "config.yaml", cfg.to_yaml())
    runs.write_json(folder / PLAN, {"id": folder.name, "name": label, "space": [d.spec() for d in dims],
                                    "trials_target": int(trials),
                                    "sampler": sampler, "metric": metric, "metric_key": key, "direction": direction,
                                    "created_at": time.time(), "trials": [], "best": None})
    runs.write_json(folder / STATUS, {"state": "created", "created_at": time.time(), "pid": None})
    return folder


def load_raw(config_path: str | Path, overrides: list[str] | None = None) -> dict:
    raw = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    apply_overrides(raw, overrides or [])
    return raw


def read_plan(folder: Path) -> dict:
    return runs.read_json(Path(folder) / PLAN, {}) or {}


def read_status(folder: Path) -> dict:
    return runs.job_status(Path(folder) / STATUS, "sweep.gone")


def update_status(folder: Path, **fields) -> dict:
    path = Path(folder) / STATUS
    status = runs.read_json(path, {}) or {}
    status.update(fields, updated_at=time.time())
    runs.write_json(path, status)
    return status


def list_sweeps() -> list[dict]:
    """Every sweep, newest first: its plan and its process's state."""
    found = []
    for path in sorted(sweeps_dir().iterdir(), reverse=True):
        plan = read_plan(path)
        if plan:
            found.append({**plan, "path": str(path), "state": read_status(path).get("state", "unknown")})
    return found


def resolve_sweep(sweep: str | Path) -> Path:
    path = Path(sweep)
    if (path / PLAN).is_file():
        return path
    candidate = sweeps_dir() / str(sweep)
    if (candidate / PLAN).is_file():
        return candidate
    raise ConfigError([Message("sweep.not_found", sweep=str(sweep), folder=str(sweeps_dir()))], "the sweep")


# ---- the sweep process (the UI starts, stops and resumes it) ----------------------------------------
def spawn(folder: Path) -> int:
    """Run (or resume) a sweep in its own process and session, like a trainer."""
    folder = Path(folder)
    current = read_status(folder)
    if current.get("state") in (RunState.RUNNING, RunState.STOPPING):
        raise ValueError(Message("sweep.active", sweep=folder.name, state=current["state"]))
    (folder / STOP_FILE).unlink(missing_ok=True)
    update_status(folder, state=RunState.STARTING, pid=None, error=None)
    process = jobs.spawn(jobs.engine_command("sweep", "--resume", folder), folder / LOG)
    update_status(folder, pid=process.pid)
    return process.pid


def request_stop(folder: Path) -> None:
    """Ask the sweep to stop: its current trial saves a checkpoint (resume continues it), then the process ends."""
    folder = Path(folder)
    runs.write_atomic(folder / STOP_FILE, str(time.time()))
    if read_status(folder).get("state") == RunState.RUNNING:
        update_status(folder, state=RunState.STOPPING)


def longer_config(folder: Path, factor: float = 2.0) -> dict:
    """The best trial's config with `factor` times its steps (or epochs): "train the best longer"."""
    plan = read_plan(folder)
    best = plan.get("best")
    if not best or not best.get("run"):
        raise ValueError(Message("sweep.no_best", sweep=Path(folder).name))
    raw = yaml.safe_load((runs.resolve_run(best["run"]) / "config.yaml").read_text(encoding="utf-8"))
    train = raw.setdefault("train", {})
    if int(train.get("max_steps") or 0) > 0:
        train["max_steps"] = int(round(int(train["max_steps"]) * factor))
    else:
        train["epochs"] = float(train.get("epochs") or 1.0) * factor
    raw["name"] = f"{safe_name(str(raw.get('name') or 'best'))}-longer"
    return raw
