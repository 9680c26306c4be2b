"""The `grpo:` section of the schema (train.objective grpo, engine/training/grpo.py), and the checks of its
reward list against the reward registry (engine/rewards), made with the config before anything loads."""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.registry import METHODS, REWARDS, check_params
from engine.core.settings import setting

# TRL's GRPOConfig.loss_type values offered here (the others need settings this schema does not have)
GRPO_LOSSES = ("dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo")
ENTRY_KEYS = ("name", "weight", "reference")


@dataclass
class GrpoConfig:
    """GRPO: sample several answers per prompt, score them with rewards, learn from their differences (TRL)."""
    num_generations: int = setting(4, "Answers sampled per prompt; GRPO learns from how their rewards differ. "
                                   "train.batch_size must be a multiple of it.", min=2, max=256,
                                   label="generations per prompt")
    max_completion_length: int = setting(64, "Longest sampled answer in tokens.", min=1,
                                         label="max completion length")
    temperature: float = setting(1.0, "Sampling temperature: higher gives more varied answers.", min=0.01)
    beta: float = setting(0.0, "KL penalty to the starting model (0: no reference model is kept; 0.001-0.04 "
                          "typical).", min=0.0, label="KL beta")
    epsilon: float = setting(0.2, "Clipping of the policy ratio (PPO's epsilon).", min=0.0)
    loss_type: str = setting("dapo", "How token losses are averaged: dapo (TRL's default), grpo (per sequence), "
                             "dr_grpo (a constant), bnpo, cispo, sapo.", choices=GRPO_LOSSES, label="GRPO loss")
    completions_every: int = setting(5, "Steps between two samples of prompts, answers and rewards written to "
                                     "RUN/completions.jsonl.", min=1, label="completions every")
    # [{name, weight, reference, ...params}]: the rewards, by name from engine/rewards (checked by reward_problems)
    rewards: list = field(default_factory=list)

    def problems(self) -> list[str]:
        return []


def reward_problems(rewards, allow_user_code: bool = True) -> list[str]:
    """Every problem of a `grpo.rewards` list: unknown rewards, bad weights and parameters, a missing reference
    column name, user code where it is not allowed."""
    if not isinstance(rewards, list):
        return ["grpo.rewards: expected a list of {name, weight, reference, ...}"]
    if not rewards:
        return ["grpo.rewards: name at least one reward, e.g. [{name: numeric_match, reference: answer}]; "
                f"rewards: {', '.join(REWARDS)}"]
    found = []
    for index, entry in enumerate(rewards):
        where = f"grpo.rewards[{index}]"
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "name" not in entry:
            found.append(f"{where}: expected a mapping with a name, e.g. {{name: numeric_match, reference: answer}}")
            continue
        name = str(entry["name"])
        if name not in REWARDS:
            found.append(f"{where}.name: unknown reward {name!r}; choose one of: {', '.join(REWARDS)}")
            continue
        reward = REWARDS.get(name)
        try:
            float(entry.get("weight", 1.0))
        except (TypeError, ValueError):
            found.append(f"{where}.weight: expected a number, got {entry.get('weight')!r}")
        if reward.needs_reference and not str(entry.get("reference") or "").strip():
            found.append(f"{where}.reference: {name} compares with a reference column of the data; name it, e.g. "
                         "reference: answer")
        if reward.user_code and not allow_user_code:
            found.append(f"{where}: {name} runs your own Python code, which the web page does not run; start the "
                         "run from the command line, or start the app with --allow-user-code")
        params = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        found += check_params(reward.params, params, where)[1]
    return found


def user_code_problems(rewards) -> list[str]:
    """The rewards of a config from the page that would run the user's own code (refused there)."""
    if not isinstance(rewards, list):
        return []
    return [text for text in reward_problems(rewards, allow_user_code=False) if "runs your own Python code" in text]


def reward_entries(rewards: list) -> list[dict]:
    """The rewards with defaults filled: {name, weight, reference, params} (after reward_problems found none)."""
    entries = []
    for entry in rewards:
        entry = {"name": entry} if isinstance(entry, str) else entry
        reward = REWARDS.get(str(entry["name"]))
        params, _ = check_params(reward.params, {k: v for k, v in entry.items() if k not in ENTRY_KEYS}, "")
        entries.append({"name": reward.key, "weight": float(entry.get("weight", 1.0)),
                        "reference": str(entry.get("reference") or ""), "params": params})
    return entries


def reference_columns(rewards: list) -> list[str]:
    return [e["reference"] for e in reward_entries(rewards) if e["reference"]]


# ---- what the GRPO objective declares (engine/core/objectives.py) ------------------------------------------------
# TRL's GRPO metrics recorded in metrics.jsonl beside the loss (and rewards/<name>/mean, /std for each reward)
METRICS = ("reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "completions/mean_length",
           "completions/clipped_ratio", "clip_ratio/region_mean")


def keeps_reference(cfg) -> bool:
    return cfg.grpo.beta > 0


def completion_tokens(cfg) -> int:
    return cfg.grpo.max_completion_length


def trl_settings(cfg) -> dict:
    """TRL GRPOConfig's settings from the `grpo:` section; the rewards' weights in the order of the list."""
    g = cfg.grpo
    weights = [e["weight"] for e in reward_entries(g.rewards)] if not reward_problems(g.rewards) else None
    return dict(num_generations=g.num_generations, max_completion_length=g.max_completion_length,
                temperature=g.temperature, beta=g.beta, epsilon=g.epsilon, loss_type=g.loss_type,
                reward_weights=weights, log_completions=False, disable_dropout=True)


def problems(cfg) -> list[str]:
    """The GRPO settings against each other: the rewards, and batches that hold whole groups of answers."""
    g, t = cfg.grpo, cfg.train
    found = reward_problems(g.rewards)
    if t.batch_size % g.num_generations:
        found.append(f"train.batch_size: {t.batch_size} answers per step is not a multiple of "
                     f"grpo.num_generations ({g.num_generations}): each prompt's answers are compared within one "
                     f"batch; set batch_size to {g.num_generations * max(1, t.batch_size // g.num_generations)}")
    if g.beta > 0 and cfg.method.name in METHODS and METHODS.get(cfg.method.name).single_adapter:
        found.append(f"grpo.beta: {cfg.method.name} allows one adapter per model, and TRL keeps the reference as a "
                     "second, frozen adapter; set beta to 0 or use lora")
    return found


def record_problems(cfg, record: dict) -> list[str]:
    """The reference columns the rewards read, looked up in the data's first record (after column mapping)."""
    if reward_problems(cfg.grpo.rewards):
        return []
    missing = [name for name in dict.fromkeys(reference_columns(cfg.grpo.rewards)) if name not in record]
    columns = ", ".join(map(str, record)) or "none"
    return [f"grpo.rewards: the reference column {name!r} is not in {cfg.data.train} (its columns: {columns}); name "
            "a column the data has, or map one to it" for name in missing]
