"""What a reward is: a small pure function of one completion (and its reference), with declared parameters.

GRPO (engine/training/grpo.py) samples several completions per prompt and scores each with the rewards the run
names in `grpo.rewards`; a reward entry there is `{name, weight, reference, ...params}`. Pure rewards score one
completion at a time (`score`); a reward that needs a model (a reward model) declares `scorer`, a
"module:function" resolved when the run starts, which returns a function scoring a whole batch.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.core.registry import REWARDS, Param  # noqa: F401  (REWARDS: re-exported for the reward modules)

EXTRACTIONS = ("last_number", "boxed", "answer_tag", "none")


@dataclass(frozen=True)
class Reward:
    key: str
    title: str
    summary: str
    params: tuple[Param, ...] = ()
    # score(completion text, reference value or None, params) -> a number (pure)
    score: Callable[[str, Any, dict], float] | None = None
    needs_reference: bool = False  # compares with a reference column of the data (entry key `reference`)
    # "module:function": (params, log) -> batch scorer (prompts, completions) -> list of numbers; for rewards that
    # load a model. Resolved at run time, so this declaration stays import-light.
    scorer: str = ""
    user_code: bool = False  # runs the user's own Python: never from the web page unless the app allows it

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def describe(self) -> dict:
        return {"key": self.key, "title": self.title, "summary": self.summary,
                "needs_reference": self.needs_reference, "params": [p.describe() for p in self.params]}


# ---- what a completion answers: the last number, a \boxed{} expression, an <answer> tag -----------------------------
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def last_number(text: str) -> str | None:
    found = NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...}, braces matched (a \\frac{1}{2} inside stays whole)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for index in range(begin, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            if depth == 0:
                return text[begin:index].strip()
            depth -= 1
    return None  # never closed


def answer_tag(text: str) -> str | None:
    found = ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


def extract(text: str, how: str) -> str | None:
    """The answer a completion gives, by `how` (EXTRACTIONS); None when it gives none that way."""
    if how == "last_number":
        return last_number(text)
    if how == "boxed":
        return boxed(text)
    if how == "answer_tag":
        return answer_tag(text)
    return text


def as_number(value) -> float | None:
    """A number from a reference or an extracted answer ("1,234", " 5 ", 5, "-0.5"), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        number = last_number(text) if how_many_numbers(text) == 1 else None
        return float(number) if number is not None else None


def how_many_numbers(text: str) -> int:
    return len(NUMBER.findall(text))


EXTRACT = Param("extract", str, "last_number", "Where the answer is read from the completion: the last number, "
                "the last \\boxed{...}, the last <answer>...</answer>, or the whole text (none).", choices=EXTRACTIONS)
