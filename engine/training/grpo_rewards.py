"""The run's rewards as the functions TRL's GRPOTrainer calls: one per `grpo.rewards` entry, named after it.

Each scores the whole generation batch: the registry's pure function per answer (engine/rewards), or the batch
scorer a reward declares (a reward model, the user's Python function; engine/training/reward_scorer.py).
A reward that raises ends the run with a RewardError naming the reward, the example's line and the reason; a
reward that gives every answer of a batch the same value is reported (GRPO learns from differences only).
"""
from __future__ import annotations

from engine.core.errors import UserError
from engine.core.messages import Message
from engine.core.registry import REWARDS


class RewardError(UserError):
    """A reward function failed on one example: the run ends with this message (status and log)."""


class ExampleFailed(Exception):
    """Raised by a batch scorer that scores answer by answer: which answer of the batch failed, and why."""

    def __init__(self, index: int, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.index = index


def _text(completion) -> str:
    """TRL hands conversational completions as [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion)
    return str(completion)


def unique_names(entries: list[dict]) -> list[str]:
    """The entries' names, numbered where a reward is used twice (numeric_match, numeric_match_2)."""
    names, seen = [], {}
    for entry in entries:
        seen[entry["name"]] = seen.get(entry["name"], 0) + 1
        names.append(entry["name"] if seen[entry["name"]] == 1 else f"{entry['name']}_{seen[entry['name']]}")
    return names


def reward_functions(entries: list[dict], setup) -> list:
    from engine.training.setup import resolve

    file = setup.cfg.data.train
    constant_seen: dict[str, int] = {}
    functions = []
    for entry, name in zip(entries, unique_names(entries)):
        reward = REWARDS.get(entry["name"])
        batch = resolve(reward.scorer)(entry["params"], setup) if reward.scorer else None
        functions.append(_function(name, reward, entry, batch, file, setup, constant_seen))
    return functions


def _function(name, reward, entry, batch, file, setup, constant_seen):
    column = entry["reference"]

    def score(prompts, completions, **columns):
        texts = [_text(c) for c in completions]
        wheres = columns.get("where") or [""] * len(texts)
        references = columns.get(column) if column else None
        if batch is not None:
            try:
                values = [float(v) for v in batch(prompts, texts, references)]
            except ExampleFailed as err:  # the reward's own failure on one answer, worded for the user
                raise RewardError(Message("run.reward_failed", reward=name, where=wheres[err.index] or "an example",
                                          file=file, reason=str(err))) from err
            except Exception as err:
                raise RewardError(Message("run.reward_failed", reward=name, where="a batch", file=file,
                                          reason=f"{type(err).__name__}: {err}")) from err
        else:
            values = []
            for index, text in enumerate(texts):
                try:
                    values.append(float(reward.score(text, references[index] if references else None,
                                                     entry["params"])))
                except Exception as err:
                    raise RewardError(Message("run.reward_failed", reward=name, where=wheres[index] or "an example",
                                              file=file, reason=f"{type(err).__name__}: {err}")) from err
        _report_constant(name, values, setup, constant_seen)
        return values

    score.__name__ = name
    return score


def _report_constant(name: str, values: list[float], setup, seen: dict) -> None:
    """Log (first time, then every 10th) a batch where the reward gave every answer the same value, and count
    such batches in status.json `constant_rewards`."""
    if len(values) < 2 or max(values) != min(values):
        return
    seen[name] = seen.get(name, 0) + 1
    if seen[name] == 1 or seen[name] % 10 == 0:
        setup.log(f"reward {name} gave every answer of the batch {values[0]:g} ({seen[name]} batch(es) so far): "
                  "GRPO learns nothing from a reward that does not differ between answers; check the reward and "
                  "its reference, or make the task easier/harder")
    if setup.is_main:
        from engine.core import runs

        runs.update_status(setup.run_dir, constant_rewards=dict(seen))
