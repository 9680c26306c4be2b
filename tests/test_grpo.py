"""GRPO runs on the tiny model: two steps change exactly the adapter and write what the page shows
(metrics, RUN/completions.jsonl, constant rewards reported); a failing reward ends the run naming itself, the
line and the reason; Stop/Resume continues at the next step."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.core import runs
from engine.core.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def _prompts(path: Path, answers: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"Say something about {i}.", "answer": a}) + "\n"
                            for i, a in enumerate(answers)))
    return path


def _config(tiny_model, data: Path, rewards: list, **train) -> RunConfig:
    return RunConfig.from_dict({
        "model": tiny_model, "name": "grpo-test", "data": {"train": str(data), "validation_split": 0},
        "method": {"name": "lora", "r": 4, "alpha": 8},
        "train": {"objective": "grpo", "max_steps": 2, "batch_size": 4, "learning_rate": 1e-2, "warmup_steps": 0,
                  "max_seq_len": 64, "save_steps": 0, **train},
        "grpo": {"num_generations": 2, "max_completion_length": 4, "completions_every": 1, "rewards": rewards}})


def _run_folder(tmp_path: Path, cfg: RunConfig) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    return run_dir


def test_two_grpo_steps_change_exactly_the_adapter(tiny_model, tmp_path, monkeypatch):
    import torch

    from engine.training import recipe

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    # answers of random tokens differ in length, so the length reward differs within each group: a real signal;
    # `contains` of a text the tiny model never writes is the same for every answer: reported, weight 0
    rewards = [{"name": "length", "unit": "chars", "target": 12}, {"name": "contains", "text": "zq-never", "weight": 0}]
    cfg = _config(tiny_model, _prompts(tmp_path / "p.jsonl", ["1", "2", "3", "4"]), rewards)
    run_dir = _run_folder(tmp_path, cfg)
    callback = recipe.build_callback(run_dir, recipe.rss_bytes(), True)
    setup = recipe.set_up(cfg, run_dir, callback, True)
    before = {k: v.detach().clone() for k, v in setup.model.state_dict().items()}
    trainable = {n for n, p in setup.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    recipe.train(setup, callback, resume=False)
    after = setup.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # every frozen tensor is bit-identical; the adapter moved: every lora_B (zero at the start, so it takes the
    # first update; lora_A follows once B is non-zero and a later batch has a signal)
    assert changed <= trainable, sorted(changed - trainable)[:5]
    assert {n for n in trainable if "lora_B" in n} <= changed, sorted(trainable - changed)[:5]

    rows = runs.read_metrics(run_dir)
    assert [r["step"] for r in rows] == [1, 2]
    assert all({"reward", "rewards/length/mean", "rewards/contains/mean", "completions/mean_length"} <= set(r)
               for r in rows)
    written = [json.loads(line) for line in (run_dir / "completions.jsonl").read_text().splitlines()]
    assert {w["step"] for w in written} == {1, 2} and len(written) == 2 * 4  # every step, the batch's 4 answers
    for w in written:  # the total is the weighted sum, from the definition of `length` (chars, target 12)
        assert w["rewards"]["length"] == pytest.approx(max(0.0, 1 - abs(len(w["completion"]) - 12) / 12), abs=1e-5)
        assert w["rewards"]["contains"] == 0.0 and w["reward"] == pytest.approx(w["rewards"]["length"], abs=1e-5)
    assert runs.read_status(run_dir)["constant_rewards"]["contains"] >= 2


@pytest.mark.parametrize("method, beta", [
    ({"name": "qlora", "r": 4, "alpha": 8}, 0.0),  # 4-bit base, LoRA on top (bitsandbytes on CPU)
    ({"name": "full"}, 0.04),  # every weight; KL to a second, frozen copy of the starting model
    ({"name": "freeze", "layers": 1}, 0.0),  # the top decoder layer and the final norm
    ({"name": "lora", "r": 4, "alpha": 8, "use_dora": True}, 0.04),  # DoRA; KL to TRL's frozen "ref" adapter
])
def test_one_grpo_step_trains_what_each_method_claims_and_only_that(tiny_model, tmp_path, monkeypatch, method, beta):
    import torch

    from engine.training import recipe

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    # the tiny model's 4 random tokens are 4 to 60 characters long: a target of 100 scores every answer by its
    # length, so the two answers to a prompt differ and the step has a signal
    rewards = [{"name": "length", "unit": "chars", "target": 100}]
    cfg = _config(tiny_model, _prompts(tmp_path / "p.jsonl", ["1", "2", "3", "4"]), rewards, max_steps=1)
    cfg = RunConfig.from_dict({**cfg.to_dict(), "method": method, "grpo": {**cfg.to_dict()["grpo"], "beta": beta}})
    run_dir = _run_folder(tmp_path, cfg)
    callback = recipe.build_callback(run_dir, recipe.rss_bytes(), True)
    setup = recipe.set_up(cfg, run_dir, callback, True)
    model = setup.model
    before = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    recipe.train(setup, callback, resume=False)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach().float())}
    assert changed and changed <= trainable, sorted(changed - trainable)[:5]
    if method["name"] in ("qlora", "lora"):
        assert all("lora_" in n for n in trainable)
    elif method["name"] == "freeze":  # the top layer (of 2) and the final norm; nothing of layer 0, nor embeddings
        assert trainable and not any(".layers.0." in n or "embed" in n for n in trainable)
        assert any(".layers.1." in n for n in changed)
    else:
        assert len(changed) > len(trainable) // 2  # full fine-tuning moves (nearly) every weight
    row = runs.read_metrics(run_dir)[-1]
    assert row["step"] == 1 and "reward" in row and ("kl" in row) == (beta > 0), sorted(row)


def test_grpo_refuses_methods_that_prepend_virtual_tokens_before_anything_loads(tiny_model, tmp_path):
    import subprocess
    import sys

    import yaml

    cfg = _config(tiny_model, _prompts(tmp_path / "p.jsonl", ["1", "2"]), [{"name": "length", "target": 4}])
    path = tmp_path / "prompt_tuning.yaml"
    path.write_text(yaml.safe_dump({**cfg.to_dict(), "method": {"name": "prompt_tuning"}}))
    result = subprocess.run([sys.executable, "-m", "engine", "train", str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                                         "TUNELOOM_HOME": str(tmp_path / "home")})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "method.name: prompt_tuning cannot train with train.objective grpo" in result.stderr
    assert "use a LoRA-family method" in result.stderr and not (tmp_path / "home" / "runs").exists()


def test_a_failing_reward_ends_the_run_naming_the_reward_line_and_reason(tiny_model, tmp_path, monkeypatch):
    from engine.training import recipe
    from engine.training.grpo_rewards import RewardError

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    user = tmp_path / "my_reward.py"
    user.write_text("def reward(completion, reference):\n"
                    "    if reference == 'boom':\n"
                    "        raise ValueError('cannot score boom')\n"
                    "    return 1.0\n")
    data = _prompts(tmp_path / "p.jsonl", ["fine", "boom"])  # both prompts are in the first batch
    cfg = _config(tiny_model, data, [{"name": "python", "file": str(user), "reference": "answer"}], max_steps=1)
    run_dir = _run_folder(tmp_path, cfg)
    with pytest.raises(RewardError):
        recipe.run(run_dir / "config.yaml")
    status = runs.read_status(run_dir)
    assert status["state"] == "failed"
    assert status["error"] == f"reward python failed on line 2 of {data}: ValueError: cannot score boom"
    assert status["error_i18n"]["code"] == "run.reward_failed"
    log = (run_dir / "train.log").read_text()
    assert "training failed: reward python failed on line 2" in log and "Traceback" not in log


def test_grpo_stop_and_resume_continue_at_the_next_step(tiny_model, tmp_path, monkeypatch):
    from engine.training import launcher

    STEPS = 10  # enough that a stop asked after step 1 lands before the end, however fast the machine

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    rewards = [{"name": "length", "unit": "chars", "target": 12}]
    cfg = _config(tiny_model, _prompts(tmp_path / "p.jsonl", ["1", "2", "3", "4", "5", "6"]), rewards,
                  max_steps=STEPS, save_steps=1)
    run_dir = launcher.start(cfg)
    deadline = time.time() + 500
    while time.time() < deadline and not any(r.get("step", 0) >= 1 for r in runs.read_metrics(run_dir)):
        assert runs.read_status(run_dir).get("state") != "failed", runs.log_tail(run_dir, 40)
        time.sleep(0.5)
    launcher.stop(run_dir)
    while time.time() < deadline and runs.read_status(run_dir).get("state") not in ("done", "failed"):
        time.sleep(0.5)
    stopped = runs.read_status(run_dir)
    assert stopped["state"] == "done" and stopped["stopped_early"] and 1 <= stopped["step"] < STEPS, stopped
    launcher.resume(run_dir)
    while time.time() < deadline + 400 and runs.read_status(run_dir).get("state") not in ("done", "failed"):
        time.sleep(0.5)
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["step"] == STEPS and not status["stopped_early"], runs.log_tail(run_dir)
    assert status["resumed_from"] == stopped["step"]
    steps = [r["step"] for r in runs.read_metrics(run_dir) if "loss" in r]
    assert steps == list(range(1, STEPS + 1))  # the resumed run continued at the next step; none twice, none lost
    checkpoint = run_dir / "checkpoints" / f"checkpoint-{stopped['step']}"
    assert f"resuming from {checkpoint}" in runs.log_tail(run_dir, 200)
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_a_reward_model_folder_scores_prompt_and_answer_as_one_text(tiny_model, tmp_path):
    """The reward_model reward: the sequence-classification model's one output on the chat-rendered prompt + answer
    (computed here directly, one text at a time, against the batched and padded scorer)."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from engine.core.grpo_settings import reward_entries
    from engine.training.grpo_rewards import reward_functions

    torch.manual_seed(0)
    folder = tmp_path / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    setup = SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(train="p.jsonl")), log=lambda *_: None,
                            is_main=False, run_dir=tmp_path)
    (function,) = reward_functions(reward_entries([{"name": "reward_model", "model": str(folder)}]), setup)
    prompts = [[{"role": "user", "content": "Is the sky blue?"}]] * 2
    answers = [[{"role": "assistant", "content": "Yes, on a clear day."}], [{"role": "assistant", "content": "No"}]]
    scores = function(prompts=prompts, completions=answers, where=["line 1", "line 1"])
    expected = []
    for prompt, answer in zip(prompts, answers):
        text = tokenizer.apply_chat_template(prompt + answer, tokenize=False)
        with torch.no_grad():
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            expected.append(float(model.eval()(**ids).logits[0, 0]))
    assert scores == pytest.approx(expected, abs=1e-4) and scores[0] != scores[1]


def test_a_reward_model_trained_with_objective_reward_serves_as_a_grpo_reward(tiny_model, tmp_path, monkeypatch):
    """train.objective reward (TRL RewardTrainer, full fine-tuning of a one-output head) on the polite pairs; the
    run's model folder then scores answers as the reward_model reward, and after training it scores the chosen
    answer of the training pairs above the rejected one more often than chance."""
    from types import SimpleNamespace

    from engine.core.grpo_settings import reward_entries
    from engine.data import load_examples
    from engine.training.grpo_rewards import reward_functions
    from engine.training.launcher import create_run
    from engine.training.recipe import run

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    pairs = ROOT / "presets" / "data" / "polite_pairs.jsonl"
    cfg = RunConfig.from_dict({
        "model": tiny_model, "name": "reward-test", "data": {"train": str(pairs), "validation_split": 0},
        "method": {"name": "full"},
        "train": {"objective": "reward", "max_steps": 12, "batch_size": 4, "learning_rate": 1e-3, "warmup_steps": 0,
                  "max_seq_len": 128, "save_steps": 0, "eval_steps": 0}})
    run_dir = run(create_run(cfg) / "config.yaml")
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status.get("error")
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    assert len(rows) == 12 and all("accuracy" in r and "margin" in r for r in rows)
    setup = SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(train="p.jsonl")), log=lambda *_: None,
                            is_main=False, run_dir=tmp_path)
    (score,) = reward_functions(reward_entries([{"name": "reward_model", "model": str(run_dir / "model")}]), setup)
    examples = load_examples(pairs).examples[:20]
    chosen = score(prompts=[e.messages for e in examples], completions=[e.chosen for e in examples])
    rejected = score(prompts=[e.messages for e in examples], completions=[e.rejected for e in examples])
    ranked = sum(c > r for c, r in zip(chosen, rejected)) / len(examples)
    assert ranked > 0.5, (ranked, chosen[:3], rejected[:3])


def test_the_data_check_shows_prompts_and_their_references_with_nothing_trained(tiny_model, workspace):
    """GRPO's prompt-only data is ready to train on the Data tab (it was "every example dropped: no trainable answer
    tokens" before): each prompt as the model reads it before answering, none of it trained, and the reference
    columns the rewards compare answers with, in en and zh."""
    import os
    import subprocess
    import sys

    from transformers import AutoTokenizer

    from ui import data_tab

    data = ROOT / "presets" / "data" / "arithmetic.jsonl"
    result = subprocess.run([sys.executable, "-m", "engine", "data", "inspect", str(data), "--model", tiny_model,
                             "--limit", "2", "--max-seq-len", "96"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    stats = report["stats"]
    assert report["kind"] == "prompt" and stats["examples"] == 500 and stats["dropped"] == {}
    assert stats["trained_tokens"] == 0 and stats["tokens"] > 500 * 10
    first = report["previews"][0]
    assert first["references"] == {"answer": "0"} and not any(t["trained"] for t in first["tokens"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = tokenizer.apply_chat_template([{"role": "user", "content": "What is 7 - 7? Reply with the number "
                                               "only."}], tokenize=False, add_generation_prompt=True)
    assert "".join(t["token"] for t in first["tokens"]) == expected  # the prompt, up to where the answer starts

    assert data_tab.report_problem(report) == ""  # Start is not refused
    assert "objective grpo" in data_tab.report_stats(report) and "目标 grpo" in data_tab.report_stats(report, "zh")
    _, caption, rejected = data_tab.show_example(1, report)
    assert "none trained" in caption and "answer = 0" in caption and rejected["visible"] is False
    assert "参考列：answer = 0" in data_tab.show_example(1, report, "zh")[1]


def test_the_readmes_grpo_and_reward_model_numbers_are_the_recorded_ones():
    """README quotes bench/results/grpo_cpu.json (written by bench/grpo_proof.py) and reward_model_cpu.md; the
    recorded held-out reward rose over the base's."""
    import re

    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("`bench/grpo_proof.py` scores held-out accuracy"):].split("```")[0]
    record = json.loads((ROOT / "bench" / "results" / "grpo_cpu.json").read_text())
    base, trained = record["base"], record["trained"]
    assert trained["mean_total_reward"] > base["mean_total_reward"]
    assert f"{record['steps']} steps" in paragraph and f"{len(record['prompts'])} held-out prompts" in paragraph
    assert (f"from {base['mean_rewards']['numeric_match']:.0%} to {trained['mean_rewards']['numeric_match']:.0%}"
            in paragraph)
    assert f"from\n{base['mean_total_reward']:.3f} to {trained['mean_total_reward']:.3f}".replace("\n", " ") in \
        paragraph.replace("\n", " ")
    rm = (ROOT / "bench" / "results" / "reward_model_cpu.md").read_text()
    before, after = re.search(r"\| chosen scored above rejected \| (\d+)% \| (\d+)% \|", rm).groups()
    assert f"{after}% of\nthe time, against {before}%".replace("\n", " ") in paragraph.replace("\n", " ")
