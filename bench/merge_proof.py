"""Does a TIES merge of two runs trained on different data keep both skills?

Trains two LoRA runs of the default model with `python -m engine train`: A on `presets/data/identity.jsonl`
(its name is Quillby), B on `presets/data/planets.jsonl` (made-up planets), each on 80% of its file (a seeded
cut; the other 20% is held out and never trained on). Merges them with `python -m engine merge A B --how ties`,
then measures held-out loss (as `python -m engine evaluate RUN --data HELD_OUT` does, in one process) of the base
model, A, B and the merge on both tasks. The claim: the merge does better than either parent on the other's task.

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


def cpu_flags() -> str:
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    wanted = [f for f in flags if f == "avx2" or f.startswith(("avx512", "amx"))]
    return "flags: " + (", ".join(wanted) or "no avx2/avx512/amx")


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


def held_out_losses(run_dirs: dict[str, Path], tests: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Eval loss on each held-out file of the base model and each run's adapter: one process, the base loaded once
    (peft switches adapters), the examples encoded and scored as `python -m engine evaluate --data` does."""
    import torch
    from peft import PeftModel

    from engine.core.config import RunConfig
    from engine.core.models import load_tokenizer
    from engine.evaluation.evaluate import held_out, token_loss
    from engine.inference.loading import load_base

    torch.set_num_threads(2)
    first = next(iter(run_dirs.values()))
    cfg = RunConfig.load(first / "config.yaml")
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, cfg.data.template)
    encoded = {task: [e for _, e in held_out(cfg, tokenizer, str(path))[0]] for task, path in tests.items()}
    base, _, _ = load_base(cfg.model)
    base.eval()
    names = {label: f"run{i}" for i, label in enumerate(run_dirs)}
    model = None
    for label, run_dir in run_dirs.items():
        if model is None:
            model = PeftModel.from_pretrained(base, str(run_dir / "adapter"), adapter_name=names[label])
        else:
            model.load_adapter(str(run_dir / "adapter"), adapter_name=names[label])
    losses = {"base model": {}}
    with model.disable_adapter():
        for task, examples in encoded.items():
            losses["base model"][task] = token_loss(model, examples)[0]
    for label in run_dirs:
        model.set_adapter(names[label])
        losses[label] = {task: token_loss(model, examples)[0] for task, examples in encoded.items()}
    return losses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--weights", default="0.5,0.5")
    parser.add_argument("--density", type=float, default=0.5)
    parser.add_argument("--home", default="/tmp/tuneloom-merge-bench")
    args = parser.parse_args()
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    started = time.time()
    files = {name: split(name, source, home) for name, source in TASKS.items()}
    # the two runs train at once, each in its own workspace (a workspace trains one run at a time): on a machine
    # shared with other jobs, two processes get twice the share of the CPU
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    jobs = {}
    for name, (train, _, _) in files.items():
        command = [sys.executable, "-m", "engine", "train", "presets/quickstart.yaml", "--set", f"name={name}",
                   "--set", f"data.train={train}", "--set", "data.validation_split=0", "--set",
                   f"train.max_steps={args.steps}", "--set", f"train.batch_size={args.batch_size}", "--set",
                   "train.warmup_steps=1", "--set", "train.eval_steps=0", "--set", "train.save_steps=0", "--set",
                   "train.max_seq_len=96"]
        jobs[name] = subprocess.Popen(command, cwd=ROOT, env={**env, "TUNELOOM_HOME": str(home / name)}, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    trained = {}
    for name, job in jobs.items():
        out, err = job.communicate()
        if job.returncode != 0:
            raise SystemExit(f"training {name} failed:\n{err[-3000:]}")
        trained[name] = Path(out.strip().splitlines()[-1])
        print(f"trained {name}: {trained[name]}", flush=True)
    merged = Path(engine("merge", trained["identity"], trained["planets"], "--how", "ties", "--weights", args.weights,
                         "--density", args.density, "--name", "ties", home=home))
    print(f"merged: {merged.name}", flush=True)
    losses = held_out_losses({"A (identity)": trained["identity"], "B (planets)": trained["planets"],
                              "TIES merge of A and B": merged}, {task: test for task, (_, test, _) in files.items()})
    for label, values in losses.items():
        print(label, values, flush=True)
    better = (losses["TIES merge of A and B"]["planets"] < losses["A (identity)"]["planets"]
              and losses["TIES merge of A and B"]["identity"] < losses["B (planets)"]["identity"])
    from bench.machine import describe

    record = {"machine": describe(), "steps": args.steps,
              "batch_size": args.batch_size, "weights": args.weights, "density": args.density,
              "held_out": {task: n for task, (_, _, n) in files.items()}, "losses": losses,
              "merge_beats_each_parent_on_the_other_task": better, "seconds": round(time.time() - started, 1),
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results"
    (out / "merge_cpu.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["# TIES merge of two runs trained on different data (CPU)", "",
             f"Machine: {record['machine']} ({cpu_flags()}); shared with other jobs while it ran", "",
             f"`python bench/merge_proof.py --steps {args.steps} --batch-size {args.batch_size} "
             f"--weights {args.weights} --density {args.density}`: two LoRA runs of the default model "
             "(presets/quickstart.yaml, "
             f"{args.steps} steps of batch {args.batch_size}, warm-up 1 step, max_seq_len 96), A on 80% of "
             "`presets/data/identity.jsonl`, B on 80% of `presets/data/planets.jsonl` (the other 20% held out, "
             f"{record['held_out']['identity']} and {record['held_out']['planets']} examples), merged with "
             f"`python -m engine merge A B --how ties --weights {args.weights} --density {args.density}` (peft "
             "add_weighted_adapter). Held-out eval loss (the trained tokens of the held-out answers, as "
             "`python -m engine evaluate RUN --data HELD_OUT` measures it; the base model and the three adapters "
             "scored in one process):", "",
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
