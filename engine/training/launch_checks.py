"""What stops a launch of several processes or machines before it starts, apart from the launcher so that the
pre-run checks (engine/training/preflight.py) and the launcher (which runs them) do not import each other."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.core import jobs
from engine.core.config import RunConfig
from engine.core.messages import Message


def _processes(cfg) -> int:
    return max(1, int(cfg.train.num_processes)) if cfg is not None else 1


def _machines(cfg) -> int:
    return max(1, int(cfg.train.num_machines)) if cfg is not None else 1


def deepspeed_refusal() -> str | None:
    """Why DeepSpeed cannot be used here (not installed, or its import fails), or None when it imports. Imported in
    a child process: DeepSpeed imports torch and may build extensions, which the app's process never does."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        return "not installed"
    probe = subprocess.run([sys.executable, "-c", "import deepspeed"], capture_output=True, text=True, timeout=300,
                           env=jobs.engine_env())
    if probe.returncode != 0:
        lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit code {probe.returncode}")[:300]
    return None


def launch_problems(cfg: RunConfig) -> list[str]:
    """What stops a multi-process launch before it starts (DeepSpeed that does not import, adapters under FSDP on
    CPU processes, a missing accelerate config file)."""
    from engine.core.device import gpus
    from engine.core.registry import OBJECTIVES
    from engine.methods import METHODS

    found = []
    if _processes(cfg) == 1 and _machines(cfg) == 1 and not cfg.train.accelerate_config:
        return found
    if cfg.train.distributed in ("zero2", "zero3"):
        reason = deepspeed_refusal()
        if reason:
            found.append(Message("launch.no_deepspeed", field="train.distributed", value=cfg.train.distributed,
                                 reason=reason))
    method = METHODS.get(cfg.method.name) if cfg.method.name in METHODS else None
    cpu_fsdp = cfg.train.distributed == "fsdp" and not gpus()
    if cpu_fsdp and method is not None and not method.trains_base_weights:
        found.append(Message("launch.cpu_fsdp_adapters", field="train.distributed", method=cfg.method.name))
    objective = OBJECTIVES.get(cfg.train.objective) if cfg.train.objective in OBJECTIVES else None
    if cpu_fsdp and objective is not None and not objective.supervised:  # TRL's trainers: not sharded on CPU here
        found.append(Message("launch.cpu_fsdp_objective", field="train.objective", value=cfg.train.objective))
    if cpu_fsdp and cfg.train.save_steps > 0:  # engine/training/cpu_fsdp.py gathers the weights at the end only
        found.append(Message("launch.cpu_fsdp_checkpoints", field="train.save_steps", value=cfg.train.save_steps))
    if cfg.train.accelerate_config and not Path(cfg.train.accelerate_config).is_file():
        found.append(f"train.accelerate_config: {cfg.train.accelerate_config} does not exist; "
                     "create one with `accelerate config --config_file PATH`")
    return found
