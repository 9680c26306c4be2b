"""The sweep process: `python -m engine sweep CONFIG --space ... --trials N` (or `--resume SWEEP`).

Recipe: open the Optuna study in the sweep folder (SQLite) -> pick up trials a stopped sweep left behind
(a live run is followed again, a stopped one resumes from its checkpoint, one that cannot is run again with
the same settings) -> until N trials have finished: ask Optuna for settings, start them as an ordinary run
(its own folder, the trainer queue that gives the device to one run at a time), report each eval step's
metric from the run's metrics.jsonl, stop the run when Optuna's pruner says it will not beat the others,
tell Optuna the result -> sweep.json after every change. Optuna does the sampling, pruning and storage;
only following the run folders is written here.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from engine.core import runs
from engine.core.config import ConfigError, RunConfig, apply_overrides
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.sweep import folder as sf
from engine.sweep.space import parse_space

POLL_S = 1.0


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(folder: Path, plan: dict, seed: int):
    optuna = _quiet_optuna()
    dims = parse_space(plan["space"], RunConfig.load(folder / "config.yaml"), plan["sampler"])
    if plan["sampler"] == "grid":
        class AskTellGrid(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values):
                """No study.stop(): it works only inside optimize(); the loop stops at N (capped at the grid)."""

        sampler = AskTellGrid({d.key: list(d.choices) for d in dims}, seed=seed)
    elif plan["sampler"] == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(1, plan["trials_target"] // 2)))
    # prune a trial whose eval metric is worse than the median of earlier trials at the same step, once two
    # trials have finished (one alone is no median to speak of)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = optuna.create_study(storage=f"sqlite:///{Path(folder).resolve() / sf.STORAGE}", study_name="sweep",
                                direction=plan["direction"], sampler=sampler, pruner=pruner, load_if_exists=True)
    return study, dims


def counted(trial) -> bool:
    """A trial that counts toward N: finished, and not one a stopped sweep left to be run again."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and not trial.user_attrs.get("rerun"))


def write_plan(folder: Path, study) -> dict:
    """sweep.json from the study: every trial's settings, state, metric, run; and the best."""
    from optuna.trial import TrialState

    plan = sf.read_plan(folder)
    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append({"number": t.number, "state": t.state.name.lower(), "params": t.params, "value": t.value,
                       "run": t.user_attrs.get("run"), "steps": {str(k): v for k, v in t.intermediate_values.items()},
                       "note": t.user_attrs.get("note", "")})
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    best = None
    if complete:
        b = study.best_trial
        best = {"number": b.number, "params": b.params, "value": b.value, "run": b.user_attrs.get("run")}
    plan.update(trials=trials, best=best, updated_at=time.time())
    runs.write_json(Path(folder) / sf.PLAN, plan)
    return plan


def metric_rows(run_dir: Path, key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in runs.read_metrics(run_dir)
            if isinstance(r.get(key), (int, float)) and isinstance(r.get("step"), (int, float))]


def _wait_ended(run_dir: Path, timeout_s: float = 120.0) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = runs.read_status(run_dir)
        if status.get("state") not in runs.ACTIVE:
            return status
        time.sleep(POLL_S / 2)
    return runs.read_status(run_dir)


def follow(folder: Path, trial, run_dir: Path, key: str, log: Callable[[str], None], reported=()) -> str:
    """Report the run's eval metric to Optuna as it is logged (`reported`: steps it already has); returns
    done | pruned | stopped | failed."""
    from engine.training import launcher

    reported = set(reported)
    while True:
        status = runs.read_status(run_dir)
        for step, value in metric_rows(run_dir, key):
            if step in reported:
                continue
            trial.report(value, step)
            reported.add(step)
            if status.get("state") in runs.ACTIVE and trial.should_prune():
                log(f"trial {trial.number}: {key} {value:.4f} at step {step} is worse than the median; pruned")
                launcher.stop(run_dir)
                _wait_ended(run_dir)
                return "pruned"
        if (folder / sf.STOP_FILE).exists():
            if status.get("state") in runs.ACTIVE:
                launcher.stop(run_dir)  # saves a checkpoint: resuming the sweep continues this trial there
                _wait_ended(run_dir)
            return "stopped"
        if status.get("state") == RunState.DONE:  # stopped early by hand (not by the sweep): it did not finish
            return "failed" if status.get("stopped_early") else "done"
        if status.get("state") == RunState.FAILED:
            return "failed"
        time.sleep(POLL_S)


def start_trial(folder: Path, study, dims, plan: dict, log) -> tuple:
    """Ask Optuna for the next settings and start them as a run; (trial, run folder)."""
    from engine.training import launcher

    trial = study.ask()
    values = {d.key: d.suggest(trial) for d in dims}
    raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    apply_overrides(raw, [f"{k}={v}" for k, v in values.items()])
    raw["name"] = f"{plan.get('name') or 'sweep'}-t{trial.number}"
    try:
        run_dir = launcher.start(RunConfig.from_dict(raw, f"trial {trial.number}"))
    except ConfigError as err:  # e.g. a setting the model cannot take: this trial fails, the sweep goes on
        from optuna.trial import TrialState

        log(f"trial {trial.number}: {err}")
        trial.set_user_attr("note", str(err)[:500])
        study.tell(trial, state=TrialState.FAIL)
        return None, None
    runs.update_status(run_dir, sweep=plan["id"], trial=trial.number)
    trial.set_user_attr("run", run_dir.name)
    log(f"trial {trial.number}: {', '.join(f'{k}={v}' for k, v in values.items())} -> run {run_dir.name}")
    return trial, run_dir


def pending(folder: Path, study, log) -> list[tuple]:
    """Trials a stopped or killed sweep left running: (trial, run folder, steps reported) to follow again. A run that no
    longer trains resumes from its checkpoint; one without a checkpoint is run again with the same settings."""
    import optuna
    from optuna.trial import TrialState

    from engine.training import launcher

    found = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        run_dir = runs.resolve_run(frozen.user_attrs.get("run", ""))
        status = runs.read_status(run_dir) if runs.is_run_folder(run_dir) else {}
        finished = status.get("state") == RunState.DONE and not status.get("stopped_early")
        if status.get("state") in runs.ACTIVE or finished:
            found.append((trial, run_dir, frozen.intermediate_values))
        elif status and runs.resume_refusal(run_dir, status) is None:
            log(f"trial {frozen.number}: resuming run {run_dir.name} from its last checkpoint")
            launcher.resume(run_dir)
            found.append((trial, run_dir, frozen.intermediate_values))
        else:
            log(f"trial {frozen.number}: its run cannot continue; it runs again with the same settings")
            trial.set_user_attr("rerun", True)
            study.tell(trial, state=TrialState.FAIL)
            study.enqueue_trial(frozen.params)
    return found


def finish(study, trial, outcome: str, run_dir: Path, key: str) -> None:
    from optuna.trial import TrialState

    values = metric_rows(run_dir, key)
    if outcome == "done" and values:
        study.tell(trial, values[-1][1])  # the metric at the run's last eval
    elif outcome == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        note = (runs.read_status(run_dir).get("error") or outcome) if outcome != "done" else \
            f"the run logged no {key}"
        trial.set_user_attr("note", str(note)[:500])
        study.tell(trial, state=TrialState.FAIL)


def run_sweep(folder: Path, log: Callable[[str], None] = print) -> dict:
    """Run or resume the sweep in `folder` until its trials are done or it is asked to stop; returns sweep.json."""
    import os

    folder = Path(folder).resolve()
    plan = sf.read_plan(folder)
    current = sf.read_status(folder)
    if current.get("state") in (RunState.RUNNING, RunState.STOPPING) and current.get("pid") not in (None, os.getpid()):
        raise ConfigError([Message("sweep.active", sweep=folder.name, state=current["state"])], "the sweep")
    sf.update_status(folder, state=RunState.RUNNING, pid=os.getpid(), error=None, started_at=time.time())
    try:
        seed = RunConfig.load(folder / "config.yaml").train.seed
        study, dims = open_study(folder, plan, seed)
        key = plan["metric_key"]
        queue = pending(folder, study, log)
        write_plan(folder, study)
        while not (folder / sf.STOP_FILE).exists():
            if queue:
                trial, run_dir, reported = queue.pop(0)
            elif sum(counted(t) for t in study.get_trials(deepcopy=False)) < plan["trials_target"]:
                (trial, run_dir), reported = start_trial(folder, study, dims, plan, log), ()
                if trial is None:
                    continue
            else:
                break
            write_plan(folder, study)
            outcome = follow(folder, trial, run_dir, key, log, reported)
            if outcome == "stopped":
                write_plan(folder, study)
                break  # the trial stays running in the study: resuming the sweep continues it
            finish(study, trial, outcome, run_dir, key)
            log(f"trial {trial.number}: {outcome}" + (f", {key} {metric_rows(run_dir, key)[-1][1]:.4f}"
                                                       if outcome == "done" and metric_rows(run_dir, key) else ""))
            write_plan(folder, study)
        stopped = (folder / sf.STOP_FILE).exists()
        sf.update_status(folder, state=RunState.STOPPED if stopped else RunState.DONE, pid=None,
                         finished_at=time.time())
        return write_plan(folder, study)
    except BaseException as err:
        sf.update_status(folder, state=RunState.FAILED, pid=None, **runs.error_fields(f"{type(err).__name__}: {err}"))
        raise
