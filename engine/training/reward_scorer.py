"""Rewards that are not pure functions (engine/rewards/builtin.py declares them with `scorer`): each builder
returns a batch scorer (prompts, completion texts, references or None) -> numbers, used by GRPO's rewards
(engine/training/grpo_rewards.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from engine.core.config import ConfigError
from engine.training.grpo_rewards import ExampleFailed


def user_function(params: dict, setup):
    """The user's own reward: `function` in the Python file `file`, called as f(completion, reference) per answer.
    Only runs from the command line or YAML, or an app started with --allow-user-code (engine/core/grpo_settings)."""
    path = Path(params["file"]).expanduser()
    if not path.is_file():
        raise ConfigError([f"grpo.rewards: python reward file {path} not found"])
    spec = importlib.util.spec_from_file_location(f"tuneloom_user_reward_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, params["function"], None)
    if not callable(function):
        raise ConfigError([f"grpo.rewards: {path} has no function {params['function']!r}"])
    setup.log(f"reward python: {params['function']} from {path} (your own code)")

    def score(prompts, completions, references):
        values = []
        for index, text in enumerate(completions):
            try:
                values.append(float(function(text, references[index] if references else None)))
            except Exception as err:  # named with the example's line by the caller
                raise ExampleFailed(index, err) from err
        return values

    return score


def build(params: dict, setup):
    """A reward model's score of each (prompt, answer): a sequence-classification model folder
    (engine/training/reward_model.py loads it)."""
    from engine.training.reward_model import load_scorer

    return load_scorer(params["model"], setup)
