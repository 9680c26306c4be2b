"""The built-in rewards: small pure functions of one completion, each registered with its parameters.

Each returns a number, mostly 1.0 (met) or 0.0 (not met); `length` is graded. A reference is the value of the
example's reference column (text or number) named by the reward entry's `reference`.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace

from engine.rewards import json_schema
from engine.rewards.base import EXTRACT, REWARDS, Param, Reward, as_number, extract

# DeepSeek-R1's format: the reasoning in <think>, then the answer in <answer>
THINK_ANSWER = r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$"


def _normal(text: str, ignore_case: bool) -> str:
    text = " ".join(str(text).split())
    return text.lower() if ignore_case else text


def exact_match(completion: str, reference, p: dict) -> float:
    answer = extract(completion, p["extract"])
    if answer is None:
        return 0.0
    return float(_normal(answer, p["ignore_case"]) == _normal(reference, p["ignore_case"]))


def numeric_match(completion: str, reference, p: dict) -> float:
    wanted, given = as_number(reference), extract(completion, p["extract"])
    if wanted is None:
        raise ValueError(f"the reference {reference!r} is not a number")
    number = as_number(given) if given is not None else None
    return float(number is not None and abs(number - wanted) <= p["tolerance"])


def regex(completion: str, reference, p: dict) -> float:
    flags = re.DOTALL | (re.IGNORECASE if p["ignore_case"] else 0)
    match = re.fullmatch if p["whole"] else re.search
    return float(match(p["pattern"], completion, flags) is not None)


def think_answer_format(completion: str, reference, p: dict) -> float:
    return float(re.match(THINK_ANSWER, completion, re.DOTALL) is not None)


def _json_value(completion: str, how: str):
    text = extract(completion, how)
    if text is None:
        return None
    text = text.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)  # a fenced block counts as its content
    try:
        return json.loads(fence.group(1) if fence else text)
    except ValueError:
        return None


def valid_json(completion: str, reference, p: dict) -> float:
    value = _json_value(completion, p["extract"])
    if value is None:
        return 0.0
    schema = str(p["schema"]).strip()
    return float(not schema or not json_schema.problems(value, json.loads(schema)))


def length(completion: str, reference, p: dict) -> float:
    """1 at the target length, falling linearly to 0 at twice the target or at nothing."""
    count = len(completion.split()) if p["unit"] == "words" else len(completion)
    return max(0.0, 1.0 - abs(count - p["target"]) / p["target"])


def contains(completion: str, reference, p: dict) -> float:
    return float(_normal(p["text"], p["ignore_case"]) in _normal(completion, p["ignore_case"]))


def not_contains(completion: str, reference, p: dict) -> float:
    return 1.0 - contains(completion, reference, p)


def _json_schema_check(value) -> list[str]:
    text = str(value).strip()
    if not text:
        return []
    try:
        json.loads(text)
    except ValueError as err:
        return [f"not valid JSON ({err})"]
    return []


def _pattern_check(value) -> list[str]:
    try:
        re.compile(str(value))
    except re.error as err:
        return [f"not a valid regular expression ({err})"]
    return []


IGNORE_CASE = Param("ignore_case", bool, True, "Compare without regard to upper and lower case.")
TEXT = Param("text", str, "", "The text to look for.")
REWARDS.register("exact_match", Reward(
    "exact_match", "Exact match", "1 when the answer equals the reference (spaces collapsed).",
    (replace(EXTRACT, default="none"), IGNORE_CASE), exact_match, needs_reference=True))
REWARDS.register("numeric_match", Reward(
    "numeric_match", "Numeric match", "1 when the number the completion gives equals the reference number.",
    (EXTRACT, Param("tolerance", float, 1e-6, "Largest difference still counted as equal.", min=0.0)),
    numeric_match, needs_reference=True))
REWARDS.register("regex", Reward(
    "regex", "Pattern", "1 when the completion matches a regular expression.",
    (Param("pattern", str, THINK_ANSWER, "The regular expression (Python syntax; . matches newlines).",
           check=_pattern_check),
     Param("whole", bool, False, "The whole completion must match (else: found anywhere)."),
     Param("ignore_case", bool, False, "Match without regard to upper and lower case.")), regex))
REWARDS.register("format", Reward(
    "format", "Think / answer format", "1 when the completion is <think>...</think> then <answer>...</answer>.",
    (), think_answer_format))
REWARDS.register("json", Reward(
    "json", "Valid JSON", "1 when the answer is valid JSON (and matches the JSON schema, when one is given).",
    (replace(EXTRACT, default="none"),
     Param("schema", str, "", "A JSON schema the value must match (type, properties, required, items, enum, "
                              "minimum/maximum, lengths); empty: any valid JSON.", check=_json_schema_check)),
    valid_json))
REWARDS.register("length", Reward(
    "length", "Length target", "1 at the target length, falling to 0 at none or twice the target.",
    (Param("target", int, 50, "The length aimed at.", min=1),
     Param("unit", str, "words", "Count words or characters.", choices=("words", "chars"))), length))
REWARDS.register("contains", Reward(
    "contains", "Must contain", "1 when the completion contains the text.", (TEXT, IGNORE_CASE), contains))
REWARDS.register("not_contains", Reward(
    "not_contains", "Must not contain", "1 when the completion does not contain the text.", (TEXT, IGNORE_CASE),
    not_contains))
REWARDS.register("reward_model", Reward(
    "reward_model", "Reward model", "The score of a reward model (a sequence-classification folder with one "
    "output).",
    (Param("model", str, "", "The reward model: a sequence-classification model folder with one output.",
           check=lambda value: [] if str(value).strip() else ["name the reward model's folder"]),),
    scorer="engine.training.reward_scorer:build"))
REWARDS.register("python", Reward(
    "python", "Your Python function", "A function in your own Python file: f(completion, reference) -> a "
    "number. From the command line or YAML only, unless the app was started with --allow-user-code.",
    (Param("file", str, "", "The Python file (.py)."), Param("function", str, "reward", "The function's name.")),
    scorer="engine.training.reward_scorer:user_function", user_code=True))
