"""DPO on the default model with the polite/rude pairs: does it learn the preference, on pairs it never saw?

Trains `presets/dpo.yaml` (LoRA, the pairs' 20% validation split held out) with `python -m engine train`,
then scores the held-out pairs with the base model and the trained one (the base is DPO's reference):
- the model's own preference: mean log p(chosen) - log p(rejected) (summed over the answer's tokens) and the
  share of pairs where the chosen answer is the more likely one;
- DPO's implicit reward margin beta * [(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))] and its accuracy
  (0 and 0% before training, by definition);
and records greedy chat replies of both models to held-out and new prompts.

    python bench/dpo_proof.py [--steps 40] [--set train.learning_rate=5e-4 ...]
Writes bench/results/dpo_polite_cpu.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NEW_PROMPTS = ("My printer won't turn on. What should I do?", "Can you explain what a verb is?",
               "I lost my keys again.")


def answer_logps(model, prompt_ids: list[int], answer_ids: list[int]) -> float:
    import torch

    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()
    return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(answer_ids)[:, None]).sum())


def reply(model, tokenizer, prompt: str, max_new_tokens: int = 48) -> str:
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def score(run_dir: Path) -> dict:
    from engine.core.config import RunConfig
    from engine.core.models import load_tokenizer
    from engine.data.pairwise import prepare_preference
    from engine.inference.loading import load_base, load_result

    cfg = RunConfig.load(run_dir / "config.yaml")
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_preference(cfg.data, tokenizer, cfg.train.max_seq_len, cfg.train.seed)  # the run's own split
    held_out = data.validation
    base, _, _ = load_base(cfg.model)
    trained, _, _ = load_result(run_dir, merge=True)
    beta = cfg.preference.beta
    rows = []
    for pair in held_out:
        ref = [answer_logps(base, pair.prompt_ids, a) for a in pair.answers]
        pol = [answer_logps(trained, pair.prompt_ids, a) for a in pair.answers]
        rows.append({"prompt": tokenizer.decode(pair.prompt_ids[-40:]), "base_margin": ref[0] - ref[1],
                     "trained_margin": pol[0] - pol[1],
                     "reward_margin": beta * ((pol[0] - ref[0]) - (pol[1] - ref[1]))})
    n = len(rows)
    summary = {
        "held_out_pairs": n, "beta": beta,
        "base_logp_margin": sum(r["base_margin"] for r in rows) / n,
        "base_prefers_chosen": sum(r["base_margin"] > 0 for r in rows) / n,
        "trained_logp_margin": sum(r["trained_margin"] for r in rows) / n,
        "trained_prefers_chosen": sum(r["trained_margin"] > 0 for r in rows) / n,
        "reward_margin": sum(r["reward_margin"] for r in rows) / n,
        "reward_accuracy": sum(r["reward_margin"] > 0 for r in rows) / n,
    }
    held_prompts = []  # the user turn of the first held-out pairs (ChatML rendering)
    for pair in held_out[:4]:
        text = tokenizer.decode(pair.prompt_ids)
        held_prompts.append(text.split("<|im_start|>user\n")[-1].split("<|im_end|>")[0])
    prompts = held_prompts + list(NEW_PROMPTS)
    print(f"held-out pairs scored: {summary}", file=sys.stderr, flush=True)
    chats = []
    for p in prompts:
        chats.append({"prompt": p, "base": reply(base, tokenizer, p), "trained": reply(trained, tokenizer, p)})
        print(f"chat: {chats[-1]}", file=sys.stderr, flush=True)
    return {"summary": summary, "pairs": rows, "chats": chats}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--run", default=None, help="score an existing run instead of training")
    args = parser.parse_args()
    started = time.time()
    from bench.preset_run import preset_run

    run_dir = preset_run("presets/dpo.yaml", args.steps, args.overrides, args.run)
    if run_dir is None:
        return 1
    from engine.core import runs

    status = runs.read_status(run_dir)
    train_s = status.get("elapsed_s") or (time.time() - started)

    metrics = runs.read_metrics(run_dir)
    evals = [{k: r[k] for k in ("step", "eval_loss", "eval_rewards/accuracies", "eval_rewards/margins") if k in r}
             for r in metrics if "eval_loss" in r]
    result = score(run_dir)
    from bench.machine import describe

    record = {"run": str(run_dir), "config": (run_dir / "config.yaml").read_text(), "train_seconds": round(train_s, 1),
              "steps": status.get("step"), "stopped_early": status.get("stopped_early"),
              "machine": describe(), "date": time.strftime("%Y-%m-%d"), "trainer_evals": evals, **result}
    out = ROOT / "bench" / "results" / "dpo_polite_cpu"
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    s = result["summary"]
    lines = [
        "# DPO on the polite/rude pairs, default model (SmolLM2-135M-Instruct), CPU", "",
        f"`python bench/dpo_proof.py {' '.join(sys.argv[1:])}` ({record['date']}; {record['machine']}); "
        f"training took {train_s:.0f} s for {status.get('step')} steps"
        f"{' (stopped early with Stop; the result is saved at that step)' if status.get('stopped_early') else ''}, "
        f"on a machine shared with other jobs. Config: `presets/dpo.yaml` (LoRA r16, beta {s['beta']}, sigmoid loss); "
        f"{s['held_out_pairs']} held-out pairs (the run's validation split, never trained on).", "",
        "| on held-out pairs | base model (= DPO's reference) | after DPO |", "|---|---|---|",
        f"| mean log p(chosen) - log p(rejected) | {s['base_logp_margin']:.2f} | {s['trained_logp_margin']:.2f} |",
        f"| pairs where chosen is the more likely | {s['base_prefers_chosen']:.0%} | "
        f"{s['trained_prefers_chosen']:.0%} |",
        f"| DPO reward margin (beta-scaled) | 0 (by definition) | {s['reward_margin']:.3f} |",
        f"| DPO reward accuracy | 0% (by definition) | {s['reward_accuracy']:.0%} |", "",
        "The trainer's own evaluation of the same pairs (metrics.jsonl):", "",
        "| step | eval loss | eval reward accuracy | eval reward margin |", "|---|---|---|---|",
        *[f"| {e['step']} | {e['eval_loss']:.4f} | {e.get('eval_rewards/accuracies', 0):.2f} | "
          f"{e.get('eval_rewards/margins', 0):.3f} |" for e in evals], "",
        "Greedy chat replies (48 new tokens; the first four prompts are held-out pairs, the last three are new):", "",
        "| prompt | base | after DPO |", "|---|---|---|",
        *[f"| {c['prompt']} | {c['base'].replace('|', '/').replace(chr(10), ' ')} | "
          f"{c['trained'].replace('|', '/').replace(chr(10), ' ')} |" for c in result["chats"]],
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
