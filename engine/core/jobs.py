"""Background jobs (trainer, evaluation, server, chat worker): started from an argument list, never a shell,
with one environment, in a session of their own (the UI can die and they carry on), their output in a log
file rather than a pipe nobody reads, and reaped when they end so they never linger as zombies that look alive.
Import-light: the UI starts jobs through this."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from engine.core.workspace import PROJECT_ROOT


def engine_env(**extra: str) -> dict:
    """The environment of every engine child process: the project importable, output unbuffered."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return env


def engine_command(*args) -> list[str]:
    return [sys.executable, "-m", "engine", *map(str, args)]


def spawn(command: list[str], log_path: Path, **extra_env: str) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=str(PROJECT_ROOT), env=engine_env(**extra_env),
                                   stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    threading.Thread(target=process.wait, daemon=True).start()
    return process
