"""Stop, then Resume, against an uninterrupted run on the default model: the quickstart for --steps steps,
once straight and once stopped (the app's Stop: SIGTERM + STOP file) after --stop-at and resumed.

    python bench/stop_resume.py [--steps 12] [--stop-at 5] [--out bench/results/stop_resume_cpu.md]

The stopped run pauses after step --stop-at until the stop arrives (TUNELOOM_FAULT=wait_at_step, the
documented test hook), so it stops at that step however fast the machine is. Writes the losses of both
runs step by step, and how many train rows the resumed run's metrics.jsonl holds. Real runs in a
temporary workspace.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--stop-at", type=int, default=5)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "stop_resume_cpu.md"))
    args = parser.parse_args()
    os.environ["TUNELOOM_HOME"] = tempfile.mkdtemp(prefix="tuneloom-stop-resume-")

    from engine.core import runs
    from engine.core.config import RunConfig
    from engine.core.jobs import RunState
    from engine.training import launcher

    sets = [f"train.max_steps={args.steps}", "train.save_steps=0", f"train.eval_steps={args.steps // 2}",
            f"train.max_seq_len={args.max_seq_len}"]

    def finish(run_dir):
        while runs.read_status(run_dir).get("state") not in (RunState.DONE, RunState.FAILED):
            time.sleep(1)
        return runs.read_status(run_dir)

    def rows(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    began = time.time()
    straight = launcher.start(RunConfig.load(ROOT / "presets/quickstart.yaml", sets + ["name=straight"]))
    finish(straight)
    os.environ["TUNELOOM_FAULT"] = f"wait_at_step:{args.stop_at}"
    stopped = launcher.start(RunConfig.load(ROOT / "presets/quickstart.yaml", sets + ["name=stopped"]))
    while not (stopped / "metrics.jsonl").is_file() or args.stop_at - 1 not in [r.get("step") for r in rows(stopped)]:
        time.sleep(0.5)
    launcher.stop(stopped)
    at_stop = finish(stopped)
    checkpoint = runs.last_checkpoint(stopped).name
    del os.environ["TUNELOOM_FAULT"]
    launcher.resume(stopped)
    resumed = finish(stopped)

    a = {r["step"]: r["loss"] for r in rows(straight) if "loss" in r}
    b_rows = [r for r in rows(stopped) if "loss" in r]
    b = {r["step"]: r["loss"] for r in b_rows}
    evals = [{r["step"]: r["eval_loss"] for r in rows(run) if "eval_loss" in r} for run in (straight, stopped)]
    after = range(args.stop_at + 1, args.steps + 1)
    lines = [f"# Stop, then Resume, on the default model ({time.strftime('%Y-%m-%d')})", "",
             f"Quickstart preset, {args.steps} steps, max_seq_len {args.max_seq_len}, eval every {args.steps // 2} "
             f"steps, no periodic checkpoints. Stopped after step {at_stop['step']} (Stop wrote {checkpoint}), "
             f"then resumed (`resumed_from` {resumed.get('resumed_from')}, final state {resumed['state']}, "
             f"stopped_early {resumed['stopped_early']}). `python bench/stop_resume.py`; "
             f"{time.time() - began:.0f} s in all.", "",
             f"The resumed run's metrics.jsonl: {len(b_rows)} train rows, {len({r['step'] for r in b_rows})} "
             "distinct steps.", "", "| step | uninterrupted | stopped + resumed | abs. difference |",
             "|---|---|---|---|"]
    lines += [f"| {k} | {a[k]:.6f} | {b[k]:.6f} | {abs(a[k] - b[k]):.2e} |" for k in range(1, args.steps + 1)]
    lines += ["", f"Largest difference after the stop (steps {after.start}-{after.stop - 1}): "
              f"{max(abs(a[k] - b[k]) for k in after):.2e}. Eval loss: uninterrupted {evals[0]}, "
              f"stopped + resumed {evals[1]}."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
