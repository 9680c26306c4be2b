"""More than one process and more than one machine (issue 28): FSDP over two CPU processes trains the same
losses as one process, DeepSpeed is refused before a run where it does not import, the multi-machine command is
one accelerate accepts (and really starts two "machines" on loopback), and the GPU suite refuses without CUDA."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core import runs
from engine.core.config import ConfigError, RunConfig
from engine.training import launcher
from tests.app_server import free_port

ROOT = Path(__file__).resolve().parent.parent
TINY_RUN = ["data.validation_split=0", "train.max_seq_len=128", "train.warmup_steps=0", "train.scheduler=constant",
            "train.eval_steps=0", "train.save_steps=0", "train.logging_steps=1"]


def cli(*args, home, timeout=600):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def sets(*items):
    return [part for item in items for part in ("--set", item)]


def machines(rank: int, count: int = 3, processes: int = 2, address: str = "10.0.0.5", port: int = 29555):
    return RunConfig.from_dict({"train": {"num_processes": processes, "num_machines": count, "machine_rank": rank,
                                          "main_address": address, "main_port": port}})


# ---- the multi-machine command -------------------------------------------------------------------------
def accelerate_args(command: list[str]):
    """`command` as accelerate's own `launch` parser reads it."""
    from accelerate.commands.launch import launch_command_parser

    start = command.index("launch") + 1 if "launch" in command else command.index("accelerate.commands.launch") + 1
    return launch_command_parser().parse_args(command[start:])


def test_the_multi_machine_command_is_one_accelerate_reads_as_meant():
    cfg = machines(rank=1)
    args = accelerate_args(launcher.launch_command(cfg, "runs/x/config.yaml", port=1234))
    # accelerate counts every machine's processes: 3 machines x 2 processes; the port is the main machine's
    assert (args.num_machines, args.machine_rank, args.main_process_ip, args.main_process_port,
            args.num_processes) == (3, 1, "10.0.0.5", 29555, 6)
    assert args.module and args.training_script == "engine"
    assert args.training_script_args == ["train", "runs/x/config.yaml"]
    single = accelerate_args(launcher.launch_command(RunConfig.from_dict({"train": {"num_processes": 2}}), "c.yaml",
                                                     port=1234))
    assert (single.num_machines, single.num_processes, single.main_process_port) == (1, 2, 1234)


def test_the_pages_preview_is_the_same_multi_machine_command():
    from ui import train_tab

    names = {f"{section}.{param.name}" for section, param in train_tab.SETTINGS}
    assert {"train.num_machines", "train.machine_rank", "train.main_address", "train.main_port"} <= names
    cfg = machines(rank=2, address="node0.cluster")
    preview = train_tab.preview_command(cfg)
    lines = preview.split(" \\\n  ")
    command = shlex.split(lines[0])
    assert command == launcher.launch_command(cfg, train_tab.PRESET.relative_to(ROOT))
    args = accelerate_args(command)
    assert (args.num_machines, args.machine_rank, args.main_process_ip) == (3, 2, "node0.cluster")
    overrides = [shlex.split(line) for line in lines[1:]]
    assert ["--set", "train.machine_rank=2"] in overrides and ["--set", "train.main_address=node0.cluster"] in overrides


def test_machine_settings_are_checked_with_the_field_named():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"train": {"num_machines": 2, "machine_rank": 2}})
    text = str(err.value)
    assert "train.machine_rank: 2 is not below train.num_machines (2)" in text
    assert "train.main_address: several machines need the main machine's address" in text


def test_two_machines_on_loopback_train_as_one_world(tiny_model, tmp_path):
    """The command each machine runs, run twice on this machine (ranks 0 and 1 meeting at 127.0.0.1): one run of
    world size 2, recorded by the main machine."""
    port = free_port()
    common = sets(f"model={tiny_model}", *TINY_RUN, "train.max_steps=3", "train.batch_size=2", "train.num_machines=2",
                  "train.main_address=127.0.0.1", f"train.main_port={port}")
    env = {**os.environ, "TUNELOOM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = [subprocess.Popen([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml", *common,
                                 *sets(f"train.machine_rank={rank}", f"name=machine{rank}")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [p.communicate(timeout=600) for p in started]
    assert [p.returncode for p in started] == [0, 0], outputs[0][1][-3000:] + outputs[1][1][-3000:]
    main, other = (Path(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert runs.read_status(other)["state"] == "done" and runs.read_status(other)["machine_rank"] == 1
    status = runs.read_status(main)
    assert status["state"] == "done" and status["world_size"] == 2 and status["step"] == 3
    assert [r["step"] for r in runs.read_metrics(main) if "loss" in r] == [1, 2, 3]


# ---- DeepSpeed ------------------------------------------------------------------------------------------
def test_deepspeed_is_refused_before_the_run_when_it_does_not_import(tiny_model, tmp_path):
    reason = launcher.deepspeed_refusal()
    imports = subprocess.run([sys.executable, "-c", "import deepspeed"], capture_output=True).returncode == 0
    assert (reason is None) == imports
    if imports:
        pytest.skip("DeepSpeed imports here: ZeRO runs are not refused")
    result = cli("train", "presets/quickstart.yaml", *sets(f"model={tiny_model}", "train.num_processes=2",
                                                           "train.distributed=zero3"), home=tmp_path / "home")
    assert result.returncode == 2
    assert f"train.distributed: zero3 needs DeepSpeed, which does not import here ({reason})" in result.stderr
    assert not list((tmp_path / "home" / "runs").glob("*/config.yaml"))  # nothing was started


def test_fsdp_on_cpu_processes_refuses_adapters_and_takes_full_fine_tuning():
    from engine.core.device import gpus

    if gpus():
        pytest.skip("on GPUs accelerate's own FSDP takes adapters too")
    lora = RunConfig.from_dict({"method": {"name": "lora"}, "train": {"num_processes": 2, "distributed": "fsdp"}})
    assert any("choose ddp for it" in str(p) for p in launcher.launch_problems(lora))
    full = RunConfig.from_dict({"method": {"name": "full"}, "train": {"num_processes": 2, "distributed": "fsdp",
                                                                      "save_steps": 0}})
    assert launcher.launch_problems(full) == []
    checkpoints = RunConfig.from_dict({"method": {"name": "full"}, "train": {"num_processes": 2, "distributed": "fsdp",
                                                                             "save_steps": 20}})
    assert [str(p).split(":")[0] for p in launcher.launch_problems(checkpoints)] == ["train.save_steps"]
    dpo = RunConfig.from_dict({"method": {"name": "full"}, "train": {"num_processes": 2, "distributed": "fsdp",
                                                                     "save_steps": 0, "objective": "dpo"}})
    assert [str(p).split(":")[0] for p in launcher.launch_problems(dpo)] == ["train.objective"]


# ---- FSDP on two CPU processes ------------------------------------------------------------------------
def train(tiny_model, home, *extra):
    """(run folder, every process's output) of a full fine-tuning run of the tiny model."""
    result = cli("train", "presets/quickstart.yaml",
                 *sets(f"model={tiny_model}", "method.name=full", "train.learning_rate=1e-3", "train.max_steps=4",
                       "train.fused_loss=false", *TINY_RUN, *extra), home=home)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return Path(result.stdout.strip().splitlines()[-1]), result.stdout + result.stderr


def test_fsdp_on_two_cpu_processes_trains_the_losses_of_one_process(tiny_model, tmp_path):
    from safetensors.torch import load_file

    home = tmp_path / "home"
    one, _ = train(tiny_model, home, "train.batch_size=4", "name=one")
    two, output = train(tiny_model, home, "train.batch_size=2", "train.num_processes=2", "train.distributed=fsdp",
                "name=fsdp")
    status = runs.read_status(two)
    assert status["world_size"] == 2 and status["state"] == "done"
    shards = [line for line in output.splitlines() if "FSDP on 2 CPU processes" in line]
    assert len(shards) == 2, output[-3000:]  # both processes sharded the model ...
    held, total = (int(x.replace(",", "")) for x in shards[0].split("holds ")[1].split(" parameters")[0].split(" of "))
    assert abs(held - total / 2) <= total * 0.01  # ... each holding half of it
    assert "find_unused_parameters" not in output  # and no DDP wrapped it (its reducer warns about that flag)
    a = [r["loss"] for r in runs.read_metrics(one) if "loss" in r]
    b = [r["loss"] for r in runs.read_metrics(two) if "loss" in r]
    print(f"\nlosses 1 process: {a}\nlosses FSDP x2: {b}")
    assert len(a) == len(b) == 4 and b == pytest.approx(a, rel=2e-4)
    wa = load_file(str(next((one / "model").glob("*.safetensors"))))
    wb = load_file(str(next((two / "model").glob("*.safetensors"))))  # gathered whole at the end
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-4
    # the estimate the run recorded is the per-process one of a sharded run
    sharded = json.loads((two / "status.json").read_text())["estimate_peak_bytes"]
    assert sharded < json.loads((one / "status.json").read_text())["estimate_peak_bytes"]


# ---- the GPU suite --------------------------------------------------------------------------------------
def test_the_gpu_suite_refuses_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the suite itself")
    for command in ([sys.executable, "bench/gpu_suite.py"], ["bash", "bench/gpu_suite.sh"]):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHON": sys.executable})
        assert result.returncode == 3, result.stderr
        assert "no CUDA device here" in result.stderr and "run it on a machine with an NVIDIA GPU" in result.stderr


def test_the_readmes_fsdp_numbers_are_the_recorded_ones():
    import re

    record = (ROOT / "bench" / "results" / "fsdp_cpu.md").read_text()
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("**FSDP on two CPU processes**"):].split("\n\n")[0]
    losses = json.loads(record.split("```json\n")[1].split("```")[0])
    one, fsdp = losses["one process"], losses["fsdp, 2 processes"]
    worst = max(abs(a - b) / abs(a) for a, b in zip(one, fsdp))
    assert f"{worst:.2e}" in paragraph and worst < 1e-4  # the same losses, as recorded
    assert ", ".join(f"{x:.4f}" for x in one) in paragraph and ", ".join(f"{x:.4f}" for x in fsdp) in paragraph
    peaks = re.search(r"Per-process peak: FSDP ([\d.]+) GiB against ([\d.]+) GiB for one process \(([\d.]+)x\) "
                      r"and ([\d.]+) GiB for DDP \(([\d.]+)x\)", record).groups()
    estimate = re.search(r"FSDP per process: ([\d.]+) against ([\d.]+) GiB \(([\d.]+)x\)", record).groups()
    for number in peaks + estimate:
        assert number in paragraph, number
    assert float(peaks[0]) < float(peaks[1]) and float(peaks[0]) < float(peaks[3])  # less per process
