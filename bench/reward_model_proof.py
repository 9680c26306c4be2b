"""A reward model (train.objective reward) on the default model with the polite/rude pairs: does it rank the
held-out chosen answer above the rejected one more often than the model it starts from?

Trains the default model with a one-output head (full fine-tuning, TRL's RewardTrainer) through
`python -m engine train`, holding out the run's validation split, then scores every held-out pair with the
starting model (the same seed gives the same freshly initialised head) and the trained one, through the
reward_model reward GRPO uses (engine/training/reward_model.py).

    python bench/reward_model_proof.py [--steps 20] [--set train.learning_rate=2e-5 ...]
Writes bench/results/reward_model_cpu.{md,json}.
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
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ranking(folder: Path, pairs) -> dict:
    from engine.training.reward_model import load_scorer

    score = load_scorer(str(folder), SimpleNamespace(log=lambda *_: None))
    prompts = [p.messages for p in pairs]
    chosen = score(prompts, [p.chosen for p in pairs], None)
    rejected = score(prompts, [p.rejected for p in pairs], None)
    margins = [c - r for c, r in zip(chosen, rejected)]
    return {"ranked_chosen_first": sum(m > 0 for m in margins) / len(margins),
            "mean_margin": sum(margins) / len(margins)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    settings = ["train.objective=reward", "method.name=full", "name=reward-polite", "train.learning_rate=2e-5",
                f"train.max_steps={args.steps}", "train.save_steps=0", "train.eval_steps=0", *args.overrides]
    command = [sys.executable, "-m", "engine", "train", "presets/dpo.yaml"]
    command += [x for s in settings for x in ("--set", s)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        return 1
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    import torch

    from bench.machine import describe
    from engine.core import runs
    from engine.core.config import RunConfig
    from engine.core.models import load_model, load_tokenizer
    from engine.data import load_examples
    from engine.data.dataset import validation_indices

    cfg = RunConfig.load(run_dir / "config.yaml")
    examples = load_examples(cfg.data.train).examples
    held = sorted(validation_indices(len(examples), cfg.data.validation_split, cfg.train.seed))
    pairs = [examples[i] for i in held]  # the run's own held-out split, never trained on
    with tempfile.TemporaryDirectory() as start:  # the model the run started from: same seed, same new head
        torch.manual_seed(cfg.train.seed)
        model = load_model(cfg.model, head="sequence_classification")
        tokenizer = load_tokenizer(cfg.model)
        model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
        model.save_pretrained(start)
        tokenizer.save_pretrained(start)
        base = ranking(Path(start), pairs)
    trained = ranking(run_dir / "model", pairs)
    status = runs.read_status(run_dir)
    record = {"run": str(run_dir), "steps": status.get("step"), "train_seconds": status.get("elapsed_s"),
              "held_out_pairs": len(pairs), "machine": describe(), "date": time.strftime("%Y-%m-%d"),
              "start": base, "trained": trained}
    out = ROOT / "bench" / "results" / "reward_model_cpu"
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    lines = ["# Reward model on the polite/rude pairs, default model (SmolLM2-135M-Instruct), CPU", "",
             f"`python bench/reward_model_proof.py {' '.join(sys.argv[1:])}` ({record['date']}; {record['machine']}); "
             f"{status.get('step')} steps of `train.objective reward` (full fine-tuning, lr 2e-5) took "
             f"{status.get('elapsed_s') or 0:.0f} s on a machine shared with other jobs; {len(pairs)} held-out pairs "
             "(the run's validation split), scored through GRPO's reward_model reward.", "",
             "| on held-out pairs | starting model (new head, same seed) | trained reward model |", "|---|---|---|",
             f"| chosen scored above rejected | {base['ranked_chosen_first']:.0%} | "
             f"{trained['ranked_chosen_first']:.0%} |",
             f"| mean score margin (chosen - rejected) | {base['mean_margin']:.3f} | {trained['mean_margin']:.3f} |"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
