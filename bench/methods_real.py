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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags_line, cpu_name, describe  # noqa: E402
from engine.methods import METHODS  # noqa: E402
from engine.methods.measured import current, preset_fingerprint, summarise  # noqa: E402


def train_once(key: str, steps: int, home: Path, timeout: int, sets: tuple[str, ...]) -> dict:
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


def measure(keys: list[str], data: Path, steps: int, seeds: list[int], max_seq_len: int, timeout: int,
            record: Path, train: bool = True) -> list[dict]:
    """Train each (method, seed) of keys x seeds that `record` has no row for measured with the method's preset as
    it is now (a row with an error, or of an earlier preset, is measured again and replaced; with train False:
    none). Each row is written there as soon as it is measured, so a bench stopped after an hour resumes where it
    was. Returns every row of the record measured with today's presets, in the registry's order, whichever keys
    were trained this time: the table is always the whole record's."""
    rows = []
    about = {"data": data.name, "steps": steps, "max_seq_len": max_seq_len, "cpu": cpu_name(),
             "cores": os.cpu_count(), "machine": describe(), "cpu_flags": cpu_flags_line()}
    if record.exists():
        kept = json.loads(record.read_text())
        rows = kept["rows"] if isinstance(kept, dict) else kept
        other = {k: (kept[k], about[k]) for k in ("data", "steps", "max_seq_len", "cpu")
                 if isinstance(kept, dict) and k in kept and kept[k] != about[k]}
        if other:  # rows measured another way cannot share one table
            sys.exit(f"{record} was measured with other settings ({other}); give another --out")
    fingerprints = {key: preset_fingerprint(key) for key in METHODS}

    def measured(key: str, seed: int) -> bool:
        return any(r["key"] == key and r["seed"] == seed and "error" not in r and r.get("preset") == fingerprints[key]
                   for r in rows)

    with tempfile.TemporaryDirectory(prefix="tuneloom-methods-real-") as home:
        for key in keys:
            for seed in seeds:
                if not train or measured(key, seed):
                    continue
                sets = (f"data.train={data}", "data.validation_split=0.1", f"train.max_seq_len={max_seq_len}",
                        f"train.seed={seed}", "train.eval_steps=0")
                load = os.getloadavg()[0]
                row = {"key": key, "seed": seed, "preset": fingerprints[key], "load_1m_before": round(load, 2),
                       **train_once(key, steps, Path(home), timeout, sets)}
                rows = [r for r in rows if (r["key"], r["seed"]) != (key, seed)] + [row]
                record.write_text(json.dumps({**about, "rows": rows}, indent=2))
                print(json.dumps(row), flush=True)
    record.write_text(json.dumps({**about, "rows": rows}, indent=2))
    order = list(METHODS)
    return sorted(current(rows), key=lambda r: (order.index(r["key"]) if r["key"] in order else len(order), r["seed"]))


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
        sys.exit(f"{readme} has no line {README_MARKER!r} to put the table under; add it, or give --readme ''")
    at = text.index(README_MARKER) + len(README_MARKER) + 1
    end = text.find("\n\n", at) if "\n\n" in text[at:] else len(text.rstrip("\n"))
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
        f"--max-seq-len {args.max_seq_len}`", "",
        f"Data: `{data.name}`, 10% held out; the split is seeded by train.seed, so each seed holds out other "
        "examples, and each run is compared with the base model on its own held-out examples (in brackets: the "
        "run's `base_eval_loss`). Each method trains from `presets/<method>.yaml` for "
        f"{args.steps} steps at max_seq_len {args.max_seq_len}; eval loss is taken at the end. *vs base* and *vs "
        "full* (full fine-tuning with the same seed) are means over the seeds; *s/step* is the fastest seed's (the "
        "best of repeated timings, as timeit reports), *peak RSS* the largest. Each row in the JSON names the preset "
        "settings it was measured with (`preset`, a hash: engine/methods/measured.py); a row of an earlier preset is "
        "left out here and in the method picker, and measured again by the next run of this script.", "",
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
