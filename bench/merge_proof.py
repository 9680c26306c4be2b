"""Does a TIES merge of two runs trained on different data keep both skills?

Trains two LoRA runs of the default model with `python -m engine train`: A on `presets/data/identity.jsonl`
(its name is Quillby), B on `presets/data/planets.jsonl` (made-up planets), each on 80% of its file (a seeded
cut; the other 20% is held out and never trained on). Merges them with `python -m engine merge A B --how ties`,
then measures held-out loss (`python -m engine evaluate RUN --data HELD_OUT`) of the base model, A, B and the
merge on both tasks. The claim: the merge does better than either parent on the other's task.

    python bench/merge_proof.py [--steps 30] [--weights 0.5,0.5] [--density 0.5]
Writes bench/results/merge_cpu.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TASKS = {"identity": "presets/data/identity.jsonl", "planets": "presets/data/planets.jsonl"}


def engine(*args, home: Path) -> str:
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env, text=True,
                            capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"engine {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def split(name: str, source: str, out: Path, seed: int = 0) -> tuple[Path, Path, int]:
    rows = [line for line in (ROOT / source).read_text().splitlines() if line.strip()]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[: len(rows) // 5])
    train, test = out / f"{name}-train.jsonl", out / f"{name}-heldout.jsonl"
    train.write_text("".join(rows[i] + "\n" for i in range(len(rows)) if i not in held))
    test.write_text("".join(rows[i] + "\n" for i in sorted(held)))
    return train, test, len(held)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--weights", default="0.5,0.5")
    parser.add_argument("--density", type=float, default=0.5)
    parser.add_argument("--home", default="/tmp/tuneloom-merge-bench")
    args = parser.parse_args()
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    started = time.time()
    files = {name: split(name, source, home) for name, source in TASKS.items()}
    trained = {}
    for name, (train, _, _) in files.items():
        trained[name] = Path(engine("train", "presets/quickstart.yaml", "--set", f"name={name}", "--set",
                                    f"data.train={train}", "--set", "data.validation_split=0", "--set",
                                    f"train.max_steps={args.steps}", "--set", "train.eval_steps=0", "--set",
                                    "train.save_steps=0", "--set", "train.max_seq_len=128", home=home))
        print(f"trained {name}: {trained[name].name}", flush=True)
    merged = Path(engine("merge", trained["identity"], trained["planets"], "--how", "ties", "--weights", args.weights,
                         "--density", args.density, "--name", "ties", home=home))
    print(f"merged: {merged.name}", flush=True)
    losses = {}
    for label, run, extra in (("base model", trained["identity"], ["--base"]),
                              ("A (identity)", trained["identity"], []), ("B (planets)", trained["planets"], []),
                              ("TIES merge of A and B", merged, [])):
        losses[label] = {}
        for task, (_, test, _) in files.items():
            result = json.loads(engine("evaluate", run, "--data", test, "--samples", "0", "--json", *extra,
                                       home=home))
            losses[label][task] = result["eval_loss"]
        print(label, losses[label], flush=True)
    better = (losses["TIES merge of A and B"]["planets"] < losses["A (identity)"]["planets"]
              and losses["TIES merge of A and B"]["identity"] < losses["B (planets)"]["identity"])
    from bench.machine import describe

    record = {"machine": describe(), "steps": args.steps, "weights": args.weights, "density": args.density,
              "held_out": {task: n for task, (_, _, n) in files.items()}, "losses": losses,
              "merge_beats_each_parent_on_the_other_task": better, "seconds": round(time.time() - started, 1),
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results"
    (out / "merge_cpu.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["# TIES merge of two runs trained on different data (CPU)", "",
             f"Machine: {record['machine']}", "",
             f"`python bench/merge_proof.py --steps {args.steps} --weights {args.weights} --density {args.density}`: "
             "two LoRA runs of the default model (presets/quickstart.yaml, max_seq_len 128), A on 80% of "
             "`presets/data/identity.jsonl`, B on 80% of `presets/data/planets.jsonl` (the other 20% held out, "
             f"{record['held_out']['identity']} and {record['held_out']['planets']} examples), merged with "
             f"`python -m engine merge A B --how ties --weights {args.weights} --density {args.density}` (peft "
             "add_weighted_adapter). Held-out eval loss (`python -m engine evaluate RUN --data HELD_OUT`):", "",
             "| model | identity held out | planets held out |", "|---|---|---|"]
    lines += [f"| {label} | {v['identity']:.4f} | {v['planets']:.4f} |" for label, v in losses.items()]
    lines += ["", f"The merge beats each parent on the other's task: **{'yes' if better else 'no'}** "
              f"(merge on planets {losses['TIES merge of A and B']['planets']:.4f} vs A "
              f"{losses['A (identity)']['planets']:.4f}; merge on identity "
              f"{losses['TIES merge of A and B']['identity']:.4f} vs B {losses['B (planets)']['identity']:.4f}).",
              "", f"Wall time {record['seconds']:.0f} s, {record['date']}."]
    (out / "merge_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
