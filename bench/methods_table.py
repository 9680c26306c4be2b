"""Every fine-tuning method on the default model on this machine's CPU: trainable parameters, seconds
per step and the loss reached, written to bench/results/methods_cpu.md.

Each method trains from its own preset (presets/<key>.yaml: the quickstart's data and training
settings, with a learning rate that suits the method) through the real CLI,
`python -m engine train presets/<key>.yaml --set train.max_steps=N`, in a throw-away workspace.
Seconds per step are the mean over the logged steps after the first (warm-up); evaluation and
checkpoints are turned off so only training is timed.

    python bench/methods_table.py [--steps 20] [--methods lora,full] [--out bench/results/methods_cpu.md]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from engine.core.config import RunConfig  # noqa: E402
from engine.core.describe import structure_of  # noqa: E402
from engine.methods import METHODS  # noqa: E402

DEFAULT_MODEL_DIR = ROOT / ".cache" / "models" / "smollm2-135m-instruct"


def train_once(key: str, steps: int, home: Path, timeout: int, sets: tuple[str, ...] = ("train.eval_steps=0",)) -> dict:
    """One method's preset through the CLI for `steps` steps, with `sets` (--set items) on top: what it measured."""
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT),
           "TUNELOOM_MODELS": os.environ.get("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))}
    command = [sys.executable, "-m", "engine", "train", f"presets/{key}.yaml", "--set", f"train.max_steps={steps}",
               "--set", "train.save_steps=0", "--set", "train.logging_steps=1"]
    for item in sets:
        command += ["--set", item]
    started = time.time()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    wall = time.time() - started
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:160], "wall_s": wall}
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    status = json.loads((run_dir / "status.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r]
    per_step = ((rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]) / (rows[-1]["step"] - rows[0]["step"])
                if len(rows) > 1 else None)
    return {"trainable_reported": status.get("trainable_params"), "s_per_step": per_step,
            "first_loss": rows[0]["loss"] if rows else None, "final_loss": rows[-1]["loss"] if rows else None,
            "steps": rows[-1]["step"] if rows else 0, "wall_s": wall,
            "peak_memory_mb": max((r.get("peak_memory_bytes") or 0) for r in rows) / 2**20 if rows else None,
            "max_loss": max((r["loss"] for r in rows), default=None), "base_eval_loss": status.get("base_eval_loss"),
            "final_eval_loss": status.get("final_eval_loss"), "diverging": (status.get("diverging") or {}).get("step")}




def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--methods", default="", help="comma-separated registry keys (default: all)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per method")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "methods_cpu.md"))
    parser.add_argument("--note", default="", help="a line added under the table (e.g. the machine's load)")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.methods.split(",") if k.strip()] or list(METHODS)
    arch = structure_of(str(DEFAULT_MODEL_DIR))

    rows = []
    with tempfile.TemporaryDirectory(prefix="tuneloom-bench-") as home:
        for key in keys:
            method = METHODS.get(key)
            cfg = RunConfig.load(ROOT / "presets" / f"{key}.yaml")
            count = method.count_trainable(arch, cfg.method.params)
            problems = method.check(cfg.method.params, cfg.train, arch, cfg.train.max_steps)
            result = {"error": f"refused: {problems[0]}"} if problems else \
                train_once(key, args.steps, Path(home), args.timeout)
            row = {"key": key, "count": count, "lr": cfg.train.learning_rate, "optimizer": cfg.train.optimizer,
                   **result}
            rows.append(row)
            print(json.dumps(row), flush=True)

    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    lines = [
        "# Fine-tuning methods on the default model (CPU)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} with `python bench/methods_table.py --steps {args.steps}` on "
        f"{describe()}.",
        "",
        f"Model: smollm2-135m-instruct ({arch.total_params:,} parameters). Each method trains from "
        f"`presets/<method>.yaml` (the quickstart's data, batch size 4, max_seq_len 256, cosine schedule with 5 "
        f"warm-up steps; learning rate and optimizer per method, below) for **{args.steps} steps** "
        "(not the quickstart's 60), evaluation and checkpoints off. Seconds per step: mean over steps 2..N. "
        "Trainable parameters: `count_trainable` on the default model's structure (pure), which the trainer's "
        "own count matches (column *reported*).",
        "",
        "| method | trainable parameters | reported | % of model | s/step | loss step 1 | final loss | "
        "peak RSS MB | lr | optimizer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['key']} | {r['count']:,} | | {100 * r['count'] / arch.total_params:.3f} | "
                         f"{r['error']} | | | | {r['lr']:g} | {r['optimizer']} |")
            continue
        lines.append(
            f"| {r['key']} | {r['count']:,} | {r['trainable_reported'] or 0:,} | "
            f"{100 * r['count'] / arch.total_params:.3f} | {fmt(r['s_per_step'], '.2f')} | "
            f"{fmt(r['first_loss'], '.3f')} | {fmt(r['final_loss'], '.3f')} | {fmt(r['peak_memory_mb'], '.0f')} | "
            f"{r['lr']:g} | {r['optimizer']} |")
    lines += ["", "Layerwise: the count is the parameters trained by the end of its schedule (the top `max_layers` "
              "layers); the trainer reports the first stage. Virtual-token methods (prompt/p/prefix tuning) train "
              "on padded, unpacked batches; the others pack examples padding-free."]
    if args.note:
        lines += ["", args.note]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
