"""Tuneloom's trainer against a plain transformers.Trainer + peft reference, in the same run.

Same model, data, method and hyperparameters; the reference pads each batch dynamically as the
libraries' examples do, Tuneloom packs padding-free and skips the logits of untrained tokens.
Reports trained-on tokens per second (padding excluded, first step excluded as warm-up), peak
resident memory of each training process, and the mean loss of the last 10 steps (both loops
see the same examples in the same order), then the ratios.

    python bench/throughput.py [--steps 30] [--data ../shared/data/alpaca_en_demo.json] [--precision fp32]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_measured(command: list[str], log: Path, extra_env: dict | None = None) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS bytes) of a child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", **(extra_env or {})}
    started = time.time()
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    return os.waitstatus_to_exitcode(status), time.time() - started, usage.ru_maxrss * 1024


def steady_rate(points: list[tuple[int, float, int]]) -> float:
    """tokens/s between the end of step 1 and the last step: (step, time, tokens seen)."""
    (_, t0, n0), (_, t1, n1) = points[0], points[-1]
    return (n1 - n0) / (t1 - t0)


def config(args, work: Path) -> Path:
    cfg = {
        "model": args.model, "name": "bench-throughput",
        "data": {"train": str(Path(args.data).resolve()), "format": "auto", "mask": "assistant"},
        "method": {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "learning_rate": 2.0e-4,
                  "max_seq_len": args.max_seq_len, "warmup_steps": 0, "scheduler": "constant",
                  "precision": args.precision, "seed": 0, "eval_steps": 0, "save_steps": 0},
    }
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_arguments(steps: int, out: str) -> argparse.ArgumentParser:
    """The benchmark run's settings (what `config` reads), shared with bench/allocator.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "alpaca_en_demo.json"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / out))
    return parser


def main() -> None:
    args = run_arguments(30, "throughput_cpu").parse_args()

    from engine.core import runs

    work = Path(tempfile.mkdtemp(prefix="tuneloom-bench-"))
    os.environ["TUNELOOM_HOME"] = str(work / "home")
    cfg_path = config(args, work)

    ref_out = work / "reference.json"
    code, ref_wall, ref_rss = run_measured(
        [sys.executable, "bench/reference_trainer.py", str(cfg_path), str(ref_out)], work / "reference.log")
    assert code == 0, (work / "reference.log").read_text()[-3000:]
    reference = json.loads(ref_out.read_text())

    code, ours_wall, ours_rss = run_measured([sys.executable, "-m", "engine", "train", str(cfg_path)],
                                             work / "ours.log")
    assert code == 0, (work / "ours.log").read_text()[-3000:]
    run_dir = Path((work / "ours.log").read_text().strip().splitlines()[-1])
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]

    ours_points = [(r["step"], r["elapsed_s"], r["tokens_seen"]) for r in rows]
    ref_points = [tuple(m) for m in reference["marks"]]
    last = 10
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                      f"{os.cpu_count()} cores, no GPU",
        "versions": _versions(), "settings": vars(args),
        "reference": {"tokens_per_second": steady_rate(ref_points), "peak_rss_bytes": ref_rss,
                      "final_loss": _mean([l for _, l in reference["losses"][-last:]]), "wall_s": ref_wall},
        "tuneloom": {"tokens_per_second": steady_rate(ours_points), "peak_rss_bytes": ours_rss,
                     "final_loss": _mean([r["loss"] for r in rows[-last:]]), "wall_s": ours_wall},
    }
    ref, ours = result["reference"], result["tuneloom"]
    result["speedup"] = ours["tokens_per_second"] / ref["tokens_per_second"]
    result["memory_ratio"] = ours["peak_rss_bytes"] / ref["peak_rss_bytes"]
    result["loss_difference_pct"] = 100 * (ours["final_loss"] - ref["final_loss"]) / ref["final_loss"]
    out = Path(args.out + f"_{args.precision}")
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))


def _mean(values):
    return sum(values) / len(values)


def _versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("torch", "transformers", "peft")}


def _markdown(r: dict) -> str:
    ref, ours = r["reference"], r["tuneloom"]
    gib = 1024 ** 3
    return f"""# Training throughput: Tuneloom vs transformers.Trainer + peft (dynamic padding)

{r['date']} · {r['machine']} · {', '.join(f'{k} {v}' for k, v in r['versions'].items())}
Settings: {r['settings']['model']}, LoRA r16 all-linear, {r['settings']['steps']} steps, batch {r['settings']['batch_size']}, \
max_seq_len {r['settings']['max_seq_len']}, {r['settings']['precision']}, data `{Path(r['settings']['data']).name}`.

| loop | trained-on tokens/s | peak RSS (GiB) | mean loss, last 10 steps |
|---|---|---|---|
| reference (Trainer + peft, padded) | {ref['tokens_per_second']:.1f} | {ref['peak_rss_bytes'] / gib:.2f} | {ref['final_loss']:.4f} |
| Tuneloom (`python -m engine train`) | {ours['tokens_per_second']:.1f} | {ours['peak_rss_bytes'] / gib:.2f} | {ours['final_loss']:.4f} |
| **ratio** | **{r['speedup']:.2f}x** | **{r['memory_ratio']:.2f}x** | **{r['loss_difference_pct']:+.2f}%** |

Reproduce: `python bench/throughput.py --steps {r['settings']['steps']} --precision {r['settings']['precision']}`
"""


if __name__ == "__main__":
    main()
