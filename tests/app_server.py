"""Start the real app (`python app.py`) on a free port with its own workspace, for API and browser tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # the system's (`make browser`); the tests never download one


def browser_missing(chromium: str = CHROMIUM) -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not Path(chromium).exists():
        return f"{chromium} is missing; install chromium (make browser) to run the browser tests"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make setup installs it)"
    return None


def require_browser(problem: str | None, ci: bool | None = None) -> None:
    """A missing browser skips the browser tests on a developer's machine, and fails them under CI=true:
    CI must not go green without them."""
    if problem is None:
        return
    ci = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes") if ci is None else ci
    if ci:
        pytest.fail(f"CI=true: {problem}", pytrace=False)
    pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(home: Path, timeout_s: float = 90, env: dict | None = None):
    """The app on a free port. The tests' tiny models live in .cache/: the operator allows that folder
    (TUNELOOM_MODEL_DIRS), as a user would allow a folder of their own models."""
    port = free_port()
    env = {**os.environ, "TUNELOOM_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False",
           "TUNELOOM_MODELS": os.environ.get("TUNELOOM_MODELS", str(ROOT / ".cache" / "models")),
           "TUNELOOM_MODEL_DIRS": str(ROOT / ".cache"), **(env or {})}
    log = open(home.parent / "app.log", "wb") if home.parent.exists() else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=str(ROOT), env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}; see {home.parent / 'app.log'}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"app.py did not answer on {url} within {timeout_s} s") from None
                time.sleep(0.5)
        yield url
    finally:
        # SIGINT lets the app shut down cleanly (its atexit hook ends the chat worker)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not subprocess.DEVNULL:
            log.close()
        end_jobs_left_running(home)


def end_jobs_left_running(home: Path) -> list[int]:
    """Kill the background jobs (trainers, evaluations, sweeps) that the app started in `home` and that are still
    running, with their process groups. Returns the pids it killed.

    Jobs outlive the app by design, but a test that fails halfway would leave them running. A trainer held at
    a fault step (TUNELOOM_FAULT) would wait for ever, and the rest of the suite would share the machine with
    it. Only a job whose command line names `home` is killed, so a pid reused by another process is left alone."""
    from engine.core.jobs import WITH_PROCESS
    from engine.core.runs import read_json

    killed = []
    for status_file in home.rglob("status.json"):
        status = read_json(status_file, {})
        try:
            pid = int(status.get("pid") or 0)
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() if pid else ""
        except (OSError, ValueError):  # gone, or not a pid
            continue
        if status.get("state") in WITH_PROCESS and str(home) in command:
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:  # gone meanwhile, or not a group leader
                pass
    return killed
