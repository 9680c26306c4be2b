"""Start and stop trainer processes (import-light: the UI calls this).

A trainer is its own process in its own session, started from an argument list (never a
shell), writing only to its run folder: the UI can die, restart or lose its browser and the
run carries on. Output goes to train.log, never to a pipe that fills up when nobody reads it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from engine.core import jobs, runs
from engine.core.config import RunConfig
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.core.workspace import PROJECT_ROOT
from engine.training.launch_checks import _machines, _processes, deepspeed_refusal, launch_problems  # noqa: F401

STOP_GRACE_S = 60.0
LAUNCH_ENV = "TUNELOOM_LAUNCH"  # the token of the launch a trainer process belongs to (see launch_env)


def create_run(cfg: RunConfig, name: str | None = None, **fields) -> Path:
    run_dir = runs.new_run_dir(name or cfg.name or cfg.method.name)
    runs.write_atomic(run_dir / "config.yaml", cfg.to_yaml())
    runs.update_status(run_dir, state=RunState.QUEUED, created_at=time.time(), pid=None, error=None,
                       **runs.run_facts(cfg), **fields)
    if "WORLD_SIZE" in os.environ:  # started by hand under accelerate/torchrun: tell the other processes
        runs.write_atomic(_launch_note(), str(run_dir))
    return run_dir


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def is_local_main_process() -> bool:
    """The first process on this machine: it creates the run folder its machine's other processes share (on the
    main machine that is the run's folder; on another machine, a local one the main machine's records do not need)."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) == 0


def _launch_note() -> Path:
    """A file naming the run folder that rank 0 created for this launch: the processes of one launch on
    one machine share their parent (the torchrun agent) and the main port."""
    from engine.core.workspace import subdir

    return subdir("locks") / f"launch-{os.getppid()}-{os.environ.get('MASTER_PORT', '')}.run"


def shared_run_dir(cfg: RunConfig, timeout_s: float = 300.0) -> Path:
    """On a non-main process started by hand with a preset: the run folder rank 0 creates for this launch."""
    note, deadline = _launch_note(), time.time() + timeout_s
    while time.time() < deadline:
        if note.is_file() and note.stat().st_mtime > time.time() - timeout_s:
            return Path(note.read_text().strip())
        time.sleep(0.2)
    raise RuntimeError(f"process {os.environ.get('RANK')}: the main process did not create a run folder in "
                       f"{timeout_s:.0f} s")


def launch_env(run_dir: Path) -> dict:
    """The environment entry that tells a trainer process "train into this folder": a fresh token, also
    written into the run's status. `python -m engine train RUN/config.yaml` trains into RUN only when its
    token matches (launched_into); run by hand on a run's config, it reproduces the run in a new folder."""
    token = uuid.uuid4().hex
    runs.update_status(run_dir, launch=token)
    return {LAUNCH_ENV: token}


def launched_into(run_dir: Path) -> bool:
    token = os.environ.get(LAUNCH_ENV)
    return bool(token) and (runs.read_json(Path(run_dir) / "status.json", {}) or {}).get("launch") == token


def foreground(run_dir: Path, resume: bool = False) -> int | None:
    """`python -m engine train` of a config with num_processes > 1: run the processes through
    `accelerate launch` and wait (exit code). None when this process should train itself."""
    if "WORLD_SIZE" in os.environ:
        return None
    command = trainer_command(Path(run_dir), resume)
    if command[1:3] == ["-m", "engine"]:
        return None
    code = subprocess.call(command, cwd=str(PROJECT_ROOT), env=jobs.engine_env(**launch_env(run_dir)))
    _record_other_machine(Path(run_dir), code)
    return code


def _record_other_machine(run_dir: Path, code: int) -> None:
    """On a machine other than the main one, the run folder is local and the main machine's records the run:
    this one says how this machine's part ended."""
    try:
        rank = RunConfig.load(run_dir / "config.yaml").train.machine_rank
    except Exception:
        return
    if rank > 0:
        outcome = {"state": RunState.DONE} if code == 0 else {"state": RunState.FAILED, **runs.error_fields(
            Message("run.machine_exit", rank=rank, code=code))}
        runs.update_status(run_dir, machine_rank=rank, finished_at=time.time(), **outcome)


def trainer_command(run_dir: Path, resume: bool = False) -> list[str]:
    config = Path(run_dir) / "config.yaml"
    try:
        cfg = RunConfig.load(config)
    except Exception:  # a broken config fails in the trainer, with its message in the run folder
        cfg = None
    port = _free_port() if cfg is not None and _processes(cfg) > 1 else None
    return launch_command(cfg, config, resume, port)


# ---- more than one process: `accelerate launch` (DDP, FSDP, DeepSpeed ZeRO) ----------------------
ACCELERATE_FLAGS = {
    "ddp": ["--multi_gpu"],  # also right on CPU: accelerate then starts gloo processes (--cpu starts only one)
    "fsdp": ["--use_fsdp", "--fsdp_sharding_strategy", "FULL_SHARD", "--fsdp_auto_wrap_policy",
             "TRANSFORMER_BASED_WRAP", "--fsdp_state_dict_type", "FULL_STATE_DICT", "--fsdp_use_orig_params", "true",
             # every process loads the weights from disk itself, so nothing to broadcast from rank 0: accelerate's
             # defaults (true) ask for a GPU-like device and refuse a CPU run ("no available devices found")
             "--fsdp_cpu_ram_efficient_loading", "false", "--fsdp_sync_module_states", "false"],
    "zero2": ["--use_deepspeed", "--zero_stage", "2"],
    "zero3": ["--use_deepspeed", "--zero_stage", "3", "--zero3_save_16bit_model", "true"],
}


def machine_flags(cfg: RunConfig) -> list[str]:
    """accelerate's flags for the machines: one machine, or `num_machines` of them with this one's rank and the
    main machine's address and port (the same command runs on every machine, each with its own rank)."""
    if _machines(cfg) == 1:
        return ["--num_machines", "1"]
    return ["--num_machines", str(_machines(cfg)), "--machine_rank", str(cfg.train.machine_rank),
            "--main_process_ip", cfg.train.main_address.strip(), "--main_process_port", str(cfg.train.main_port)]


def launch_command(cfg: RunConfig | None, config_path: str | Path, resume: bool = False,
                   port: int | None = None) -> list[str]:
    """The argument list that trains `config_path`: the engine itself, or `accelerate launch` around it
    when cfg.train.num_processes > 1 or an accelerate config file (several machines) is given."""
    train = ["-m", "engine", "train", str(config_path)] + (["--resume"] if resume else [])
    if cfg is None or (_processes(cfg) == 1 and _machines(cfg) == 1 and not cfg.train.accelerate_config):
        return [sys.executable] + train
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate)] if accelerate.is_file() else [sys.executable, "-m", "accelerate.commands.launch"]
    command += ["launch"] if accelerate.is_file() else []
    if cfg.train.accelerate_config:
        command += ["--config_file", cfg.train.accelerate_config]  # machines, ranks, main address live there
    else:
        command += ACCELERATE_FLAGS[cfg.train.distributed] + machine_flags(cfg) + ["--mixed_precision", "no",
                                                                                  "--dynamo_backend", "no"]
    # accelerate counts the processes of all machines together; train.num_processes is per machine
    command += ["--num_processes", str(_processes(cfg) * _machines(cfg))]
    if port and _machines(cfg) == 1:  # several machines meet at train.main_port
        command += ["--main_process_port", str(port)]
    return command + train


def command_preview(cfg: RunConfig, config_path: str | Path = "config.yaml", resume: bool = False,
                    overrides: list[str] | tuple = ()) -> str:
    """The exact command a user could run by hand for this config (shell-quoted; for the Train tab): the
    config file, then one `--set KEY=VALUE` per line for each override (engine.core.config.overrides_between).

    The app runs the same list, plus a free --main_process_port when more than one process is used.
    """
    import shlex

    lines = [shlex.join(launch_command(cfg, config_path, resume))]
    lines += [shlex.join(["--set", item]) for item in overrides]
    return " \\\n  ".join(lines)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(run_dir: Path, resume: bool = False) -> int:
    process = jobs.spawn(trainer_command(run_dir, resume), run_dir / "train.log", niceness=jobs.TRAINER_NICENESS,
                         TUNELOOM_STDOUT_IS_LOG="1", **launch_env(run_dir))
    runs.update_status(run_dir, pid=process.pid, state=RunState.RUNNING if resume else RunState.QUEUED)
    return process.pid


def start(cfg: RunConfig) -> Path:
    """Check (model limit, data file, launch, disk; raises ConfigError listing every problem), then spawn."""
    from engine.training.preflight import check

    check(cfg)
    run_dir = create_run(cfg)
    spawn(run_dir)
    return run_dir


def resume(run_dir: Path) -> Path:
    """Continue a stopped or failed run from its last checkpoint; ValueError says why it cannot."""
    refusal = runs.resume_refusal(run_dir)
    if refusal:
        raise ValueError(refusal)
    # no longer stopped early once it resumes
    runs.update_status(run_dir, state=RunState.QUEUED, error=None, stopped_early=False)
    spawn(Path(run_dir), resume=True)
    return Path(run_dir)


def stop(run_dir: Path, grace_s: float = STOP_GRACE_S) -> None:
    """Ask the trainer to save and exit; kill it if it has not gone after `grace_s`."""
    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    pid = status.get("pid")
    if not runs.can_stop(status) or not pid:
        raise ValueError(f"{run_dir.name} is {status.get('state', 'unknown')}; only a queued or running run can "
                         "be stopped")
    runs.write_atomic(run_dir / runs.STOP_FILE, str(time.time()))
    runs.update_status(run_dir, state=RunState.STOPPING)
    if status.get("state") == RunState.QUEUED:
        _signal(pid, signal.SIGKILL)  # nothing to save yet
        runs.update_status(run_dir, state=RunState.FAILED, **runs.error_fields(Message("run.stopped_queued")))
        return
    _signal(pid, signal.SIGTERM)

    def enforce():
        deadline = time.time() + grace_s
        while time.time() < deadline:
            if not runs.pid_alive(pid):
                return
            time.sleep(0.5)
        # the status first: a reader between the kill and a later write would see only "ended without finishing"
        runs.update_status(run_dir, state=RunState.FAILED, **runs.error_fields(Message("run.killed", seconds=grace_s)))
        _signal(pid, signal.SIGKILL)

    threading.Thread(target=enforce, daemon=True).start()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
