"""The UI's warm command line (engine/cli_worker.py): `python -m engine ARGS` answered by one process that
keeps its imports, instead of a new process per call. A data check then costs its tokenisation, not seconds
of importing torch and transformers again (tens of seconds when the machine is busy).

One request at a time (a lock); a worker that dies or does not answer in time is killed and the next call
starts a fresh one. Import-light: no torch here, only a child process and pipes.
"""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading

from engine.core.jobs import engine_command, engine_env
from engine.core.workspace import PROJECT_ROOT

WORKER_COMMAND = [sys.executable, "-m", "engine.cli_worker"]


class WarmCli:
    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()

    def _read(self, process: subprocess.Popen, lines: queue.Queue) -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # the worker ended

    def _start(self) -> None:
        self._lines = queue.Queue()
        self._process = subprocess.Popen(WORKER_COMMAND, cwd=str(PROJECT_ROOT), env=engine_env(),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, encoding="utf-8", start_new_session=True)
        threading.Thread(target=self._read, args=(self._process, self._lines), daemon=True).start()

    def _answer(self, timeout: float) -> dict | None:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        return json.loads(line) if line else None

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def warm_up(self, timeout: float = 600) -> bool:
        """Start the worker (if it is not running) and wait until it has done its imports."""
        with self._lock:
            return self._ready(timeout)

    def warm_up_in_background(self) -> None:
        threading.Thread(target=self.warm_up, daemon=True).start()

    def _ready(self, timeout: float) -> bool:
        if self._process is not None and self._process.poll() is None:
            return True
        self._start()
        if (self._answer(timeout) or {}).get("ready"):
            return True
        self.stop()
        return False

    def run(self, *args, timeout: float = 600) -> subprocess.CompletedProcess:
        """What `subprocess.run(python -m engine ARGS)` would give; raises subprocess.TimeoutExpired as it does."""
        command = [str(a) for a in args]
        with self._lock:
            if not self._ready(timeout):
                raise RuntimeError("the engine's worker process could not start")
            self._process.stdin.write(json.dumps(command) + "\n")
            self._process.stdin.flush()
            answer = self._answer(timeout)
            if answer is None:  # no answer in time, or the worker died: the next call starts a fresh one
                died = self._process.poll() is not None
                self.stop()
                if died:
                    raise RuntimeError(f"the engine's worker process ended during `{' '.join(command)}`")
                raise subprocess.TimeoutExpired(engine_command(*command), timeout)
        return subprocess.CompletedProcess(engine_command(*command), answer["returncode"], answer["stdout"],
                                           answer["stderr"])


WARM = WarmCli()
