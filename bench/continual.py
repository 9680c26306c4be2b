"""Continual learning on the default model: task A (identity), then task B (fictional planets) from A,
plain / with EWC / with replay; forgetting = loss on A's data after B minus after A.

    python bench/continual.py [--steps 30] [--ewc-lambda 1e4] [--replay 0.5] [--out bench/results/continual_cpu.md]

Writes a markdown table (loss on A and B after each run, forgetting, time). Real training runs in a
temporary workspace; nothing is mocked.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TASK_A, TASK_B = "presets/data/identity.jsonl", "presets/data/planets.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--ewc-lambda", type=float, default=1e4)
    parser.add_argument("--ewc-samples", type=int, default=32)
    parser.add_argument("--replay", type=float, default=0.5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "continual_cpu.md"))
    args = parser.parse_args()
    os.environ.setdefault("TUNELOOM_HOME", tempfile.mkdtemp(prefix="tuneloom-continual-"))

    from engine.core.config import RunConfig
    from engine.training.continual import run_loss_on
    from engine.training.launcher import create_run
    from engine.training.recipe import run

    common = [f"model={args.model}", "train.max_seq_len=256", "data.validation_split=0", "train.warmup_steps=0",
              f"train.learning_rate={args.learning_rate}", "train.eval_steps=0", "train.save_steps=0",
              f"train.max_steps={args.steps}", "train.scheduler=constant", "method.dropout=0.0",
              f"train.ewc_samples={args.ewc_samples}"]

    def train(*extra):
        cfg = RunConfig.load(ROOT / "presets" / "continual_a.yaml", common + list(extra))
        run_dir = create_run(cfg)
        started = time.time()
        run(run_dir / "config.yaml")
        return run_dir, time.time() - started

    results = {}
    a = results["A (identity)"] = train("name=A", f"data.train={TASK_A}", "train.ewc_lambda=1")
    start = f"train.start_from={a[0]}"
    results["B (planets) from A"] = train("name=B", f"data.train={TASK_B}", start)
    results[f"B + EWC (lambda {args.ewc_lambda:g})"] = train("name=B-ewc", f"data.train={TASK_B}", start,
                                                             f"train.ewc_lambda={args.ewc_lambda}")
    results[f"B + replay ({args.replay:g} of A)"] = train("name=B-replay", f"data.train={TASK_B}", start,
                                                          f"data.replay={a[0]}", f"data.replay_fraction={args.replay}")
    rows, base_a = [], None
    for name, (run_dir, seconds) in results.items():
        loss_a, loss_b = run_loss_on(run_dir, TASK_A, 256), run_loss_on(run_dir, TASK_B, 256)
        base_a = loss_a if base_a is None else base_a
        rows.append((name, loss_a, loss_b, loss_a - base_a, seconds))
        print(f"{name}: loss on A {loss_a:.4f}, on B {loss_b:.4f}, forgetting {loss_a - base_a:+.4f}", flush=True)

    lines = [
        "# Continual learning: forgetting of task A after training task B",
        "",
        f"Model `{args.model}`, LoRA r=16 (presets/continual_a.yaml), {args.steps} steps per task, batch 4, "
        f"lr {args.learning_rate:g} constant, fp32 on {platform.machine()} CPU ({os.cpu_count()} cores, shared). "
        f"Task A: `{TASK_A}`; task B: `{TASK_B}`. B starts from A's run (`train.start_from`, the same adapter "
        f"continued). EWC: Fisher on {args.ewc_samples} examples of A. Loss = mean per trained token on the "
        "whole data file. Produced by `python bench/continual.py`.",
        "",
        "| run | loss on A | loss on B | forgetting of A (loss on A − after A) | train time (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {la:.4f} | {lb:.4f} | {f:+.4f} | {s:.0f} |" for n, la, lb, f, s in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
