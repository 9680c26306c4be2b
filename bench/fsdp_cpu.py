"""Sharded training on two CPU processes: FSDP against one process at the same global batch, and against DDP.

    python bench/fsdp_cpu.py [--model smollm2-135m-instruct] [--steps 4] [--out bench/results/fsdp_cpu.md]

Three full fine-tuning runs of `python -m engine train` (quickstart data, max_seq_len 128, constant learning rate,
no warmup, the loss through the model's forward in all three so the sums are the same): one process at batch 4;
two processes (gloo, through `accelerate launch`) at batch 2 each with `train.distributed: fsdp`; and the same with
ddp. Records each run's world size, losses per step, the main process's peak memory (RSS peak above the
process's start, as every run records it) and the memory estimate's per-process figure for the run.
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
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags_line, describe  # noqa: E402

os.environ.setdefault("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))
COMMON = ["method.name=full", "data.validation_split=0", "train.max_seq_len=128", "train.learning_rate=1e-4",
          "train.warmup_steps=0", "train.scheduler=constant", "train.eval_steps=0", "train.save_steps=0",
          "train.logging_steps=1", "train.fused_loss=false", "train.gradient_checkpointing=false"]
RUNS = {"one process": ["train.batch_size=4"],
        "fsdp, 2 processes": ["train.batch_size=2", "train.num_processes=2", "train.distributed=fsdp"],
        "ddp, 2 processes": ["train.batch_size=2", "train.num_processes=2", "train.distributed=ddp"]}


def train(name: str, sets: list[str], model: str, steps: int, home: Path) -> dict:
    """One run through the CLI; its world size, losses, main process's peak and the estimate it recorded."""
    items = [f"model={model}", f"train.max_steps={steps}", f"name={name.split(',')[0].replace(' ', '-')}",
             *COMMON, *sets]
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml",
                             *[part for item in items for part in ("--set", item)]],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    run = Path(result.stdout.strip().splitlines()[-1])
    status = json.loads((run / "status.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train_rows = [r for r in rows if "loss" in r]
    output = result.stdout + result.stderr  # every process's log lines (train.log keeps the main process's)
    return {"name": name, "world_size": status.get("world_size"), "losses": [r["loss"] for r in train_rows],
            "peak": max(r.get("peak_memory_bytes") or 0 for r in train_rows),
            "estimate": status.get("estimate_peak_bytes") or status.get("estimate_bytes"),
            "sharded_processes": output.count("FSDP on 2 CPU processes"), "seconds": time.perf_counter() - began,
            "run": run.name}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fsdp_cpu.md"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tuneloom-fsdp-"))
    results = [train(name, sets, args.model, args.steps, home) for name, sets in RUNS.items()]
    one, fsdp, ddp = results
    worst = max(abs(a - b) / abs(a) for a, b in zip(one["losses"], fsdp["losses"]))
    gib = 2**30
    lines = [f"# FSDP on two CPU processes ({date.today().isoformat()})", "",
             f"Machine: {describe()}. {cpu_flags_line()}.",
             f"Model: {args.model}, full fine-tuning, {args.steps} steps, quickstart data, max_seq_len 128, global "
             "batch 4 (one process x 4, or two processes x 2), constant learning rate 1e-4, no warmup, loss through "
             "the model's forward in every run (FSDP on CPU turns the fused loss off), OMP_NUM_THREADS=1.",
             "", "Reproduce: `python bench/fsdp_cpu.py`", "",
             "| run | world size | processes that sharded | losses per step | peak memory, main process | "
             "estimate per process | seconds |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['world_size']} | {r['sharded_processes']} | "
                     f"{', '.join(f'{x:.4f}' for x in r['losses'])} | {r['peak'] / gib:.2f} GiB | "
                     f"{(r['estimate'] or 0) / gib:.2f} GiB | {r['seconds']:.0f} |")
    lines += ["", f"Largest relative loss difference, FSDP against one process: {worst:.2e}.",
              f"Per-process peak: FSDP {fsdp['peak'] / gib:.2f} GiB against {one['peak'] / gib:.2f} GiB for one "
              f"process ({fsdp['peak'] / one['peak']:.2f}x) and {ddp['peak'] / gib:.2f} GiB for DDP "
              f"({fsdp['peak'] / ddp['peak']:.2f}x).",
              f"Estimate against measurement, FSDP per process: {(fsdp['estimate'] or 0) / gib:.2f} against "
              f"{fsdp['peak'] / gib:.2f} GiB ({(fsdp['estimate'] or 0) / fsdp['peak']:.2f}x).", "",
              "Exact losses (JSON):", "", "```json",
              json.dumps({r["name"]: r["losses"] for r in results}), "```"]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
