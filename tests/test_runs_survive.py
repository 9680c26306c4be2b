"""Runs survive anything: SIGKILL + resume, a dying UI, out of memory, a full or read-only disk,
stop (graceful and stuck), one job per device, bad hyperparameters. Real trainer processes on
the tiny model; faults are real (SIGKILL, a real tmpfs filling up) or injected through the
documented TUNELOOM_FAULT hooks in engine/training/failures.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core import runs

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad"
BASE = ["train.max_seq_len=128", "data.validation_split=0", "train.learning_rate=5e-3", "train.warmup_steps=0",
        "train.eval_steps=0", "train.logging_steps=1"]


def overrides(tiny_model, *extra):
    items = [f"model={tiny_model}", *BASE, *extra]
    return [part for item in items for part in ("--set", item)]


def cli(*args, home, env=None, timeout=300):
    full_env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def config(tiny_model, *extra):
    from engine.core.config import RunConfig

    return RunConfig.load(ROOT / "presets" / "quickstart.yaml", [f"model={tiny_model}", *BASE, *extra])


def wait_for(predicate, timeout=120.0, interval=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def train_losses(run_dir):
    return {r["step"]: r["loss"] for r in runs.read_metrics(run_dir) if "loss" in r}


def finished(run_dir):
    state = runs.read_status(run_dir).get("state")
    return state if state in ("done", "failed") else None


# ---- SIGKILL mid-run, then resume: same curve as an uninterrupted run --------------------------

def test_sigkill_then_resume_continues_with_the_same_losses(tiny_model, tmp_path):
    steps = ["train.max_steps=12", "train.save_steps=4", "train.save_total_limit=5"]
    home = tmp_path / "home"
    straight = cli("train", "presets/quickstart.yaml", *overrides(tiny_model, *steps), home=home)
    assert straight.returncode == 0, straight.stderr[-3000:]
    expected = train_losses(Path(straight.stdout.strip().splitlines()[-1]))
    assert sorted(expected) == list(range(1, 13))

    # the same run, frozen after step 6 (checkpoint-4 on disk), then killed with SIGKILL
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), "TUNELOOM_FAULT": "hang_at_step:6"}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml",
                             *overrides(tiny_model, *steps, "name=killed")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_dir = wait_for(lambda: next((home / "runs").glob("*killed*"), None), what="the run folder")
        wait_for(lambda: 5 in train_losses(run_dir) and runs.last_checkpoint(run_dir), what="checkpoint-4")
        time.sleep(0.5)
        assert runs.read_status(run_dir)["state"] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "ended without finishing" in status["error"], status
    checkpoint = runs.last_checkpoint(run_dir)
    assert checkpoint.name == "checkpoint-4"
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "rng_state.pth"):
        assert (checkpoint / name).is_file(), name

    resumed = cli("train", "--resume", str(run_dir), home=home)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["step"] == 12
    assert "resuming from" in (run_dir / "train.log").read_text()
    # steps 5 (and maybe 6) were logged before the kill: the resumed run superseded them in the file itself
    assert [r["step"] for r in metric_lines(run_dir)] == list(range(1, 13))
    got = train_losses(run_dir)
    for step in range(1, 13):
        assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-5), (step, got[step], expected[step])
    assert status["final_loss"] == pytest.approx(expected[12], rel=1e-4)


# ---- Stop, then Resume: a checkpoint at the stop, the same losses as an uninterrupted run --------

def metric_lines(run_dir):
    """The train rows of metrics.jsonl as written (not through the reader, which would hide repeats)."""
    import json

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if "loss" in r]


def test_stop_then_resume_continues_at_the_next_step_with_the_same_losses(tiny_model, tmp_path, monkeypatch):
    from engine.training import launcher

    steps = ["train.max_steps=12", "train.save_steps=0"]  # no periodic checkpoint: only Stop writes one
    home = tmp_path / "home"
    straight = cli("train", "presets/quickstart.yaml", *overrides(tiny_model, *steps), home=home)
    assert straight.returncode == 0, straight.stderr[-3000:]
    expected = train_losses(Path(straight.stdout.strip().splitlines()[-1]))

    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    monkeypatch.setenv("TUNELOOM_FAULT", "wait_at_step:5")  # the trainer pauses after step 5 until stopped
    run_dir = launcher.start(config(tiny_model, *steps, "name=stopped"))
    wait_for(lambda: 4 in train_losses(run_dir), what="step 4")
    with pytest.raises(ValueError, match="is running; stop it before resuming"):
        launcher.resume(run_dir)
    with pytest.raises(ValueError, match="is running; stop it before deleting it"):
        runs.delete_run(run_dir)
    launcher.stop(run_dir)
    assert wait_for(lambda: finished(run_dir), what="the stop") == "done"
    status = runs.read_status(run_dir)
    assert status["stopped_early"] is True and status["step"] == 5, status
    checkpoint = runs.last_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.name == "checkpoint-5"
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "rng_state.pth"):
        assert (checkpoint / name).is_file(), name
    assert runs.resume_refusal(run_dir) is None

    monkeypatch.delenv("TUNELOOM_FAULT")
    launcher.resume(run_dir)
    assert wait_for(lambda: finished(run_dir), what="the resumed run") == "done"
    status = runs.read_status(run_dir)
    assert status["step"] == 12 and status["stopped_early"] is False and status["resumed_from"] == 5, status
    log = (run_dir / "train.log").read_text()
    assert "resuming from" in log and "starting from step 0" not in log
    written = metric_lines(run_dir)
    assert [r["step"] for r in written] == list(range(1, 13))  # every step once, in the file itself
    got = {r["step"]: r["loss"] for r in written}
    for step in range(6, 13):
        assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-5), (step, got[step], expected[step])
    assert runs.resume_refusal(run_dir) == f"{run_dir.name} finished all its steps; there is nothing left to resume"


def test_resume_without_a_checkpoint_is_refused(tiny_model, tmp_path):
    home = tmp_path / "home"
    run_dir = home / "runs" / "crashed"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text((ROOT / "presets" / "quickstart.yaml").read_text())
    runs.update_status(run_dir, state="failed", error="killed", step=3)
    result = cli("train", "--resume", str(run_dir), home=home)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "has no checkpoint to resume from" in result.stderr and "Traceback" not in result.stderr
    assert runs.read_status(run_dir)["state"] == "failed"  # untouched


# ---- the UI process dies: the trainer carries on and a new reader finds it --------------------

def test_trainer_outlives_the_process_that_started_it(tiny_model, tmp_path, monkeypatch):
    home = tmp_path / "home"
    script = (
        "import sys, time\n"
        "from engine.core.config import RunConfig\n"
        "from engine.training.launcher import start\n"
        "cfg = RunConfig.load('presets/quickstart.yaml', "
        f"{['model=' + tiny_model, *BASE, 'train.max_steps=25', 'train.save_steps=0']!r})\n"
        "print(start(cfg), flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    ui = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    run_dir = Path(ui.stdout.readline().strip())
    ui.kill()  # SIGKILL: the "UI" dies without any cleanup
    ui.wait(timeout=10)
    pid = runs.read_json(run_dir / "status.json")["pid"]
    assert runs.pid_alive(pid)

    monkeypatch.setenv("TUNELOOM_HOME", str(home))  # a fresh reader of the workspace, as a restarted UI is
    seen = wait_for(lambda: [r for r in runs.list_runs() if r["state"] == "running" and (r["step"] or 0) >= 1],
                    what="the run listed as running")
    assert seen[0]["id"] == run_dir.name
    assert wait_for(lambda: finished(run_dir), timeout=180, what="the run to end") == "done"
    assert runs.read_status(run_dir)["step"] == 25 and (run_dir / "adapter").is_dir()


# ---- out of memory ---------------------------------------------------------------------------

def test_out_of_memory_is_recorded_with_advice(tiny_model, workspace, monkeypatch):
    from engine.training.launcher import start

    monkeypatch.setenv("TUNELOOM_FAULT", "oom_at_step:2")
    # trust_remote_code on as well (the tiny model ships no code): the trainer must warn about it
    run_dir = start(config(tiny_model, "train.max_steps=10", "train.save_steps=0", "trust_remote_code=true"))
    assert wait_for(lambda: finished(run_dir), what="the run to fail") == "failed"
    status = runs.read_status(run_dir)
    assert status["error"].startswith("Out of memory at step 2 on cpu with batch_size 4, max_seq_len 128, "
                                      "precision auto (fp32)"), status["error"]
    assert "Try: " in status["error"]
    failure = status["failure"]
    assert failure["kind"] == "out_of_memory" and len(failure["advice"]) >= 2
    # the advice and its estimate are for the device and precision this run had (a CPU, auto = fp32 here),
    # not a GPU's bf16: the estimate is the one the CPU run itself would get
    from engine.estimate import estimate

    cpu = estimate(config(tiny_model, "train.max_steps=10", "train.save_steps=0"), device="cpu")
    assert (failure["device"], failure["precision"]) == ("cpu", "fp32")
    assert failure["estimate"]["device"] == "cpu" and failure["estimate"]["details"]["precision"] == "fp32"
    assert failure["estimate"]["total_bytes"] == cpu.total_bytes
    log = (run_dir / "train.log").read_text()
    assert "OutOfMemoryError" in log and "WARNING: trust_remote_code is on" in log
    assert [r["state"] for r in runs.list_runs()] == ["failed"]  # this process (the "app") is fine


# ---- disk full, read-only workspace ------------------------------------------------------------

def _mount_tmpfs(path: Path, size: str, read_only: bool = False) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_not_enough_disk_space_is_refused_before_training(tiny_model, tmp_path):
    home = tmp_path / "small"
    if not _mount_tmpfs(home, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        result = cli("train", "presets/quickstart.yaml", *overrides(tiny_model, "train.max_steps=4"), home=home)
    finally:
        _umount(home)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "workspace: " in result.stderr and "MB free in" in result.stderr and "this run needs about" in result.stderr
    assert "lower train.save_total_limit" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_only_workspace_is_refused_before_training(tiny_model, tmp_path):
    home = tmp_path / "ro"
    mounted = _mount_tmpfs(home, "8m", read_only=True)
    if not mounted:
        home = Path("/sys/tuneloom-home")  # sysfs: no one, not even root, can create files there
    try:
        result = cli("train", "presets/quickstart.yaml", *overrides(tiny_model, "train.max_steps=4"), home=home)
    finally:
        if mounted:
            _umount(home)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "workspace: cannot write to" in result.stderr and "set TUNELOOM_HOME to a writable folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_disk_filling_up_during_training_fails_with_a_clear_message(tiny_model, tmp_path, monkeypatch):
    from engine.training.launcher import start

    home = tmp_path / "disk"
    real = _mount_tmpfs(home, "48m")
    if not real:
        monkeypatch.setenv("TUNELOOM_FAULT", "disk_full_at_step:3")  # no tmpfs: the documented hook
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    run_dir = None
    try:
        run_dir = start(config(tiny_model, "train.max_steps=400", "train.save_steps=3", "train.save_total_limit=1"))
        if real:
            wait_for(lambda: (runs.read_status(run_dir).get("step") or 0) >= 1, what="training to start")
            with open(home / "filler", "wb") as handle:  # something else fills the disk
                try:
                    while True:
                        handle.write(b"\0" * 2**20)
                        handle.flush()
                except OSError:
                    pass
        assert wait_for(lambda: finished(run_dir), timeout=120, what="the run to fail") == "failed"
        status = runs.read_status(run_dir)
    finally:
        if run_dir is not None:
            pid = (runs.read_json(run_dir / "status.json", {}) or {}).get("pid")
            if pid and runs.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if real:
            time.sleep(0.5)
            _umount(home)
    assert status["error"].startswith("The disk holding"), status["error"]
    assert "is full" in status["error"] and "resume the run" in status["error"]
    assert status["failure"]["kind"] == "disk_full"


def test_a_checkpoint_write_cut_short_by_a_full_disk_is_read_as_a_full_disk(tmp_path):
    """torch.save's zip writer loses the errno of a short write ("[enforce fail at inline_container.cc:...]
    unexpected pos ..."): on a disk that is full it is the full disk; on one with room it is not called so."""
    import torch

    from engine.training import failures

    disk = tmp_path / "tiny-disk"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        with pytest.raises(RuntimeError) as cut_short:
            torch.save({"weights": torch.zeros(2**20)}, disk / "optimizer.pt")  # 4 MiB onto a 1 MiB disk
        on_full_disk = failures.explain(cut_short.value, step=3, run_dir=disk)
    finally:
        _umount(disk)
    assert on_full_disk["failure"]["kind"] == "disk_full", (str(cut_short.value), on_full_disk)
    assert on_full_disk["error"].startswith("The disk holding") and "resume the run" in on_full_disk["error"]
    with_room = failures.explain(cut_short.value, step=3, run_dir=tmp_path)  # the same error, a disk with room
    assert with_room["failure"]["kind"] != "disk_full"


# ---- stop: graceful and stuck -----------------------------------------------------------------

def test_stop_saves_the_adapter_at_the_current_step_and_exits_quickly(tiny_model, workspace):
    from engine.training.launcher import start, stop

    run_dir = start(config(tiny_model, "train.max_steps=500", "train.save_steps=0"))
    wait_for(lambda: (runs.read_status(run_dir).get("step") or 0) >= 3, what="step 3")
    pid = runs.read_status(run_dir)["pid"]
    began = time.time()
    stop(run_dir, grace_s=60)
    wait_for(lambda: not runs.pid_alive(pid), timeout=30, interval=0.1, what="the trainer to exit")
    took = time.time() - began
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["stopped_early"] is True, status
    assert 3 <= status["step"] < 500
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert took < 15, f"stop took {took:.1f} s"


def test_a_stuck_trainer_is_killed_after_the_grace_period(tiny_model, workspace, monkeypatch):
    from engine.training.launcher import start, stop

    monkeypatch.setenv("TUNELOOM_FAULT", "hang_at_step:3")
    run_dir = start(config(tiny_model, "train.max_steps=50", "train.save_steps=0"))
    wait_for(lambda: (runs.read_status(run_dir).get("step") or 0) >= 2, what="step 2")
    time.sleep(1.0)  # now it hangs in step 3 and ignores STOP and SIGTERM
    pid = runs.read_status(run_dir)["pid"]
    began = time.time()
    stop(run_dir, grace_s=2)
    wait_for(lambda: not runs.pid_alive(pid), timeout=20, interval=0.1, what="the stuck trainer to be killed")
    took = time.time() - began
    assert 1.5 <= took < 10, took
    status = wait_for(lambda: runs.read_status(run_dir) if runs.read_status(run_dir).get("state") == "failed" else None,
                      timeout=5, what="the failed status")
    assert status["error"] == "did not stop within 2 s; killed"


# ---- one training job per device ----------------------------------------------------------------

def test_a_second_run_is_queued_until_the_first_ends(tiny_model, workspace):
    from engine.training.launcher import start

    first = start(config(tiny_model, "train.max_steps=20", "train.save_steps=0", "name=first"))
    second = start(config(tiny_model, "train.max_steps=4", "train.save_steps=0", "name=second"))
    seen_queued, first_metric_at = set(), {}
    deadline = time.time() + 240
    while time.time() < deadline and not all(finished(r) for r in (first, second)):
        for run_dir in (first, second):
            status = runs.read_status(run_dir)
            if status.get("state") == "queued" and status.get("pid"):
                seen_queued.add(run_dir.name)
            if run_dir not in first_metric_at and (run_dir / "metrics.jsonl").is_file():
                first_metric_at[run_dir] = time.time()
        time.sleep(0.1)
    statuses = {r: runs.read_status(r) for r in (first, second)}
    assert all(s["state"] == "done" for s in statuses.values()), statuses
    winner, waiter = sorted((first, second), key=lambda r: first_metric_at[r])
    assert waiter.name in seen_queued
    assert "queued until it ends" in (waiter / "train.log").read_text()
    assert first_metric_at[waiter] >= statuses[winner]["finished_at"]  # it trained only after the first ended


# ---- bad hyperparameters: every problem at once, nothing heavy loaded --------------------------

def test_bad_hyperparameters_are_reported_together_before_loading(tiny_model, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model: {tiny_model}\ndata: {{train: presets/data/identity.jsonl}}\n"
                   "method: {name: lora, r: 0, target_modules: 'q_proj,qkv_proj'}\n"
                   "train: {learning_rate: -0.001, max_seq_len: 100000, batch_size: 0}\n")
    probe = ("import runpy, sys\nsys.argv = ['engine', 'train', sys.argv[1]]\n"
             "try:\n    runpy.run_module('engine', run_name='__main__')\n"
             "except SystemExit as e:\n    print('torch imported:', 'torch' in sys.modules, file=sys.stderr); raise\n")
    env = {**os.environ, "TUNELOOM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", probe, str(cfg)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "5 problem(s)" in err
    for text in ("method.r: 0 is below the minimum 1",
                 "method.target_modules: qkv_proj: no such linear layer in this llama model",
                 "train.batch_size: 0 is below the minimum 1",
                 "train.learning_rate: -0.001 is below the minimum 0",
                 "train.max_seq_len: 100000 is above this model's limit of 8192 tokens"):
        assert text in err, (text, err)
    assert "torch imported: False" in err
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


def test_launcher_start_runs_the_same_preflight(tiny_model, workspace):
    from engine.core.config import ConfigError
    from engine.training.launcher import start

    with pytest.raises(ConfigError, match="train.max_seq_len: 9000 is above this model's limit of 8192"):
        start(config(tiny_model, "train.max_seq_len=9000"))
    assert not any(runs.runs_dir().iterdir())  # no run folder for a refused start


# ---- rows that are all prompt after truncation ----------------------------------------------------

def test_a_run_where_every_row_is_dropped_fails_clearly(tiny_model, tmp_path):
    result = cli("train", "presets/quickstart.yaml",
                 *overrides(tiny_model, f"data.train={BAD / 'all_prompt.jsonl'}", "train.max_seq_len=64",
                            "train.max_steps=4"), home=tmp_path / "home")
    assert result.returncode != 0
    run_dir = next((tmp_path / "home" / "runs").iterdir())
    status = runs.read_status(run_dir)
    assert status["state"] == "failed"
    assert "every example was dropped" in status["error"]
    assert "the answer starts after max_seq_len (64 tokens)': 6" in status["error"]
    assert "raise max_seq_len or shorten the prompts" in status["error"]


# ---- atomic writes and the metrics file -------------------------------------------------------------

def test_status_writes_are_atomic_and_metrics_tolerate_torn_and_repeated_lines(tmp_path):
    run_dir = tmp_path
    runs.update_status(run_dir, state="running", step=1)
    assert not list(run_dir.glob(".*.tmp"))  # the temp file was renamed over status.json
    assert runs.read_json(run_dir / "status.json")["state"] == "running"
    (run_dir / "status.json").write_text('{"state": "runn')  # a corrupt file never crashes the reader
    assert runs.read_status(run_dir) == {}

    for step in range(1, 7):
        runs.append_metrics(run_dir, {"step": step, "loss": float(step)})
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 7, "lo')  # the trainer was killed mid-line
    tail = runs.MetricsTail(run_dir / "metrics.jsonl")
    assert [r["step"] for r in tail.poll()] == [1, 2, 3, 4, 5, 6]
    assert tail.poll() == []  # the torn line is not returned (nor later mistaken for a row)
    for step in range(5, 9):  # resumed from checkpoint-4: steps 5 and 6 again
        runs.append_metrics(run_dir, {"step": step, "loss": step + 0.5})
    tail.poll()
    assert tail.rewound
    assert [(r["step"], r["loss"]) for r in tail.rows] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.5),
                                                           (6, 6.5), (7, 7.5), (8, 8.5)]
    assert [r["step"] for r in runs.read_metrics(run_dir)] == list(range(1, 9))
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert '{"step": 7, "lo' in lines  # the torn line stayed alone on its line; the next row is intact
