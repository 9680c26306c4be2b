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
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags_line, cpu_name, describe  # noqa: E402
from bench.methods_table import train_once  # noqa: E402
from engine.methods import METHODS  # noqa: E402
from engine.methods.measured import summarise  # noqa: E402


def measure(keys: list[str], data: Path, steps: int, seeds: list[int], max_seq_len: int, timeout: int,
            record: Path, train: bool = True) -> list[dict]:
    """Train each (method, seed) not yet in `record` (with train False: none, the table of what is there); each
    row is written there as soon as it is measured, so a bench stopped after an hour resumes where it was (a row
    with an error is measured again)."""
    rows = []
    about = {"data": data.name, "steps": steps, "max_seq_len": max_seq_len, "cpu": cpu_name(),
             "cores": os.cpu_count(), "machine": describe(), "cpu_flags": cpu_flags_line()}
    if record.exists():
        kept = json.loads(record.read_text())
        rows = [r for r in (kept["rows"] if isinstance(kept, dict) else kept) if "error" not in r]
        other = {k: (kept[k], about[k]) for k in ("data", "steps", "max_seq_len", "cpu")
                 if isinstance(kept, dict) and k in kept and kept[k] != about[k]}
        if other:  # rows measured another way cannot share one table
            sys.exit(f"{record} was measured with other settings ({other}); give another --out")
    done = {(r["key"], r["seed"]) for r in rows}
    with tempfile.TemporaryDirectory(prefix="tuneloom-methods-real-") as home:
        for key in keys:
            for seed in seeds:
                if (key, seed) in done or not train:
                    continue
                sets = (f"data.train={data}", "data.validation_split=0.1", f"train.max_seq_len={max_seq_len}",
                        f"train.seed={seed}", "train.eval_steps=0")
                load = os.getloadavg()[0]
                row = {"key": key, "seed": seed, "load_1m_before": round(load, 2),
                       **train_once(key, steps, Path(home), timeout, sets)}
                rows.append(row)
                record.write_text(json.dumps({**about, "rows": rows}, indent=2))
                print(json.dumps(row), flush=True)
    record.write_text(json.dumps({**about, "rows": rows}, indent=2))
    order = {(k, s): i for i, (k, s) in enumerate((k, s) for k in keys for s in seeds)}
    return sorted((r for r in rows if (r["key"], r["seed"]) in order), key=lambda r: order[r["key"], r["seed"]])


def table(rows: list[dict]) -> list[str]:
    """One line per method: each seed's held-out eval loss and the base's on the same examples; the mean change
    against the base and against full fine-tuning with the same seed (the split is seeded by train.seed)."""
    lines = ["| method | eval loss (base) per seed | vs base | vs full | s/step | peak RSS MB | diverged at |",
             "|---|---|---:|---:|---:|---:|---|"]
    for key, m in summarise(rows).items():
        if m.error:
            lines.append(f"| {key} | {m.error} | | | | | |")
            continue
        diverged = ", ".join(f"seed {seed}: step {step}" for seed, step in m.diverged) or "no"
        cells = " / ".join(f"{e:.3f} ({b:.3f})" for e, b in zip(m.eval_losses, m.base_losses))
        lines.append(f"| {key} | {cells} | {100 * m.versus_base:+.1f}% | "
                     + (f"{100 * m.versus_full:+.1f}% | " if m.versus_full is not None else " | ")
                     + f"{m.s_per_step:.2f} | {m.peak_mb:.0f} | {diverged} |")
    return lines


README_MARKER = "<!-- methods_real table: written by bench/methods_real.py -->"


def paste_into_readme(readme: Path, lines: list[str]) -> None:
    """The README's measured-methods table is this table: replaced under its marker line."""
    text = readme.read_text(encoding="utf-8")
    if README_MARKER not in text:
        return
    at = text.index(README_MARKER) + len(README_MARKER) + 1
    end = text.index("\n\n", at)
    readme.write_text(text[:at] + "\n".join(lines) + text[end:], encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="instruction data (e.g. the shared alpaca_en_demo.json)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--methods", default="", help="comma-separated registry keys (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "methods_real_cpu.md"))
    parser.add_argument("--no-train", action="store_true", help="write the table of the rows already measured")
    parser.add_argument("--readme", default=str(ROOT / "README.md"), help="whose measured-methods table to replace "
                        "(under its marker line; '' for none)")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.methods.split(",") if k.strip()] or list(METHODS)
    seeds = [int(s) for s in args.seeds.split(",")]
    data = Path(args.data).resolve()
    out = Path(args.out)
    rows = measure(keys, data, args.steps, seeds, args.max_seq_len, args.timeout, out.with_suffix(".json"),
                   not args.no_train)
    loads = [r["load_1m_before"] for r in rows if "load_1m_before" in r] or [float("nan")]
    lines = [
        "# Which method to pick, measured on real instruction data (CPU)", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {describe()}. {cpu_flags_line()}. "
        f"{sum(r.get('wall_s') or 0 for r in rows) / 60:.0f} minutes of training in all (the load average before "
        f"each run, where recorded: {min(loads):.1f} to {max(loads):.1f}).", "",
        f"`python bench/methods_real.py --data {args.data} --steps {args.steps} --seeds {args.seeds} "
        f"--max-seq-len {args.max_seq_len}" + (f" --methods {args.methods}" if args.methods else "") + "`", "",
        f"Data: `{data.name}`, 10% held out; the split is seeded by train.seed, so each seed holds out other "
        "examples, and each run is compared with the base model on its own held-out examples (in brackets: the "
        "run's `base_eval_loss`). Each method trains from `presets/<method>.yaml` for "
        f"{args.steps} steps at max_seq_len {args.max_seq_len}; eval loss is taken at the end. *vs base* and *vs "
        "full* (full fine-tuning with the same seed) are means over the seeds; *s/step* is the fastest seed's (the "
        "best of repeated timings, as timeit reports), *peak RSS* the largest.", "",
        *table(rows), "",
        "A run that diverged is named with the step where the trainer said so (status.json `diverging`).",
    ]
    out.write_text("\n".join(lines) + "\n")
    if args.readme:
        paste_into_readme(Path(args.readme), table(rows))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
