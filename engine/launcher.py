"""Start and stop trainer processes (import-light: the UI calls this).

A trainer is its own process in its own session, started from an argument list (never a
shell), writing only to its run folder: the UI can die, restart or lose its browser and the
run carries on. Output goes to train.log, never to a pipe that fills up when nobody reads it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine import runs
from engine.config import RunConfig
from engine.workspace import PROJECT_ROOT

STOP_GRACE_S = 60.0


def create_run(cfg: RunConfig) -> Path:
    run_dir = runs.new_run_dir(cfg.name or cfg.method.name)
    runs.write_atomic(run_dir / "config.yaml", cfg.to_yaml())
    runs.update_status(run_dir, state="queued", created_at=time.time(), pid=None, error=None)
    return run_dir


def trainer_command(run_dir: Path, resume: bool = False) -> list[str]:
    command = [sys.executable, "-m", "engine", "train", str(run_dir / "config.yaml")]
    return command + (["--resume"] if resume else [])


def spawn(run_dir: Path, resume: bool = False) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "TUNELOOM_STDOUT_IS_LOG": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    with open(run_dir / "train.log", "ab") as log:
        process = subprocess.Popen(
            trainer_command(run_dir, resume), cwd=str(PROJECT_ROOT), env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    runs.update_status(run_dir, pid=process.pid, state="queued" if not resume else "running")
    # reap the child when it exits so it never lingers as a zombie that looks alive
    threading.Thread(target=process.wait, daemon=True).start()
    return process.pid


def start(cfg: RunConfig) -> Path:
    """Check (model limit, data file, disk; raises ConfigError listing every problem), then spawn."""
    from engine.preflight import check

    check(cfg)
    run_dir = create_run(cfg)
    spawn(run_dir)
    return run_dir


def resume(run_dir: Path) -> Path:
    status = runs.read_status(run_dir)
    if status.get("state") in runs.ACTIVE:
        raise RuntimeError(f"{Path(run_dir).name} is still {status['state']}; stop it before resuming")
    runs.update_status(run_dir, state="queued", error=None)
    spawn(Path(run_dir), resume=True)
    return Path(run_dir)


def stop(run_dir: Path, grace_s: float = STOP_GRACE_S) -> None:
    """Ask the trainer to save and exit; kill it if it has not gone after `grace_s`."""
    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    pid = status.get("pid")
    if status.get("state") not in runs.ACTIVE or not pid:
        return
    runs.write_atomic(run_dir / runs.STOP_FILE, str(time.time()))
    runs.update_status(run_dir, state="stopping")
    if status.get("state") == "queued":
        _signal(pid, signal.SIGKILL)  # nothing to save yet
        runs.update_status(run_dir, state="failed", error="stopped while queued")
        return
    _signal(pid, signal.SIGTERM)

    def enforce():
        deadline = time.time() + grace_s
        while time.time() < deadline:
            if not runs.pid_alive(pid):
                return
            time.sleep(0.5)
        _signal(pid, signal.SIGKILL)
        runs.update_status(run_dir, state="failed", error=f"did not stop within {grace_s:.0f} s; killed")

    threading.Thread(target=enforce, daemon=True).start()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
