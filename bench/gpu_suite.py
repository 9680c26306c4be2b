"""Everything only a GPU can show, in one command that fits in 10 minutes on one CUDA machine.

    python bench/gpu_suite.py [--data FILE] [--budget 570]      (or: bash bench/gpu_suite.sh)

Stages, each in its own process with its own time limit (a stage that fails or runs out of time is recorded as
such and the next one runs):
1. throughput: Tuneloom against the transformers.Trainer + peft reference in bf16 (bench/throughput.py,
   bench/reference_trainer.py), LoRA r16 on the default model -> bench/results/throughput_gpu_*_bf16.md
2. qlora: a QLoRA run whose 4-bit layers use bitsandbytes' CUDA kernels: loss, tokens/s, peak GPU memory, the
   kernels' backend -> bench/results/qlora_gpu.md
3. memory: the memory estimate against the measured peak (torch.cuda.max_memory_allocated + the CUDA context) over
   the methods matrix (bench/memory_accuracy.py, one cell per method) -> bench/results/memory_accuracy_cuda_gpu.md
4. multi-GPU, where there are 2 GPUs: one process against DDP and FSDP on two (bench/fsdp_cpu.py on the GPUs)
   -> bench/results/fsdp_gpu.md
A summary with the device name, each stage's outcome and time goes to bench/results/gpu_suite_gpu.md.

Without CUDA it refuses at once with the reason and exit code 3 (tests/test_sharding_launch.py checks it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
NO_CUDA_EXIT = 3
# seconds per stage, summing to under 10 minutes with the model loads
LIMITS = {"throughput": 170, "qlora": 100, "memory": 190, "multi_gpu": 110}


def cuda_devices() -> list[str]:
    """The names of the CUDA devices torch sees (empty without CUDA), asked in a child process so that a broken
    driver is a message, not a crash of this script."""
    probe = subprocess.run([sys.executable, "-c", "import json, torch; print(json.dumps([torch.cuda.get_device_name(i) "
                            "for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []))"],
                           capture_output=True, text=True, timeout=120)
    try:
        return json.loads(probe.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return []


def stage(name: str, command: list[str], limit: float, log_dir: Path) -> dict:
    """Run one stage as its own process within `limit` seconds; its outcome for the summary."""
    log = log_dir / f"{name}.log"
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as out:
        try:
            code = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=limit).returncode
            outcome = "done" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            outcome = f"stopped at its limit of {limit:.0f} s"
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return {"stage": name, "outcome": outcome, "seconds": time.perf_counter() - began, "tail": tail}


def qlora_command(data: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "gpu_suite.py"), "--qlora-only", "--data", data]


def qlora_run(data: str) -> int:
    """A short QLoRA run on the GPU; writes bench/results/qlora_gpu.md."""
    import bitsandbytes as bnb
    import torch

    from engine.core import runs

    home = Path(tempfile.mkdtemp(prefix="tuneloom-qlora-"))
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    sets = ["method.name=qlora", f"data.train={data}", "train.max_steps=20", "train.eval_steps=0",
            "train.save_steps=0", "train.max_seq_len=512", "train.precision=auto"]
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml",
                             *[part for item in sets for part in ("--set", item)]],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=LIMITS["qlora"])
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1
    run = Path(result.stdout.strip().splitlines()[-1])
    status = runs.read_status(run)
    rows = [r for r in runs.read_metrics(run) if "loss" in r]
    log = (run / "train.log").read_text()
    four_bit = [line for line in log.splitlines() if "4-bit" in line or "nf4" in line.lower()]
    backend = getattr(getattr(bnb, "cextension", None), "BNB_BACKEND", "unknown")
    lines = [f"# QLoRA on a GPU ({date.today().isoformat()})", "",
             f"Device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, bitsandbytes {bnb.__version__} "
             f"(backend {backend}).",
             f"Settings: default model, QLoRA (NF4 base, LoRA adapters), 20 steps, batch 4, max_seq_len 512, "
             f"precision {status.get('precision')}, data `{Path(data).name}`.", "",
             "| step | loss | tokens/s | peak memory (allocator + context) |", "|---|---|---|---|"]
    for r in rows[:: max(1, len(rows) // 10)] + rows[-1:]:
        lines.append(f"| {r['step']} | {r['loss']:.4f} | {r.get('tokens_per_second') or 0:,.0f} | "
                     f"{(r.get('peak_memory_bytes') or 0) / 2**30:.2f} GiB |")
    lines += ["", f"Estimate at launch: {(status.get('estimate_peak_bytes') or 0) / 2**30:.2f} GiB. "
              f"Trained in: {status.get('dtypes')}.", "", "The log's lines on the 4-bit layers:", ""]
    lines += [f"    {line}" for line in four_bit[:5]] or ["    (none found)"]
    (RESULTS / "qlora_gpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "presets" / "data" / "chat_multiturn.jsonl"),
                        help="instruction data for the throughput and QLoRA stages (default: a preset's data)")
    parser.add_argument("--budget", type=float, default=570, help="seconds for all stages together")
    parser.add_argument("--qlora-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    devices = cuda_devices()
    if not devices:
        print("bench/gpu_suite.py: no CUDA device here (torch.cuda.is_available() is False). This suite measures "
              "what only a GPU can show (bf16 throughput against the reference, QLoRA with bitsandbytes' CUDA "
              "kernels, the memory estimate against torch.cuda.max_memory_allocated, DDP/FSDP on 2 GPUs); run it "
              "on a machine with an NVIDIA GPU and a CUDA build of torch. The CPU results are in bench/results/.",
              file=sys.stderr)
        return NO_CUDA_EXIT
    if args.qlora_only:
        return qlora_run(args.data)
    logs = Path(tempfile.mkdtemp(prefix="tuneloom-gpu-suite-"))
    scale = min(1.0, args.budget / sum(LIMITS.values()))
    plan = [("throughput", [sys.executable, "bench/throughput.py", "--data", args.data, "--steps", "30",
                            "--precision", "bf16", "--out", str(RESULTS / "throughput_gpu")]),
            ("qlora", qlora_command(args.data)),
            ("memory", [sys.executable, "bench/memory_accuracy.py", "--steps", "3", "--seq", "512", "--batch", "4",
                        "--gc", "off", "--precision", "bf16", "--tag", "gpu", "--timeout", "60"])]
    if len(devices) >= 2:
        plan.append(("multi_gpu", [sys.executable, "bench/fsdp_cpu.py", "--steps", "4",
                                   "--out", str(RESULTS / "fsdp_gpu.md")]))
    began = time.perf_counter()
    outcomes = [stage(name, command, LIMITS[name] * scale, logs) for name, command in plan]
    if len(devices) < 2:
        outcomes.append({"stage": "multi_gpu", "outcome": f"skipped: {len(devices)} GPU (needs 2)", "seconds": 0.0,
                         "tail": []})
    lines = [f"# GPU suite ({date.today().isoformat()})", "",
             f"Devices: {', '.join(devices)} ({len(devices)}). Total {time.perf_counter() - began:.0f} s.", "",
             "Reproduce: `bash bench/gpu_suite.sh`", "", "| stage | outcome | seconds | last lines |",
             "|---|---|---|---|"]
    for o in outcomes:
        tail = " / ".join(line.replace("|", "/")[:80] for line in o["tail"])
        lines.append(f"| {o['stage']} | {o['outcome']} | {o['seconds']:.0f} | {tail} |")
    lines += ["", f"Logs of this run: {logs}"]
    (RESULTS / "gpu_suite_gpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if all(o["outcome"] == "done" or o["outcome"].startswith("skipped") for o in outcomes) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
