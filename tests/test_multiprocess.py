"""Real 2-process data-parallel training on CPU (gloo, through `accelerate launch`) on the tiny model:
both processes take part, the result matches one process with the same global batch, metrics and
the result are written once, and Stop and Resume work across the processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core import runs

ROOT = Path(__file__).resolve().parent.parent
BASE = ["train.max_seq_len=128", "data.validation_split=0", "train.learning_rate=5e-3", "train.warmup_steps=0",
        "train.eval_steps=0", "train.logging_steps=1", "method.dropout=0.0", "train.scheduler=constant"]


def cli(*args, home, timeout=300):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def train(tiny_model, home, *extra):
    sets = [part for item in [f"model={tiny_model}", *BASE, *extra] for part in ("--set", item)]
    result = cli("train", "presets/quickstart.yaml", *sets, home=home)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return Path(result.stdout.strip().splitlines()[-1]), result.stdout


def adapter(run_dir):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def losses(run_dir):
    return [r["loss"] for r in runs.read_metrics(run_dir) if "loss" in r]


def test_command_preview_is_the_accelerate_command():
    from engine.core.config import RunConfig
    from engine.training.launcher import command_preview, launch_command

    single = RunConfig.from_dict({})
    assert command_preview(single, "c.yaml").endswith("-m engine train c.yaml")
    multi = RunConfig.from_dict({"train": {"num_processes": 2}})
    preview = command_preview(multi, "runs/x/config.yaml")
    assert "accelerate" in preview and "--multi_gpu" in preview and "--num_processes 2" in preview
    assert preview.endswith("-m engine train runs/x/config.yaml")
    nodes = RunConfig.from_dict({"train": {"num_processes": 8, "accelerate_config": "cluster.yaml"}})
    assert "--config_file cluster.yaml" in command_preview(nodes)
    assert launch_command(multi, "c.yaml", resume=True, port=1234)[-1] == "--resume"


def test_two_processes_match_one_process_with_the_same_global_batch(tiny_model, tmp_path):
    home = tmp_path / "home"
    steps = ["train.max_steps=5", "train.save_steps=0"]
    one, _ = train(tiny_model, home, *steps, "train.batch_size=4", "name=one")
    two, output = train(tiny_model, home, *steps, "train.batch_size=2", "train.num_processes=2", "name=two")

    status = runs.read_status(two)
    assert status["world_size"] == 2 and status["state"] == "done" and status["step"] == 5
    assert runs.read_status(one)["world_size"] == 1
    assert output.count("method lora:") == 2  # both processes loaded the model and trained
    rows = [r for r in runs.read_metrics(two) if "loss" in r]
    # tokens are counted over all processes: the two halves of each global batch add up to the whole
    assert [r["tokens_seen"] for r in rows] == [r["tokens_seen"] for r in runs.read_metrics(one) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]  # metrics from the main process only: no duplicates
    a, b = losses(one), losses(two)
    print(f"\nlosses 1 process: {a}\nlosses 2 processes: {b}")
    assert b == pytest.approx(a, rel=2e-4)
    wa, wb = adapter(one), adapter(two)
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(f"largest adapter weight difference: {diff:.2e}")
    assert diff < 1e-4
    assert len(list((two / "adapter").glob("*.safetensors"))) == 1


def test_stop_and_resume_across_two_processes(tiny_model, workspace):
    from engine.core.config import RunConfig
    from engine.training import launcher

    cfg = RunConfig.load(ROOT / "presets" / "quickstart.yaml",
                         [f"model={tiny_model}", *BASE, "train.max_steps=60", "train.save_steps=2",
                          "train.batch_size=2", "train.num_processes=2", "name=mp-stop"])
    run_dir = launcher.start(cfg)
    deadline = time.time() + 180
    while time.time() < deadline and not any(r.get("step", 0) >= 3 for r in runs.read_metrics(run_dir)):
        assert runs.read_status(run_dir).get("state") != "failed", runs.log_tail(run_dir)
        time.sleep(0.3)
    launcher.stop(run_dir)
    while time.time() < deadline and runs.read_status(run_dir).get("state") not in ("done", "failed"):
        time.sleep(0.3)
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["stopped_early"], runs.log_tail(run_dir)
    stopped_at = status["step"]
    assert 3 <= stopped_at < 60 and (run_dir / "adapter").is_dir()
    time.sleep(1.0)
    assert "Traceback" not in (run_dir / "train.log").read_text()  # no process was left waiting or crashed

    launcher.resume(run_dir)
    while time.time() < deadline + 120 and runs.read_status(run_dir).get("state") not in ("done", "failed"):
        time.sleep(0.5)
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and not status["stopped_early"] and status["step"] == 60, runs.log_tail(run_dir)
    assert status["world_size"] == 2
