"""tests/app_server.py's clean-up: jobs a failed browser or API test leaves running in its workspace are killed
when its app stops, and nothing else is."""
from __future__ import annotations

import json
import subprocess
import sys

from app_server import end_jobs_left_running


def job(home, state: str, names_home: bool) -> subprocess.Popen:
    """A stand-in background job: its own session, as engine/core/jobs.spawn starts them, and a status file."""
    folder = home / "runs" / f"{state}-{names_home}"
    folder.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]
                               + ([str(folder / "config.yaml")] if names_home else []), start_new_session=True)
    (folder / "status.json").write_text(json.dumps({"state": state, "pid": process.pid}))
    return process


def test_running_jobs_of_the_workspace_are_killed_and_nothing_else(tmp_path):
    home = tmp_path / "home"
    left_running = job(home, "running", names_home=True)
    queued = job(home, "queued", names_home=True)
    finished = job(home, "done", names_home=True)  # a status that says done: its pid may be another process now
    stranger = job(home, "running", names_home=False)  # a reused pid: its command does not name the workspace
    try:
        assert sorted(end_jobs_left_running(home)) == sorted([left_running.pid, queued.pid])
        assert left_running.wait(timeout=10) == -9 and queued.wait(timeout=10) == -9
        assert finished.poll() is None and stranger.poll() is None
    finally:
        for process in (left_running, queued, finished, stranger):
            process.kill()
            process.wait()
