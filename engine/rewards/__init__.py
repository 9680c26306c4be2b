"""The reward registry for GRPO (engine/core/registry.py REWARDS): built-in rewards (engine/rewards/builtin.py),
each a small pure function with declared parameters (engine/rewards/base.py)."""
from engine.rewards import builtin  # noqa: F401  (registers the built-in rewards)
from engine.rewards.base import REWARDS, Reward  # noqa: F401
