"""Result judging on the tiny model: evaluation (background + CLI), comparison of real runs, beams in chat."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core import runs
from engine.evaluation import compare, evaluate, records

ROOT = Path(__file__).resolve().parent.parent


def engine_cli(*args, home, timeout=300):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def judged(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    result = engine_cli("train", "presets/quickstart.yaml", "--set", f"model={tiny_model}", "--set", "name=judge",
                        "--set", "train.max_steps=4", "--set", "train.eval_steps=2", "--set", "train.save_steps=0",
                        "--set", "train.max_seq_len=96", "--set", "data.validation_split=0.2", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1]), home


def test_validation_split_is_reproduced_exactly(judged, tiny_model, monkeypatch):
    from engine.core.config import RunConfig
    from engine.core.models import load_tokenizer
    from engine.data.dataset import prepare_dataset

    run_dir, home = judged
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    cfg = RunConfig.load(run_dir / "config.yaml")
    tokenizer = load_tokenizer(cfg.model, template=cfg.data.template)
    pairs, info = evaluate.held_out(cfg, tokenizer)
    validation = prepare_dataset(cfg.data, tokenizer, cfg.train.max_seq_len, cfg.train.seed).validation
    assert info["kind"] == "validation" and len(pairs) == len(validation) == 8
    assert [e.input_ids for _, e in pairs] == [e.input_ids for e in validation]
    prompt, reference = evaluate.prompt_and_reference(pairs[0][0])
    assert prompt[-1]["role"] == "user" and "Quillby" in reference


def test_background_evaluation_and_cli(judged, monkeypatch):
    run_dir, home = judged
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    records.spawn(run_dir, samples=2, max_new_tokens=8)  # as the Evaluate tab starts it
    deadline = time.time() + 180
    while records.read_eval_status(run_dir).get("state") in runs.ACTIVE and time.time() < deadline:
        time.sleep(0.5)
    status = records.read_eval_status(run_dir)
    assert status["state"] == "done", status
    assert status["done"] == status["total"] == 8 + 2
    saved = records.list_results(run_dir)
    assert len(saved) == 1 and saved[0]["file"] == status["result"]
    result = saved[0]
    # the same number the trainer logged for the same split (token-weighted vs per-batch mean: close)
    trainer_eval = runs.read_status(run_dir)["final_eval_loss"]
    assert result["eval_loss"] == pytest.approx(trainer_eval, rel=0.02)
    assert result["perplexity"] == pytest.approx(math.exp(result["eval_loss"]))
    assert len(result["samples"]) == 2 and all({"prompt", "reference", "generated", "rouge_l", "bleu"}
                                                <= set(s) for s in result["samples"])
    assert 0 <= result["rouge_l"] <= 1 and 0 <= result["bleu"] <= 1

    # the CLI: the base model on another file, as JSON
    out = engine_cli("evaluate", str(run_dir), "--base", "--data", "presets/data/chat_multiturn.jsonl",
                     "--samples", "1", "--max-new-tokens", "4", "--json", home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    base = json.loads(out.stdout.strip().splitlines()[-1])
    assert base["model"] == "base" and base["data"]["kind"] == "file" and base["data"]["examples"] == 6
    assert len(records.list_results(run_dir)) == 2
    assert records.latest_result(run_dir, "run")["file"] == result["file"]

    # comparison of real run folders: curves by tokens, final numbers with the evaluation's scores
    view = compare.compare([run_dir, run_dir], "tokens")
    assert view["points"] and all(isinstance(x, int) for x, _, _ in view["points"])
    summary = view["summaries"][0]
    assert summary["final_eval_loss"] == trainer_eval and summary["rouge_l"] == result["rouge_l"]
    assert summary["wall_time_s"] > 0 and summary["peak_memory_bytes"] > 0
    assert view["settings"]["rows"] == []  # a run compared with itself: nothing differs


def test_chat_worker_beams_come_whole_and_bad_settings_are_explained(tiny_model, workspace):
    from engine.inference.chat_client import ChatWorker, WorkerError

    worker = ChatWorker()
    try:
        worker.load("tiny", model=tiny_model)
        messages = [{"role": "user", "content": "Who are you?"}]
        events = list(worker.stream(messages, {"max_new_tokens": 4, "num_beams": 3, "num_return_sequences": 2}))
        assert [e["event"] for e in events] == ["sequences"] and len(events[0]["texts"]) == 2
        assert "cannot stream" in events[0]["note"]
        sampled = [list(worker.generate(messages, {"max_new_tokens": 5, "min_new_tokens": 5, "do_sample": True,
                                                   "temperature": 1.0, "seed": 3, "stop_on_eos": False}))
                   for _ in range(2)]
        assert sampled[0] == sampled[1] and len(sampled[0]) >= 1  # same seed, same reply; streamed in pieces
        with pytest.raises(WorkerError, match="beams with sampling"):
            list(worker.generate(messages, {"num_beams": 2, "do_sample": True, "top_k": 5}))
        assert list(worker.generate(messages, {"max_new_tokens": 2}))  # still serving after the refusal
    finally:
        worker.unload()
