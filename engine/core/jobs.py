"""Background jobs (trainer, evaluation, server, chat worker): started from an argument list, never a shell,
with one environment, in a session of their own (the UI can die and they carry on), their output in a log
file rather than a pipe nobody reads, and reaped when they end so they never linger as zombies that look alive.
Import-light: the UI starts jobs through this."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from enum import Enum
from pathlib import Path

from engine.core.workspace import PROJECT_ROOT


class RunState(str, Enum):
    """The `state` of every background job's status file (a run's status.json, an evaluation's eval/status.json,
    a server's serve.json). The only place these words are written: the rest of the code names them from here
    (tests/test_structure_rules.py checks). A str, so status files stay plain JSON and compare with what they read."""
    QUEUED = "queued"      # a run written, its trainer not yet at the first step
    STARTING = "starting"  # a server or evaluation loading its model
    RUNNING = "running"
    STOPPING = "stopping"  # asked to stop; saves at the current step
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"    # a server that was shut down

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


ACTIVE = (RunState.QUEUED, RunState.RUNNING, RunState.STOPPING)  # a trainer process owns the run
STOPPABLE = (RunState.QUEUED, RunState.RUNNING)
WITH_PROCESS = ACTIVE + (RunState.STARTING,)  # any job whose process should be alive


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
