"""A judged evaluation on CPU with the default model as the judge.

Evaluates a run (default: the identity run `bench/merge_proof.py` trained, in its workspace) with
`python -m engine evaluate RUN --judge smollm2-135m-instruct`, once as a rubric (each answer 1-5 against its
reference) and once pairwise (the run's answer against its base model's, each pair in both orders), and
records the scores, their intervals, the time and a few of the judge's replies. A 135M-parameter judge is far
too small to grade well: this measures that the judged evaluation runs on CPU and what it costs, not how good
such a judge is (the position consistency says how often it kept its choice when the order was swapped).

    python bench/judge_cpu.py [--run RUN] [--home HOME] [--samples 3]
Writes bench/results/judge_cpu.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
JUDGE = "smollm2-135m-instruct"


def evaluate(run: str, home: Path, mode: str, samples: int) -> tuple[dict, float]:
    env = {**os.environ, "TUNELOOM_HOME": str(Path(run).parent.parent), "PYTHONPATH": str(ROOT)}
    started = time.time()
    result = subprocess.run([sys.executable, "-m", "engine", "evaluate", run, "--data",
                             str(home / "identity-heldout.jsonl"), "--samples", str(samples),
                             "--max-new-tokens", "24", "--judge", JUDGE, "--judge-mode", mode, "--judge-tokens", "32",
                             "--json"],
                            cwd=ROOT, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1]), time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", default="/tmp/tuneloom-merge-bench")
    parser.add_argument("--run", default=None, help="default: the newest run named identity in HOME")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    home = Path(args.home)
    run = args.run or str(sorted(home.glob("**/runs/*-identity"))[-1])
    from bench.machine import describe
    from engine.evaluation.judge import summary_line

    record = {"machine": describe(), "run": Path(run).name, "judge": JUDGE, "samples": args.samples,
              "date": time.strftime("%Y-%m-%d"), "modes": {}}
    for mode in ("rubric", "pairwise"):
        result, seconds = evaluate(run, home, mode, args.samples)
        record["modes"][mode] = {"judge": result["judge"], "seconds": round(seconds, 1),
                                 "examples": [{k: s.get(k) for k in ("prompt", "reference", "generated",
                                                                     "base_generated", "judge")}
                                              for s in result["samples"][:3]]}
        print(summary_line(result["judge"]), f"({seconds:.0f} s)", flush=True)
    out = ROOT / "bench" / "results"
    (out / "judge_cpu.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    lines = ["# Judged evaluation on CPU, the default model as judge", "", f"Machine: {record['machine']}", "",
             f"`python bench/judge_cpu.py --samples {args.samples}`: `python -m engine evaluate {record['run']} "
             f"--data identity-heldout.jsonl --samples {args.samples} --max-new-tokens 24 --judge {JUDGE} "
             "--judge-mode rubric|pairwise --judge-tokens 32` (run: "
             "the identity LoRA run of `bench/merge_proof.py`, its answers to the held-out identity questions).",
             "", "| mode | result | 95% CI | judged / unreadable | wall time (whole evaluation) |",
             "|---|---|---|---|---|"]
    for mode, entry in record["modes"].items():
        j = entry["judge"]
        value = f"mean score {j['score']:.2f} of 5" if mode == "rubric" and j.get("score") is not None else \
            f"win rate {j['win_rate']:.3f}" if j.get("win_rate") is not None else "–"
        ci = "–" if j.get("ci_low") is None else f"{j['ci_low']:.3f}–{j['ci_high']:.3f}"
        lines.append(f"| {mode} | {value} | {ci} | {j['judged']} / {j['unparsed']} | {entry['seconds']:.0f} s |")
    pairwise = record["modes"]["pairwise"]["judge"]
    consistency = pairwise.get("position_consistency")
    lines += ["", f"Pairwise: {pairwise['wins']} wins, {pairwise['losses']} losses, {pairwise['split_or_tie']} "
              "split or tie; the judge kept its choice when the two answers swapped places in "
              f"{'–' if consistency is None else f'{consistency:.0%}'} of the examples. A judge of 135M parameters "
              "is far too small to grade: these numbers show that the judged evaluation runs on CPU and what it "
              "costs, not the quality of the run; use a larger model or an endpoint as the judge for real work.", "",
              "First judge replies (rubric):", ""]
    for example in record["modes"]["rubric"]["examples"]:
        reply = (example["judge"] or {}).get("reply", "").replace("\n", " ")[:200]
        lines.append(f"- answer `{example['generated'][:80]}` -> score {example['judge'].get('score')}: `{reply}`")
    lines += ["", f"{record['date']}."]
    (out / "judge_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
