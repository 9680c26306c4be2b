"""GRPO's rewards (engine/rewards) on hand-written cases, the checks of a `grpo.rewards` list, and prompt-only data.

Every expected value is worked out from the reward's definition in its docstring/summary, by hand."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.registry import REWARDS

ROOT = Path(__file__).resolve().parent.parent


def score(name: str, completion: str, reference=None, **params) -> float:
    reward = REWARDS.get(name)
    return reward.score(completion, reference, {**reward.defaults(), **params})


@pytest.mark.parametrize("completion, reference, extract, expected", [
    ("The sum is 12, so the answer is 42.", "42", "last_number", 1.0),  # the last number counts
    ("42 is wrong; it is 41", "42", "last_number", 0.0),
    ("It comes to 1,234", 1234, "last_number", 1.0),  # thousands separators and a numeric reference
    ("-7", "-7.0", "last_number", 1.0),
    ("no number here", "3", "last_number", 0.0),
    ("so \\boxed{\\frac{1}{2}} hmm 7", "0.5", "boxed", 0.0),  # \frac is no number: extracted, not parsed
    ("first 3 then \\boxed{15} and 16", "15", "boxed", 1.0),  # the box, not the last number
    ("<think>5+5=10</think><answer> 10 </answer> 11", "10", "answer_tag", 1.0),
    ("<answer>9</answer>", "10", "answer_tag", 0.0),
    ("<answer>unclosed 10", "10", "answer_tag", 0.0),
])
def test_numeric_match(completion, reference, extract, expected):
    assert score("numeric_match", completion, reference, extract=extract) == expected


def test_numeric_match_tolerance_and_a_bad_reference():
    assert score("numeric_match", "3.14", "3.14159", tolerance=0.01) == 1.0
    assert score("numeric_match", "3.14", "3.14159", tolerance=0.001) == 0.0
    with pytest.raises(ValueError, match="not a number"):
        score("numeric_match", "3", "three")


@pytest.mark.parametrize("completion, reference, params, expected", [
    ("Paris", "paris", {}, 1.0),  # case ignored by default
    ("  Paris \n", "Paris", {"ignore_case": False}, 1.0),  # spaces collapsed
    ("Paris", "paris", {"ignore_case": False}, 0.0),
    ("The capital is Paris", "Paris", {}, 0.0),  # the whole text by default
    ("<answer>Paris</answer>", "paris", {"extract": "answer_tag"}, 1.0),
])
def test_exact_match(completion, reference, params, expected):
    assert score("exact_match", completion, reference, **params) == expected


def test_format_regex_contains_and_length():
    assert score("format", "<think>a\nb</think>\n<answer>4</answer>") == 1.0
    assert score("format", "<answer>4</answer>") == 0.0
    assert score("format", "<think>a</think><answer>4</answer> extra") == 0.0
    assert score("regex", "Answer: 12", pattern=r"\d+") == 1.0  # found anywhere
    assert score("regex", "Answer: 12", pattern=r"\d+", whole=True) == 0.0
    assert score("regex", " 12. ", pattern=r"\s*-?\d+\s*\.?\s*", whole=True) == 1.0
    assert score("contains", "Thank you very much", text="THANK YOU") == 1.0
    assert score("contains", "Thank you", text="THANK YOU", ignore_case=False) == 0.0
    assert score("not_contains", "As an AI model, I", text="as an ai") == 0.0
    assert score("not_contains", "Sure.", text="as an ai") == 1.0
    # 1 - |n - target| / target, never below 0
    assert score("length", "one two three four", target=4) == 1.0
    assert score("length", "one two", target=4) == 0.5
    assert score("length", "a b c d e f", target=4) == 0.5
    assert score("length", " ".join("x" * 9), target=4) == 0.0
    assert score("length", "abcdef", target=4, unit="chars") == 0.5


def test_valid_json_and_schema():
    schema = json.dumps({"type": "object", "required": ["name", "age"],
                         "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}})
    assert score("json", '{"a": 1}') == 1.0
    assert score("json", "```json\n[1, 2]\n```") == 1.0  # a fenced block counts as its content
    assert score("json", "{'a': 1}") == 0.0  # single quotes are not JSON
    assert score("json", '{"name": "Ada", "age": 36}', schema=schema) == 1.0
    assert score("json", '{"name": "Ada"}', schema=schema) == 0.0  # required age missing
    assert score("json", '{"name": "Ada", "age": -1}', schema=schema) == 0.0  # below the minimum
    assert score("json", '{"name": "Ada", "age": 3.5}', schema=schema) == 0.0  # not an integer
    assert score("json", '<answer>{"name": "A", "age": 1}</answer>', schema=schema, extract="answer_tag") == 1.0


def test_reward_list_problems_name_the_entry_and_field():
    from engine.core.grpo_settings import reward_problems

    found = reward_problems([{"name": "numeric_match"}, {"name": "nope"}, {"name": "length", "target": 0},
                             {"name": "regex", "pattern": "("}, {"name": "contains", "text": "x", "colour": 1},
                             {"name": "python", "file": "r.py"}], allow_user_code=False)
    text = "\n".join(map(str, found))
    assert "grpo.rewards[0].reference: numeric_match compares with a reference column" in text
    assert "grpo.rewards[1].name: unknown reward 'nope'" in text
    assert "grpo.rewards[2].target" in text and "grpo.rewards[3].pattern: not a valid regular expression" in text
    assert "grpo.rewards[4].colour" in text and "grpo.rewards[5]: python runs your own Python code" in text
    assert reward_problems([]) and reward_problems([{"name": "format"}]) == []


# ---- prompt-only data and config errors before anything loads -----------------------------------------------------
def test_prompt_only_data_is_detected_with_its_reference_columns(tmp_path):
    from engine.data import load_examples

    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "2+2?", "answer": 4}) + "\n"
                    + json.dumps({"prompt": [{"role": "user", "content": "3+3?"}], "answer": "6", "system": "Be brief"})
                    + "\n")
    loaded = load_examples(path)
    assert loaded.format == "prompts"
    first, second = loaded.examples
    assert first.kind == "prompt" and first.messages == [{"role": "user", "content": "2+2?"}]
    assert first.references == {"answer": 4} and second.references == {"answer": "6"}
    assert second.messages[0] == {"role": "system", "content": "Be brief"} and second.where == "line 2"


def _cli(*args, home):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_unknown_reward_and_missing_reference_column_exit_2_before_loading(tiny_model, tmp_path):
    common = ["--set", f"model={tiny_model}"]
    unknown = _cli("train", "presets/grpo.yaml", *common, "--set", "grpo.rewards=[{name: exactish}]", home=tmp_path)
    assert unknown.returncode == 2 and "grpo.rewards[0].name: unknown reward 'exactish'" in unknown.stderr
    missing = _cli("train", "presets/grpo.yaml", *common, "--set",
                   "grpo.rewards=[{name: numeric_match, reference: solution}]", home=tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert "the reference column 'solution' is not in presets/data/arithmetic.jsonl" in missing.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing started


def test_the_page_refuses_user_code_rewards_unless_the_app_allows_them(monkeypatch):
    from engine.core.security import ALLOW_USER_CODE, web_config_problems

    raw = {"grpo": {"rewards": [{"name": "python", "file": "mine.py"}, {"name": "format"}]}}
    monkeypatch.delenv(ALLOW_USER_CODE, raising=False)
    assert [str(p) for p in web_config_problems(raw)] == [
        "grpo.rewards[0]: python runs your own Python code, which the web page does not run; start the run from "
        "the command line, or start the app with --allow-user-code"]
    monkeypatch.setenv(ALLOW_USER_CODE, "1")
    assert web_config_problems(raw) == []


def test_the_estimate_counts_the_answer_the_reference_and_generation(tiny_model):
    from engine.core.config import RunConfig
    from engine.estimate import estimate
    from engine.estimate.generation import generation_bytes
    from engine.estimate.memory import setup as estimate_setup
    from engine.estimate.memory import structure_for_config

    rewards = {"rewards": [{"name": "format"}]}
    base = {"model": tiny_model, "method": {"name": "full"},
            "train": {"objective": "grpo", "batch_size": 4, "max_seq_len": 64}}
    without = RunConfig.from_dict({**base, "grpo": {**rewards, "beta": 0.0, "max_completion_length": 32}})
    with_kl = RunConfig.from_dict({**base, "grpo": {**rewards, "beta": 0.04, "max_completion_length": 32}})
    a, b = estimate(without, device="cpu"), estimate(with_kl, device="cpu")
    assert a.components["reference"] == 0
    # full fine-tuning: the reference is a second copy of the model, in the stored weights' dtype (fp32)
    assert b.components["reference"] == b.trainable_params * 4
    assert a.details["row_tokens"] == 64 + 32  # the longest prompt (max_seq_len, no data) + the sampled answer
    st = structure_for_config(without)
    s = estimate_setup(st, without, "cpu", 1, "none", "sdpa", None)
    answers, positions = 4 * 1, 64 + 32  # batch x accumulation answers, prompt + completion positions
    expected = answers * positions * st.layers * 2 * st.kv_heads * st.head_dim * 4 + answers * st.vocab * (4 + 8)
    assert generation_bytes(s) == expected


def test_the_train_tab_view_shows_reward_curves_and_sampled_answers_in_both_languages(tmp_path):
    from ui import rewards_view

    rows = [{"step": 1, "loss": 0.0, "reward": 0.25, "rewards/numeric_match/mean": 0.25, "kl": 0.0,
             "completions/mean_length": 7.0},
            {"step": 2, "loss": 0.0, "reward": 0.5, "rewards/numeric_match/mean": 0.5, "eval_reward": 0.4,
             "completions/mean_length": 5.0}]
    frame = rewards_view.reward_frame(rows)
    assert sorted(set(frame["series"])) == ["eval mean total reward", "mean total reward", "numeric_match"]
    assert frame[frame["series"] == "numeric_match"]["value"].tolist() == [0.25, 0.5]
    assert "平均总奖励" in set(rewards_view.reward_frame(rows, "zh")["series"])
    assert set(rewards_view.length_kl_frame(rows)["series"]) == {"answer length", "KL to the start"}
    assert rewards_view.reward_frame([{"step": 1, "loss": 1.0}]) is None  # not a GRPO run: hidden
    (tmp_path / "completions.jsonl").write_text("".join(json.dumps(
        {"step": s, "prompt": "1+1?", "completion": str(s), "rewards": {"numeric_match": float(s == 2)},
         "reward": float(s == 2)}) + "\n" for s in (1, 2)))
    table = rewards_view.samples(tmp_path, "zh")
    assert list(table.columns) == ["步", "提示", "回答", "奖励", "numeric_match"]
    assert table.values.tolist()[0] == [2, "1+1?", "2", 1.0, 1.0]  # newest first
