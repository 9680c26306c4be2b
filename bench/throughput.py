"""Tuneloom's trainer against a plain transformers.Trainer + peft reference, in the same run.

Same model, data, method and hyperparameters; the reference pads each batch dynamically as the
libraries' examples do, Tuneloom packs padding-free and skips the logits of untrained tokens.
Reports trained-on tokens per second (padding excluded, first step excluded as warm-up), peak
resident memory of each training process, and the mean loss of the last 10 steps (both loops
see the same examples in the same order), then the ratios.

    python bench/throughput.py --data FILE [--steps 30] [--precision fp32] [--rounds 2]

--data names the instruction data (nothing outside the repository is read unless named): the recorded
results used alpaca_en_demo.json, 999 alpaca-format instructions of mixed length from LLaMA-Factory's
data/ folder (Apache-2.0).

Results go to bench/results/throughput_cpu_<vector unit>_<precision>.md/.json (e.g. avx512bf16_bf16),
so machines with different CPUs keep their own rows; the record names the CPU model, its half-precision
flags, torch's vector unit and the load average seen. `--rounds N` alternates reference and Tuneloom N
times (reference first in even rounds) and reports the median of each, for a machine shared with other work.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


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


DATA_HELP = ("the instruction data to train on; required, so that nothing outside this repository is read unless "
             "you name it. The recorded results used alpaca_en_demo.json: 999 alpaca-format instructions of mixed "
             "length from LLaMA-Factory's data/ folder (Apache-2.0)")


def require_data(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--data is given and is a file, or the script stops at once with why (exit 2)."""
    if not args.data:
        parser.error(f"--data FILE is required: {DATA_HELP}")
    if not Path(args.data).is_file():
        parser.error(f"--data {args.data}: no such file")


def temporary_workspace(prefix: str) -> Path:
    """A fresh workspace for a benchmark's runs (TUNELOOM_HOME). Prepared models stay where the CLI and the app
    keep them (TUNELOOM_MODELS, else the current workspace's models/): the default model is not converted again."""
    from engine.core.workspace import models_dir

    os.environ["TUNELOOM_MODELS"] = str(models_dir())  # resolved before the workspace moves
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["TUNELOOM_HOME"] = str(work / "home")
    return work


def run_arguments(steps: int, out: str) -> argparse.ArgumentParser:
    """The benchmark run's settings (what `config` reads), shared with bench/allocator.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=None, metavar="FILE", help=DATA_HELP)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / out))
    return parser


def cpu_record() -> dict:
    """The CPU the numbers belong to: model, the flags that decide half-precision speed, torch's vector unit."""
    import torch
    from machine import cpu_name

    from engine.core.device import NATIVE_HALF_FLAGS, cpu_flags

    wanted = {"avx2", "avx512f", *(f for flags in NATIVE_HALF_FLAGS.values() for f in flags), "amx_tile"}
    return {"model": cpu_name(), "flags": sorted(wanted & cpu_flags()),
            "torch_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def cpu_tag(flags: list[str]) -> str:
    """A short name for the CPU's class, for result file names."""
    for flag, tag in (("amx_bf16", "amx"), ("avx512_bf16", "avx512bf16"), ("avx512f", "avx512"), ("avx2", "avx2")):
        if flag in flags:
            return tag
    return "generic"


def main() -> None:
    parser = run_arguments(30, "throughput_cpu")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--render", metavar="JSON", help="only write the Markdown of a recorded run (its .json)")
    args = parser.parse_args()
    if args.render:  # the record's numbers as this script writes them (the test suite checks the result)
        recorded = Path(args.render)
        recorded.with_suffix(".md").write_text(_markdown(json.loads(recorded.read_text())))
        return
    require_data(parser, args)

    work = temporary_workspace("tuneloom-bench-")
    cfg_path = config(args, work)

    load_before = os.getloadavg()
    rounds: dict[str, list[dict]] = {"reference": [], "tuneloom": []}
    for round_ in range(args.rounds):
        for loop in ("reference", "tuneloom") if round_ % 2 == 0 else ("tuneloom", "reference"):
            run = reference_run if loop == "reference" else tuneloom_run
            rounds[loop].append(run(cfg_path, work / f"{loop}-{round_}"))
            print(json.dumps({"round": round_, "loop": loop, **rounds[loop][-1],
                              "load_average": os.getloadavg()}), flush=True)
    cpu = cpu_record()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu['model']}, {os.cpu_count()} cores, no GPU",
        "cpu": cpu, "load_average": {"before": load_before, "after": os.getloadavg()},
        "versions": _versions(), "settings": vars(args), "rounds": rounds,
        "reference": _median(rounds["reference"]), "tuneloom": _median(rounds["tuneloom"]),
    }
    ref, ours = result["reference"], result["tuneloom"]
    result["speedup"] = ours["tokens_per_second"] / ref["tokens_per_second"]
    result["memory_ratio"] = ours["peak_rss_bytes"] / ref["peak_rss_bytes"]
    result["loss_difference_pct"] = 100 * (ours["final_loss"] - ref["final_loss"]) / ref["final_loss"]
    out = Path(f"{args.out}_{cpu_tag(cpu['flags'])}_{args.precision}")
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))


def reference_run(cfg_path: Path, stem: Path) -> dict:
    out = stem.with_suffix(".json")
    code, wall, rss = run_measured([sys.executable, "bench/reference_trainer.py", str(cfg_path), str(out)],
                                   stem.with_suffix(".log"))
    assert code == 0, stem.with_suffix(".log").read_text()[-3000:]
    reference = json.loads(out.read_text())
    return {"tokens_per_second": steady_rate([tuple(m) for m in reference["marks"]]), "peak_rss_bytes": rss,
            "final_loss": _mean([loss for _, loss in reference["losses"][-LAST:]]), "wall_s": wall}


def tuneloom_run(cfg_path: Path, stem: Path) -> dict:
    from engine.core import runs

    log = stem.with_suffix(".log")
    code, wall, rss = run_measured([sys.executable, "-m", "engine", "train", str(cfg_path)], log)
    assert code == 0, log.read_text()[-3000:]
    run_dir = Path(log.read_text().strip().splitlines()[-1])
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    return {"tokens_per_second": steady_rate([(r["step"], r["elapsed_s"], r["tokens_seen"]) for r in rows]),
            "peak_rss_bytes": rss, "final_loss": _mean([r["loss"] for r in rows[-LAST:]]), "wall_s": wall}


LAST = 10  # the loss is the mean of the last 10 steps (both loops see the same examples in the same order)


def _median(results: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def _mean(values):
    return sum(values) / len(values)


def _versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("torch", "transformers", "peft")}


def _markdown(r: dict) -> str:
    ref, ours = r["reference"], r["tuneloom"]
    return f"""# Training throughput: Tuneloom vs transformers.Trainer + peft (dynamic padding)

{r['date']} · {r['machine']} · {', '.join(f'{k} {v}' for k, v in r['versions'].items())}{_cpu_line(r)}
Settings: {r['settings']['model']}, LoRA r16 all-linear, {r['settings']['steps']} steps, \
batch {r['settings']['batch_size']}, max_seq_len {r['settings']['max_seq_len']}, {r['settings']['precision']}, \
data `{Path(r['settings']['data']).name}`.

| loop | trained-on tokens/s | peak RSS (GiB) | mean loss, last 10 steps |
|---|---|---|---|
| reference (Trainer + peft, padded) | {_cells(ref)} |
| Tuneloom (`python -m engine train`) | {_cells(ours)} |
| **ratio** | **{r['speedup']:.2f}x** | **{r['memory_ratio']:.2f}x** | **{r['loss_difference_pct']:+.2f}%** |

Reproduce: `python bench/throughput.py --data {Path(r['settings']['data']).name} --steps {r['settings']['steps']} \
--precision {r['settings']['precision']}\
{f" --rounds {r['settings']['rounds']}" if r['settings'].get('rounds', 1) > 1 else ""}`
"""


def _cells(loop: dict) -> str:
    return (f"{loop['tokens_per_second']:.1f} | {loop['peak_rss_bytes'] / 1024 ** 3:.2f} | "
            f"{loop['final_loss']:.4f}")


def _cpu_line(r: dict) -> str:
    if "cpu" not in r:
        return ""
    cpu, load = r["cpu"], r["load_average"]
    rounds = r["settings"].get("rounds", 1)
    return (f"\nCPU flags: {', '.join(cpu['flags'])}; torch vector unit {cpu['torch_capability']}, "
            f"{cpu['threads']} threads. Load average (1/5/15 min) {_load(load['before'])} before, "
            f"{_load(load['after'])} after{' (a machine shared with other work)' if load['before'][0] > 0.5 else ''}; "
            f"{rounds} round{'s' if rounds > 1 else ''} alternating the loops"
            f"{', medians' if rounds > 1 else ''}.")


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
