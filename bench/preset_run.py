"""A benchmark's training run: a preset trained by the CLI for N steps (with `--set` overrides), or an existing
run named by the user (`--run`), so a proof can be re-scored without training again."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def preset_run(preset: str, steps: int, overrides: list[str], existing: str | None = None) -> Path | None:
    """The run folder: `existing`, or a new run of `preset` (None when training failed; its error is printed)."""
    if existing:
        return Path(existing)
    command = [sys.executable, "-m", "engine", "train", preset, "--set", f"train.max_steps={steps}"]
    for item in overrides:
        command += ["--set", item]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        return None
    return Path(result.stdout.strip().splitlines()[-1])
