"""Sweeps (engine/sweep) on the tiny model: a search space is checked against the schema up front; trials are
ordinary runs; a sweep stopped after one trial resumes with the second and records both and the best."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def engine_cli(*args, home, timeout=600):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def tiny_sets(model: str) -> list[str]:
    sets = [f"model={model}", "train.max_steps=4", "train.eval_steps=2", "train.save_steps=2",
            "train.max_seq_len=96", "data.validation_split=0.2"]
    return [arg for item in sets for arg in ("--set", item)]


def test_space_outside_the_schema_is_refused_by_name(tmp_path):
    result = engine_cli("sweep", "presets/quickstart.yaml", "--space", "train.learnin_rate=1e-5:1e-3:log",
                        "--space", "method.r=0,8", "--space", "train.warmup_steps=-3:4", "--space", "method.alfa=1,2",
                        "--space", "train.scheduler=1:2", home=tmp_path)
    assert result.returncode == 2, result.stderr
    for words in ("train.learnin_rate", "method.r", "below the minimum 1", "train.warmup_steps", "method.alfa",
                  "lora has no parameter 'alfa'", "train.scheduler"):
        assert words in result.stderr, (words, result.stderr)
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir())  # nothing was created


def test_space_parsing_follows_the_declarations():
    from engine.core.config import ConfigError, RunConfig
    from engine.sweep.space import parse_space

    cfg = RunConfig.from_dict({})
    lr, r, packing = parse_space(["train.learning_rate=1e-5:1e-3:log", "method.r=8,16,32", "train.packing=true,false"],
                                 cfg)
    assert (lr.low, lr.high, lr.log, lr.choices) == (1e-5, 1e-3, True, ())
    assert r.choices == (8, 16, 32) and all(isinstance(v, int) for v in r.choices)
    assert packing.choices == (True, False)
    with pytest.raises(ConfigError, match="grid sampler needs a list"):
        parse_space(["train.learning_rate=1e-5:1e-3"], cfg, "grid")
    with pytest.raises(ConfigError, match="LOW .* must be below HIGH"):
        parse_space(["train.learning_rate=1e-3:1e-5"], cfg)
    with pytest.raises(ConfigError, match="validation split.* above 0|validation_split"):
        from engine.sweep.folder import create_sweep

        create_sweep({"data": {"validation_split": 0}}, ["method.r=4,8"], 2)


def test_stopped_after_one_trial_resumes_with_the_second(tiny_model, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "engine", "sweep", "presets/quickstart.yaml", *tiny_sets(tiny_model),
               "--space", "train.learning_rate=1e-4:1e-2:log", "--space", "method.r=4,8", "--trials", "2",
               "--name", "lr"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    plan_path = None
    while time.time() < deadline and process.poll() is None:
        found = list((home / "sweeps").glob("*/sweep.json")) if (home / "sweeps").is_dir() else []
        plan_path = found[0] if found else None
        plan = json.loads(plan_path.read_text()) if plan_path else {}
        if any(t["state"] == "complete" for t in plan.get("trials", [])):
            (plan_path.parent / "STOP").write_text("now")  # what `engine sweep --stop` and the page's Stop write
            break
        time.sleep(0.5)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    folder = plan_path.parent
    assert json.loads((folder / "status.json").read_text())["state"] == "stopped"
    stopped = json.loads((folder / "sweep.json").read_text())
    assert [t["state"] for t in stopped["trials"]][0] == "complete"
    assert sum(t["state"] == "complete" for t in stopped["trials"]) == 1, stopped["trials"]
    first = stopped["trials"][0]

    result = engine_cli("sweep", "--resume", folder.name, home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(result.stdout.strip().splitlines()[-1]) == folder
    plan = json.loads((folder / "sweep.json").read_text())
    complete = [t for t in plan["trials"] if t["state"] == "complete"]
    assert len(complete) == 2 and complete[0] == first  # the first trial is kept as it was
    for trial in complete:  # each an ordinary run with its own folder, settings as Optuna chose them
        run_dir = home / "runs" / trial["run"]
        config = (run_dir / "config.yaml").read_text()
        assert f"learning_rate: {trial['params']['train.learning_rate']}" in config
        assert f"r: {trial['params']['method.r']}" in config
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
        assert trial["value"] == evals[-1] and trial["steps"]  # reported per eval step, final value the last
    best = min(complete, key=lambda t: t["value"])
    assert plan["best"]["number"] == best["number"] and plan["best"]["value"] == best["value"]
    assert json.loads((folder / "status.json").read_text())["state"] == "done"

    from engine.sweep.folder import longer_config

    os.environ["TUNELOOM_HOME"] = str(home)
    try:
        longer = longer_config(folder)
    finally:
        del os.environ["TUNELOOM_HOME"]
    assert longer["train"]["max_steps"] == 8 and longer["name"].endswith("-longer")
    assert longer["train"]["learning_rate"] == best["params"]["train.learning_rate"]


def test_a_sweep_from_the_page_records_both_trials_and_the_best(tiny_model, workspace, monkeypatch):
    """The Sweep & merge tab's handlers, as the page calls them: start, follow (table, plot), train the best longer."""
    monkeypatch.setenv("TUNELOOM_MODEL_DIRS", str(Path(tiny_model).parent))  # as an operator allows a models folder
    from ui import sweep_tab

    sets = "\n".join(item for item in tiny_sets(tiny_model) if item != "--set")
    message, picked = sweep_tab.on_start("presets/quickstart.yaml", sets, "method.r=4,8", 2, "grid", "eval_loss",
                                         "page")
    assert "tl-ok" in message, message
    sweep_id = picked["value"]
    deadline = time.time() + 420
    while time.time() < deadline:
        summary, failure, table, plot, setting = sweep_tab.show_sweep(sweep_id)
        assert not failure, failure
        if "done" in summary and "best" in summary:
            break
        time.sleep(2)
    assert "2/2" in summary and "best: trial" in summary, summary
    assert [row[1] for row in table["data"]] == ["complete", "complete"]  # 2 trials: none pruned (no median yet)
    assert sorted(plot["value"]["value"]) == [4.0, 8.0] and setting["value"] == "method.r"  # grid: both values
    longer = sweep_tab.on_longer(sweep_id)
    assert "tl-ok" in longer, longer
    from engine.core import runs
    from engine.training import launcher

    run_dir = next(r for r in runs.list_runs() if r["id"].endswith("-longer"))["path"]
    assert "max_steps: 8" in (Path(run_dir) / "config.yaml").read_text()  # twice the trials' 4
    launcher.stop(Path(run_dir), grace_s=5)  # nothing more to see: it started
    zh_summary = sweep_tab.show_sweep(sweep_id, lang="zh")[0]
    assert "最佳" in zh_summary and "越低越好" in zh_summary


def test_a_trial_worse_than_the_median_at_an_eval_step_is_pruned(tmp_path, monkeypatch):
    """Optuna's median pruner, fed from a trial run's metrics.jsonl as the sweep follows it."""
    import optuna

    from engine.core import runs
    from engine.sweep import runner
    from engine.training import launcher

    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for final in (1.0, 1.2):  # two finished trials, each with eval loss 1.5 at step 2
        trial = study.ask()
        trial.report(1.5, 2)
        study.tell(trial, final)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.update_status(run_dir, state="running", pid=os.getpid())
    runs.append_metrics(run_dir, {"step": 1, "loss": 3.0})
    runs.append_metrics(run_dir, {"step": 2, "eval_loss": 2.5})  # worse than both at the same step
    stopped = []
    monkeypatch.setattr(launcher, "stop", lambda path, *a, **k: stopped.append(path) or runs.update_status(
        path, state="done", stopped_early=True))
    trial = study.ask()
    assert runner.follow(tmp_path, trial, run_dir, "eval_loss", log=lambda line: None) == "pruned"
    assert stopped == [run_dir] and study.trials[-1].intermediate_values == {2: 2.5}
    # a trial as good as the others at that step is followed to its end
    good = tmp_path / "good"
    good.mkdir()
    runs.update_status(good, state="done", pid=None)
    runs.append_metrics(good, {"step": 2, "eval_loss": 1.4})
    assert runner.follow(tmp_path, study.ask(), good, "eval_loss", log=lambda line: None) == "done"
