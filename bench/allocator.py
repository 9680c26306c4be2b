"""The trainer on each CPU memory allocator: same run, same data, in the same session.

    python bench/allocator.py --data FILE [--steps 20] [--rounds 2]     # --data: as for bench/throughput.py

For each allocator (engine/core/allocator.py: system glibc malloc, tcmalloc, jemalloc, and glibc forced
to mmap every block above 128 KiB, the no-extra-library alternative) it trains the throughput
benchmark's LoRA run (bench/throughput.py: default model, real instruction data) and reports
trained-on tokens per second, the peak resident memory of the process, and the launch estimate
against the trainer's measured peak. Rounds alternate the order, so drift on a shared machine
hits every allocator alike; the table shows the median per allocator.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import describe  # noqa: E402
from throughput import (  # noqa: E402
    config,
    require_data,
    run_arguments,
    run_measured,
    steady_rate,
    temporary_workspace,
)

VARIANTS = {  # label -> environment of the trainer
    "system (glibc malloc)": {"TUNELOOM_ALLOCATOR": "system"},
    "glibc, mmap above 128 KiB": {"TUNELOOM_ALLOCATOR": "system", "MALLOC_MMAP_THRESHOLD_": "131072"},
    "tcmalloc": {"TUNELOOM_ALLOCATOR": "tcmalloc"},
    "jemalloc": {"TUNELOOM_ALLOCATOR": "jemalloc"},
}


def one_run(cfg_path: Path, env: dict, log: Path) -> dict:
    from engine.core import runs

    code, wall, rss = run_measured([sys.executable, "-m", "engine", "train", str(cfg_path)], log, env)
    assert code == 0, log.read_text()[-3000:]
    run_dir = Path(log.read_text().strip().splitlines()[-1])
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    return {"tokens_per_second": steady_rate([(r["step"], r["elapsed_s"], r["tokens_seen"]) for r in rows]),
            "peak_rss_bytes": rss, "measured_peak_bytes": max(r["peak_memory_bytes"] for r in rows),
            "estimate_peak_bytes": rows[-1].get("estimate_peak_bytes"), "allocator": rows[-1].get("allocator"),
            "wall_s": round(wall, 1)}


def main() -> None:
    parser = run_arguments(20, "allocator_cpu")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    require_data(parser, args)

    work = temporary_workspace("tuneloom-alloc-")
    cfg_path = config(args, work)
    runs_by_label: dict[str, list[dict]] = {label: [] for label in VARIANTS}
    for round_ in range(args.rounds):
        order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
        for label in order:
            result = one_run(cfg_path, VARIANTS[label], work / f"{len(runs_by_label[label])}-{label[:6]}.log")
            runs_by_label[label].append(result)
            print(json.dumps({"variant": label, **result}), flush=True)

    table = {}
    for label, results in runs_by_label.items():
        table[label] = {key: statistics.median(r[key] for r in results)
                        for key in ("tokens_per_second", "peak_rss_bytes", "measured_peak_bytes",
                                    "estimate_peak_bytes")}
        table[label]["allocator"] = results[0]["allocator"]
    payload = {"date": time.strftime("%Y-%m-%d"), "machine": describe(), "settings": vars(args),
               "runs": runs_by_label, "median": table}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    out.with_suffix(".md").write_text(markdown(payload))
    print(markdown(payload))


def markdown(payload: dict) -> str:
    gib = 2**30
    s = payload["settings"]
    base = payload["median"]["system (glibc malloc)"]
    lines = [
        "# The trainer on each CPU memory allocator", "",
        f"{payload['date']} · {payload['machine']}", "",
        f"Run: {s['model']}, LoRA r16 all-linear, {s['steps']} steps, batch {s['batch_size']}, max_seq_len "
        f"{s['max_seq_len']}, {s['precision']}, data `{Path(s['data']).name}` (bench/throughput.py's run). "
        f"Median of {s['rounds']} rounds in alternating order. Measured peak = the trainer's "
        "`peak_memory_bytes` (RSS above its baseline); estimate = `estimate_peak_bytes` at launch, which "
        "assumes every example fills max_seq_len (real instructions are shorter, so it is an upper bound "
        "here; bench/memory_accuracy.py measures it with full-length rows).", "",
        "| allocator | trained-on tokens/s | vs system | peak RSS (GiB) | vs system | estimate vs measured peak |",
        "|---|---:|---:|---:|---:|---:|"]
    for label, m in payload["median"].items():
        error = 100 * (m["estimate_peak_bytes"] - m["measured_peak_bytes"]) / m["measured_peak_bytes"]
        lines.append(f"| {label} (trainer reports `{m['allocator']}`) | {m['tokens_per_second']:.1f} "
                     f"| {m['tokens_per_second'] / base['tokens_per_second']:.2f}x | {m['peak_rss_bytes'] / gib:.2f} "
                     f"| {m['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}x | {error:+.1f}% |")
    lines += ["", f"Reproduce: `python bench/allocator.py --data {Path(s['data']).name} --steps {s['steps']} "
                  f"--rounds {s['rounds']}`"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
