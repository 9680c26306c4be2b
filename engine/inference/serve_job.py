"""A run's OpenAI-compatible server as a background job: started, followed and stopped from its folder
(RUN/serve.json: state starting | running | stopped | failed, pid, url, model). Import-light: the UI uses
this; the server itself is `python -m engine serve RUN` (engine/inference/serve.py)."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from engine.core import jobs, runs
from engine.core.jobs import RunState

STATUS = "serve.json"
LIVE = (RunState.STARTING, RunState.RUNNING)


def read(run_dir: Path) -> dict:
    return runs.job_status(Path(run_dir) / STATUS, "serve.gone")


def record(run_dir: Path, **fields) -> dict:
    path = Path(run_dir) / STATUS
    status = {**(runs.read_json(path, {}) or {}), **fields, "updated_at": time.time()}
    runs.write_json(path, status)
    return status


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start(run_dir: Path, port: int | None = None) -> dict:
    """Serve a finished run on 127.0.0.1 (the page never exposes a server; `python -m engine serve --host`
    with --auth does). Returns the status it starts with; ValueError when it cannot start."""
    run_dir = Path(run_dir)
    current = read(run_dir)
    if current.get("state") in LIVE:
        raise ValueError(f"{run_dir.name} is already served at {current.get('url')}")
    if runs.read_status(run_dir).get("state") != RunState.DONE:
        raise ValueError(f"{run_dir.name} has no finished result to serve yet")
    port = port or free_port()
    process = jobs.spawn(jobs.engine_command("serve", run_dir, "--port", port), run_dir / "serve.log")
    return record(run_dir, state=RunState.STARTING, pid=process.pid, url=f"http://127.0.0.1:{port}/v1",
                  model=run_dir.name, error=None, started_at=time.time())


def stop(run_dir: Path) -> None:
    """SIGTERM: a listening server shuts down gracefully and records "stopped"; one still loading just ends."""
    status = read(run_dir)
    if status.get("state") not in LIVE:
        raise ValueError(f"{Path(run_dir).name} is not being served")
    try:
        os.kill(status["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    if status["state"] == RunState.STARTING:
        record(run_dir, state=RunState.STOPPED)
