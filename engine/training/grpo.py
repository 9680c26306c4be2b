"""GRPO (train.objective grpo) as TRL's GRPOTrainer inside Tuneloom's trainer process.

TRL's trainer is a transformers.Trainer subclass, so the run-folder callback (metrics.jsonl, status, the STOP
file), checkpoints and Resume work as for every other run. What is ours:
- the prompts (engine/data/prompts.py): their conversations, rendered by TRL with the same chat template the
  Data tab shows, and their reference columns, handed to the rewards;
- the rewards (engine/training/grpo_rewards.py): the registry's functions by name, with their weights;
- RUN/completions.jsonl: every `grpo.completions_every` steps, the batch's prompts, sampled answers and their
  rewards (TRL keeps them for its own table; we write them where the page reads them).
Generation, advantages, the clipped loss, the KL to the reference and the metrics are TRL's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from engine.core.grpo_settings import reward_entries
from engine.training.grpo_rewards import reward_functions

COMPLETIONS_FILE = "completions.jsonl"


def _columns(items, references: list[str]) -> dict:
    """TRL's dataset: the prompt conversation, the line it came from, and each reference column as text."""
    columns = {"prompt": [e.messages for e in items], "where": [e.where for e in items]}
    for name in references:
        columns[name] = ["" if e.references.get(name) is None else str(e.references[name]) for e in items]
    return columns


def _text(value) -> str:
    """A prompt or completion as TRL logs it (text, or messages) -> the text shown: the last turn's content."""
    if isinstance(value, list) and value:
        return str(value[-1].get("content", ""))
    return str(value)


def completion_rows(logs: dict, entries: list[dict], names: list[str], step: int) -> list[dict]:
    """The rows of RUN/completions.jsonl from TRL's kept batch (`trainer._logs`): per answer its rewards, their
    weighted total (as TRL sums them, a reward that gave none counting 0) and the advantage."""
    rows = []
    rewards = logs["rewards"]
    for index, (prompt, completion) in enumerate(zip(logs["prompt"], logs["completion"])):
        values = {entry["name"] if names.count(name) == 1 else name: rewards[name][index]
                  for entry, name in zip(entries, names)}
        total = sum(entry["weight"] * (0.0 if math.isnan(v) else v) for entry, v in zip(entries, values.values()))
        advantages = logs.get("advantages") or []
        rows.append({"step": step, "prompt": _text(prompt), "completion": _text(completion),
                     "rewards": {k: (None if math.isnan(v) else round(v, 6)) for k, v in values.items()},
                     "reward": round(total, 6),
                     "advantage": round(advantages[index], 6) if index < len(advantages) else None})
    return rows


def append_completions(run_dir: Path, rows: list[dict]) -> None:
    with open(run_dir / COMPLETIONS_FILE, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_grpo(setup):
    """TRL's GRPOTrainer on the run's prompts with its rewards (engine/core/objectives.py declares it)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    cfg, tokenizer, data = setup.cfg, setup.tokenizer, setup.data
    entries = reward_entries(cfg.grpo.rewards)
    functions = reward_functions(entries, setup)
    names = [f.__name__ for f in functions]
    references = list(dict.fromkeys(e["reference"] for e in entries if e["reference"]))
    every, run_dir, is_main = cfg.grpo.completions_every, setup.run_dir, setup.is_main

    class TuneloomGRPOTrainer(GRPOTrainer):
        def log(self, logs, start_time=None):
            training = self.model.training
            super().log(logs, start_time)
            step = self.state.global_step
            if is_main and training and "loss" in logs and (step == 1 or step % every == 0) and self._logs["prompt"]:
                append_completions(run_dir, completion_rows(self._logs, entries, names, step))

    reference = "a frozen copy of the adapter as it starts (TRL's 'ref' adapter)" if hasattr(
        setup.model, "peft_config") else "the starting model, loaded a second time"
    weighted = ", ".join(f"{e['name']} x{e['weight']:g}" for e in entries)
    setup.log(f"GRPO: {cfg.grpo.num_generations} answers per prompt, up to {cfg.grpo.max_completion_length} "
              f"tokens; rewards {weighted}; "
              + (f"KL beta {cfg.grpo.beta:g} to {reference}" if cfg.grpo.beta > 0 else "no reference model (beta 0)"))
    return TuneloomGRPOTrainer(
        model=setup.model, reward_funcs=functions, args=setup.args,
        train_dataset=Dataset.from_dict(_columns(data.train, references)),
        eval_dataset=Dataset.from_dict(_columns(data.validation, references)) if data.validation else None,
        processing_class=tokenizer, callbacks=setup.callbacks, optimizers=setup.optimizers)
