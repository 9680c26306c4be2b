"""GRPO on the default model with the bundled arithmetic task: does the held-out reward rise?

Trains `presets/grpo.yaml` (LoRA; rewards numeric_match against the `answer` column + a small length reward)
with `python -m engine train`, then answers the held-out prompts of presets/data/arithmetic_heldout.jsonl (never
trained on) greedily with the base model and the trained one, and scores each answer with the run's own rewards
(the registry's functions, engine/rewards): the held-out accuracy (numeric_match) and the mean total reward.

    python bench/grpo_proof.py [--steps 30] [--held-out 100] [--set train.learning_rate=5e-4 ...]
Writes bench/results/grpo_cpu.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HELD_OUT = ROOT / "presets" / "data" / "arithmetic_heldout.jsonl"


def answers(model, tokenizer, prompts: list[str], max_new_tokens: int, batch: int = 25) -> list[str]:
    """Greedy answers, batched with left padding (the chat template the run trained with)."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out = []
    for start in range(0, len(prompts), batch):
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts[start:start + batch]]
        ids = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            generated = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id)
        out += [tokenizer.decode(g[ids.input_ids.shape[1]:], skip_special_tokens=True).strip() for g in generated]
    return out


def scored(texts: list[str], rows: list[dict], entries: list[dict]) -> dict:
    """Each answer's rewards by the run's reward entries, their weighted total, and the means."""
    from engine.core.registry import REWARDS

    per = []
    for text, row in zip(texts, rows):
        values = {e["name"]: REWARDS.get(e["name"]).score(text, row.get(e["reference"]), e["params"])
                  for e in entries}
        per.append({"answer": text, "rewards": values,
                    "total": sum(e["weight"] * values[e["name"]] for e in entries)})
    n = len(per)
    means = {name: sum(p["rewards"][name] for p in per) / n for name in per[0]["rewards"]}
    return {"mean_total_reward": sum(p["total"] for p in per) / n, "mean_rewards": means, "answers": per}


def evaluate(run_dir: Path, count: int) -> dict:
    from engine.core.config import RunConfig
    from engine.core.grpo_settings import reward_entries
    from engine.core.models import load_tokenizer
    from engine.inference.loading import load_base, load_result

    cfg = RunConfig.load(run_dir / "config.yaml")
    entries = reward_entries(cfg.grpo.rewards)
    rows = [json.loads(line) for line in HELD_OUT.read_text().splitlines()][:count]
    prompts = [r["prompt"] for r in rows]
    tokenizer = load_tokenizer(cfg.model)
    result = {}
    for name, loader in (("base", lambda: load_base(cfg.model)[0]), ("trained", lambda: load_result(run_dir, True)[0])):
        model = loader().eval()
        started = time.time()
        result[name] = scored(answers(model, tokenizer, prompts, cfg.grpo.max_completion_length), rows, entries)
        result[name]["seconds"] = round(time.time() - started, 1)
        print(f"{name}: mean reward {result[name]['mean_total_reward']:.3f} {result[name]['mean_rewards']}",
              file=sys.stderr, flush=True)
        del model
    result["prompts"] = prompts
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--run", default=None, help="score an existing run instead of training")
    args = parser.parse_args()
    started = time.time()
    from bench.preset_run import preset_run

    run_dir = preset_run("presets/grpo.yaml", args.steps, args.overrides, args.run)
    if run_dir is None:
        return 1
    from bench.machine import describe
    from engine.core import runs

    status = runs.read_status(run_dir)
    train_s = status.get("elapsed_s") or (time.time() - started)
    rows = [r for r in runs.read_metrics(run_dir) if "reward" in r]
    curve = [{"step": r["step"], "reward": round(r["reward"], 4),
              "numeric_match": round(r.get("rewards/numeric_match/mean", 0.0), 4)} for r in rows]
    scores = evaluate(run_dir, args.held_out)
    record = {"run": str(run_dir), "config": (run_dir / "config.yaml").read_text(), "train_seconds": round(train_s, 1),
              "steps": status.get("step"), "machine": describe(), "date": time.strftime("%Y-%m-%d"),
              "train_curve": curve, **scores}
    out = ROOT / "bench" / "results" / "grpo_cpu"
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    base, trained = scores["base"], scores["trained"]
    n = len(scores["prompts"])
    examples = list(zip(scores["prompts"], base["answers"], trained["answers"]))[:8]
    lines = [
        "# GRPO on two-number arithmetic, default model (SmolLM2-135M-Instruct), CPU", "",
        f"`python bench/grpo_proof.py {' '.join(sys.argv[1:])}` ({record['date']}; {record['machine']}); "
        f"training took {train_s:.0f} s for {status.get('step')} steps on a machine shared with other jobs. "
        f"Config: `presets/grpo.yaml`; {n} held-out prompts from `presets/data/arithmetic_heldout.jsonl` (never "
        "trained on), answered greedily and scored with the run's own rewards.", "",
        "| on held-out prompts | base model | after GRPO |", "|---|---|---|",
        f"| accuracy (numeric_match) | {base['mean_rewards']['numeric_match']:.0%} | "
        f"{trained['mean_rewards']['numeric_match']:.0%} |",
        *[f"| mean {name} reward | {base['mean_rewards'][name]:.3f} | {trained['mean_rewards'][name]:.3f} |"
          for name in base["mean_rewards"] if name != "numeric_match"],
        f"| mean total reward | {base['mean_total_reward']:.3f} | {trained['mean_total_reward']:.3f} |", "",
        "Mean training reward per logged step (metrics.jsonl, sampled answers at the run's temperature):", "",
        "| step | mean total reward | numeric_match |", "|---|---|---|",
        *[f"| {c['step']} | {c['reward']:.3f} | {c['numeric_match']:.3f} |" for c in curve], "",
        "First held-out answers:", "", "| prompt | base | after GRPO |", "|---|---|---|",
        *[f"| {p} | {b['answer'].replace('|', '/').replace(chr(10), ' ')} | "
          f"{t['answer'].replace('|', '/').replace(chr(10), ' ')} |" for p, b, t in examples],
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
