"""Estimated vs measured peak training memory: short real runs over a matrix of settings.

    python bench/memory_accuracy.py [--methods lora,full] [--steps 3] [--out bench/results]
    python bench/memory_accuracy.py --methods prompt_tuning,p_tuning_v2 --gc off --seq 256 --batch 4 \
        --method-params '{"prompt_tuning": {"num_virtual_tokens": 200}}' --precision bf16 --tag virtual200
    python bench/memory_accuracy.py --rescore bench/results/memory_accuracy_cpu.json

--rescore recomputes the estimates of recorded cells with the current estimator (a pure function of
the same inputs) and rewrites the report, without training again.

Each cell is a real `python -m engine train` run (own process) on the default model with random
text of fixed length (every example fills max_seq_len, as the estimate assumes). The trainer
records `peak_memory_bytes` (CPU: peak RSS above its baseline; GPU: allocator peak + context) and
the launch estimate (`estimate_peak_bytes`, comparable to it) in metrics.jsonl. Results go to
bench/results/memory_accuracy_<device>.md and .json.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))

from engine.methods import METHODS  # noqa: E402

PREFERRED = ("full", "lora", "qlora", "prefix_tuning", "ia3")  # the issue's matrix; --methods for others


def make_data(path: Path, rows: int = 64, words: int = 1200, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = [w for w in ("the model learns to answer questions about memory and time while the data "
                         "flows through layers of attention and feed forward blocks in small steps").split()]
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(rows):
            handle.write(json.dumps({"text": " ".join(rng.choice(vocab) for _ in range(words))}) + "\n")


def run_cell(config: Path, overrides: dict, env: dict, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "engine", "train", str(config)]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value) if isinstance(value, dict) else value}"]
    started = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.time() - started
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-800:], "wall_s": round(wall, 1)}
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "peak_memory_bytes" in r]
    measured = max(r["peak_memory_bytes"] for r in rows)
    return {"measured": measured, "estimate_peak": rows[-1].get("estimate_peak_bytes"),
            "estimate_total": rows[-1].get("estimate_bytes"), "steps": rows[-1]["step"], "wall_s": round(wall, 1)}


def base_config(data: str, steps: int) -> dict:
    """What every cell trains: the default model on random full-length text."""
    return {"model": "smollm2-135m-instruct", "data": {"train": data, "format": "text", "mask": "none"},
            "train": {"max_steps": steps, "logging_steps": 1, "save_steps": 0, "eval_steps": 0,
                      "learning_rate": 1e-4}}


def cell_config(base: dict, method: str, gc: bool, seq: int, batch: int, params: dict | None = None):
    from engine.core.config import RunConfig

    raw = json.loads(json.dumps(base))
    raw["method"] = {"name": method, **(params or {})}
    raw["train"].update(gradient_checkpointing=gc, max_seq_len=seq, batch_size=batch)
    return RunConfig.from_dict(raw)


def score(cell: dict, base: dict, device: str, allocator: str | None) -> None:
    """Set the cell's estimate (this estimator version) and its error against the measured peak."""
    from engine.core.config import RunConfig
    from engine.estimate import estimate_for_config

    # the settings the cell ran with, as recorded (older records: the base and the cell's own keys only)
    cfg = RunConfig.from_dict(cell["config"]) if cell.get("config") else \
        cell_config(base, cell["method"], cell["gradient_checkpointing"], cell["max_seq_len"], cell["batch_size"],
                    cell.get("params"))
    est = estimate_for_config(cfg, device=device, cpu_allocator=allocator)
    cell["estimate_components"], cell["estimate_peak"] = est.components, est.peak_bytes
    if "measured" in cell:
        cell["error_pct"] = round(100 * (cell["estimate_peak"] - cell["measured"]) / cell["measured"], 1)


def rescore(path: Path) -> int:
    """The recorded cells' estimates from the current estimator (a pure function of each cell's settings): the
    record's Markdown then says so, with the date, above the notes written for the estimator that ran."""
    payload = json.loads(path.read_text())
    payload["rescored"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    base = payload.get("base") or base_config("x.jsonl", payload["steps"])  # the estimate never reads the data
    device = payload["machine"]["device"]
    for cell in payload["results"]:
        if "skipped" not in cell:
            score(cell, base, device, payload["machine"].get("allocator", "system"))
    path.write_text(json.dumps(payload, indent=1))
    path.with_suffix(".md").write_text(report(payload))
    print(report(payload))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default=None, help="comma list (default: those of PREFERRED registered)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seq", default="128,512")
    parser.add_argument("--batch", default="1,4")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--gc", default="off,on", help="gradient checkpointing cells: off,on | off | on")
    parser.add_argument("--method-params", default="{}", help='JSON {method: {param: value}} for the cells')
    parser.add_argument("--precision", default=None, help="train.precision of every cell (default: the schema's)")
    parser.add_argument("--tag", default="", help="suffix of the result files (memory_accuracy_<device>_<tag>)")
    parser.add_argument("--rescore", metavar="JSON", help="recompute the estimates of a recorded matrix")
    args = parser.parse_args()
    if args.rescore:
        return rescore(Path(args.rescore))

    import psutil

    from engine.core.allocator import planned
    from engine.core.device import gpus

    device = "cuda" if gpus() else "cpu"
    if args.methods:
        methods = args.methods.split(",")
    else:
        methods = [m for m in PREFERRED if m in METHODS]
    work = Path(tempfile.mkdtemp(prefix="tuneloom-membench-"))
    data = work / "random.jsonl"
    make_data(data)
    base = base_config(str(data), args.steps)
    if args.precision:
        base["train"]["precision"] = args.precision
    method_params = json.loads(args.method_params)
    config = work / "base.yaml"
    config.write_text(json.dumps(base))
    env = {**os.environ, "TUNELOOM_HOME": str(work / "home"),
           "TUNELOOM_MODELS": os.environ.get("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))}
    results = []
    for method in methods:
        # (quantised methods run on CPU too: bitsandbytes 0.50 has CPU 4-bit and 8-bit kernels)
        for gc in [{"off": False, "on": True}[g] for g in args.gc.split(",")]:
            if gc and METHODS.get(method).no_checkpointing_reason:
                results.append({"method": method, "skipped": "no gradient checkpointing: "
                                + METHODS.get(method).no_checkpointing_reason})
                continue
            for seq in map(int, args.seq.split(",")):
                for batch in map(int, args.batch.split(",")):
                    params = method_params.get(method, {})
                    overrides = {"method": {"name": method, **params}, "train.gradient_checkpointing": gc,
                                 "train.max_seq_len": seq, "train.batch_size": batch}
                    cell = {"method": method, "gradient_checkpointing": gc, "max_seq_len": seq, "batch_size": batch}
                    if params:
                        cell["params"] = params
                    try:
                        cell.update(run_cell(config, overrides, env, args.timeout))
                    except subprocess.TimeoutExpired:
                        cell["error"] = f"timed out after {args.timeout}s"
                    cell["estimate_at_launch"] = cell.pop("estimate_peak", None)
                    # every setting the cell ran with (defaults change): what --rescore estimates later
                    cell["config"] = cell_config(base, method, gc, seq, batch, params).to_dict()
                    score(cell, base, device, planned()[0] if device == "cpu" else None)  # this estimator version
                    results.append(cell)
                    print(json.dumps({k: v for k, v in cell.items() if k != "estimate_components"}), flush=True)

    versions = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    machine = {"device": device, "platform": platform.platform(), "python": platform.python_version(),
               "cpu_count": os.cpu_count(), "ram_bytes": psutil.virtual_memory().total,
               "processor": platform.processor() or platform.machine(),
               "allocator": planned()[0]}  # what each cell's trainer preloads (engine/core/allocator.py)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"date": stamp, "machine": machine, "versions": versions, "steps": args.steps, "base": base,
               "results": results}
    name = f"memory_accuracy_{device}" + (f"_{args.tag}" if args.tag else "")
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (out / f"{name}.md").write_text(report(payload))
    print(f"wrote {out / f'{name}.md'}")
    return 0


def report(payload: dict) -> str:
    mib = 2**20
    lines = [f"# Memory estimate vs measured peak ({payload['machine']['device'].upper()})", "",
             f"Date: {payload['date']}. Machine: {payload['machine']['platform']}, "
             f"{payload['machine']['cpu_count']} CPU cores (shared with other jobs), "
             f"{payload['machine']['ram_bytes'] / 2**30:.0f} GiB RAM, Python {payload['machine']['python']}. "
             f"Versions: {', '.join(f'{k} {v}' for k, v in payload['versions'].items())}.", "",
             "Model smollm2-135m-instruct, precision "
             f"{payload.get('base', {}).get('train', {}).get('precision', 'auto')}, random "
             "text filling max_seq_len, packing and fused "
             f"loss on (defaults), AdamW, {payload['steps']} optimizer steps per cell. Measured = the trainer's "
             "`peak_memory_bytes` (CPU: peak RSS above the process baseline taken before torch is imported). "
             "Estimate = `peak_bytes` of the current estimator for the cell's settings and allocator (a pure "
             "function; `--rescore` recomputes it; on CPU it includes the allocator allowance). "
             f"Error = (estimate - measured) / measured. Allocator: {payload['machine'].get('allocator', 'system')} "
             "(engine/core/allocator.py).", "",
             "| method | grad ckpt | seq | batch | estimate MiB | measured MiB | error % |",
             "|---|---|---|---|---|---|---|"]
    errors = []
    for r in payload["results"]:
        if "skipped" in r:
            lines.append(f"| {r['method']} | - | - | - | skipped: {r['skipped']} | | |")
            continue
        if "measured" not in r:
            lines.append(f"| {r['method']} | {r['gradient_checkpointing']} | {r['max_seq_len']} | {r['batch_size']} "
                         f"| failed: {r.get('error', '')[:80]!r} | | |")
            continue
        errors.append(abs(r["error_pct"]))
        params = ", ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
        method = r["method"] + (f" ({params})" if params else "")
        lines.append(f"| {method} | {'on' if r['gradient_checkpointing'] else 'off'} | {r['max_seq_len']} "
                     f"| {r['batch_size']} | {r['estimate_peak'] / mib:,.0f} | {r['measured'] / mib:,.0f} "
                     f"| {r['error_pct']:+.1f} |")
    if errors:
        within = sum(e <= 10 for e in errors)
        lines += ["", f"{within} of {len(errors)} runs within 10%. Mean absolute error "
                      f"{sum(errors) / len(errors):.1f}%, worst {max(errors):.1f}%."]
    if payload.get("rescored"):
        lines += ["", f"Estimates re-scored on {payload['rescored']} with the estimator of that day "
                      "(`--rescore`); the measured peaks are the record's. Notes below that quote other numbers "
                      "were written for the estimator that ran with the measurement."]
    if payload.get("reading"):  # the reader's notes, kept in the JSON so --rescore keeps them
        lines += ["", payload["reading"].rstrip()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
