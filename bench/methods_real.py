"""Which method to pick, measured: every method's preset on real instruction data, held-out eval loss against the
base model's and against full fine-tuning, seconds per step and peak memory, on more than one seed.

Each method trains from its own preset (presets/<key>.yaml) through the real CLI on the given data with a
held-out split; the base model's eval loss on the same held-out examples is the run's own `base_eval_loss`
(engine/training/base_reference.py, measured once per model and data), and a run that diverged says at which step
(engine/training/divergence.py). Seconds per step are the mean over the logged steps after the first.

    python bench/methods_real.py --data PATH [--steps 60] [--seeds 0,1] [--methods lora,full]
                                 [--out bench/results/methods_real_cpu.md]

PATH: alpaca-format instruction data, e.g. the shared folder's alpaca_en_demo.json (nothing is read unless named).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags_line, describe  # noqa: E402
from bench.methods_table import train_once  # noqa: E402
from engine.methods import METHODS  # noqa: E402


def measure(keys: list[str], data: Path, steps: int, seeds: list[int], max_seq_len: int, timeout: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tuneloom-methods-real-") as home:
        for key in keys:
            for seed in seeds:
                sets = (f"data.train={data}", "data.validation_split=0.1", f"train.max_seq_len={max_seq_len}",
                        f"train.seed={seed}", "train.eval_steps=0")
                row = {"key": key, "seed": seed, **train_once(key, steps, Path(home), timeout, sets)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> list[str]:
    """One line per method: each seed's held-out eval loss and the base's on the same examples; the mean change
    against the base and against full fine-tuning with the same seed (the split is seeded by train.seed)."""
    full = {r["seed"]: r["final_eval_loss"] for r in rows if r["key"] == "full" and r.get("final_eval_loss")}
    lines = ["| method | eval loss (base) per seed | vs base | vs full | s/step | peak RSS MB | diverged at |",
             "|---|---|---:|---:|---:|---:|---|"]
    for key in dict.fromkeys(r["key"] for r in rows):
        mine = [r for r in rows if r["key"] == key]
        if any("error" in r for r in mine):
            lines.append(f"| {key} | {next(r['error'] for r in mine if 'error' in r)} | | | | | |")
            continue
        versus_base = [r["final_eval_loss"] / r["base_eval_loss"] - 1 for r in mine]
        versus_full = [r["final_eval_loss"] / full[r["seed"]] - 1 for r in mine if r["seed"] in full]
        per_step = sum(r["s_per_step"] or 0 for r in mine) / len(mine)
        diverged = ", ".join(f"seed {r['seed']}: step {r['diverging']}" for r in mine if r.get("diverging")) or "no"
        cells = " / ".join(f"{r['final_eval_loss']:.3f} ({r['base_eval_loss']:.3f})" for r in mine)
        lines.append(f"| {key} | {cells} | {100 * sum(versus_base) / len(mine):+.1f}% | "
                     + (f"{100 * sum(versus_full) / len(versus_full):+.1f}% | " if versus_full else " | ")
                     + f"{per_step:.2f} | {max(r['peak_memory_mb'] or 0 for r in mine):.0f} | {diverged} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="instruction data (e.g. the shared alpaca_en_demo.json)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--methods", default="", help="comma-separated registry keys (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "methods_real_cpu.md"))
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.methods.split(",") if k.strip()] or list(METHODS)
    seeds = [int(s) for s in args.seeds.split(",")]
    data = Path(args.data).resolve()
    started = time.time()
    rows = measure(keys, data, args.steps, seeds, args.max_seq_len, args.timeout)
    lines = [
        "# Which method to pick, measured on real instruction data (CPU)", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {describe()}. {cpu_flags_line()}. "
        f"{(time.time() - started) / 60:.0f} minutes in all.", "",
        f"`python bench/methods_real.py --data {args.data} --steps {args.steps} --seeds {args.seeds} "
        f"--max-seq-len {args.max_seq_len}" + (f" --methods {args.methods}" if args.methods else "") + "`", "",
        f"Data: `{data.name}`, 10% held out; the split is seeded by train.seed, so each seed holds out other "
        "examples, and each run is compared with the base model on its own held-out examples (in brackets: the "
        "run's `base_eval_loss`). Each method trains from `presets/<method>.yaml` for "
        f"{args.steps} steps at max_seq_len {args.max_seq_len}; eval loss is taken at the end. *vs base* and *vs "
        "full* (full fine-tuning with the same seed) are means over the seeds.", "",
        *table(rows), "",
        "A run that diverged is named with the step where the trainer said so (status.json `diverging`).",
    ]
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
