"""Background jobs (trainer, evaluation, server, chat worker): started from an argument list, never a shell,
with one environment, in a session of their own (the UI can die and they carry on), their output in a log
file rather than a pipe nobody reads, and reaped when they end so they never linger as zombies that look alive.
Import-light: the UI starts jobs through this."""
from __future__ import annotations

import os
import shutil
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


# How much lower the trainer's CPU priority is than the app's (nice(1) steps; 19 is the lowest): on a machine the
# trainer fills, the page, its status reads and the chat are still answered at once, and training loses only the
# moments the app needs (bench/load.py measures it).
TRAINER_NICENESS = 10


def niced(command: list[str], niceness: int) -> list[str]:
    """`command` run `niceness` steps below this process's priority: through nice(1), so the priority is set
    before the program starts and every process and thread it starts inherits it."""
    exe = shutil.which("nice") if niceness else None
    return [exe, "-n", str(niceness), *command] if exe else list(command)


def spawn(command: list[str], log_path: Path, niceness: int = 0, **extra_env: str) -> subprocess.Popen:
    """Start a background job; `niceness` > 0 runs it at a lower CPU priority (the trainer: TRAINER_NICENESS)."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(niced(command, niceness), cwd=str(PROJECT_ROOT), env=engine_env(**extra_env),
                                   stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if niceness and not shutil.which("nice"):  # no nice(1): lower the started process itself
        try:
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        except OSError:
            pass  # the job still runs, at the app's priority
    threading.Thread(target=process.wait, daemon=True).start()
    return process
