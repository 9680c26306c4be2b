"""The run's human log (train.log): one line per event, timestamped, flushed at once.

A trainer started by the app has its stdout redirected into train.log; one started from a terminal
prints to the terminal and copies each line into the run folder's train.log (`copy_to`). Lower
layers (methods with schedules, continual learning) log through here, never through the trainer.
"""
from __future__ import annotations

import time
from pathlib import Path

_COPIES: list = []  # open train.log handles when stdout is a terminal rather than the log itself


def log(message: str) -> None:
    line = f"[tuneloom {time.strftime('%H:%M:%S')}] {message}"
    print(line, flush=True)
    for handle in _COPIES:
        handle.write(line + "\n")
        handle.flush()


def copy_to(run_dir: Path) -> None:
    """Also write every logged line to RUN/train.log (one run per process; tests run several in turn)."""
    for handle in _COPIES:
        handle.close()
    _COPIES[:] = [open(Path(run_dir) / "train.log", "a", encoding="utf-8")]
