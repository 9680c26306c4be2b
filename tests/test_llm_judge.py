"""LLM-as-judge (engine/evaluation/judge.py): verdict parsing, the bootstrap interval, position swapping against a
fake OpenAI-compatible endpoint (a tiny HTTP server here), and a judged evaluation of a real tiny run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.evaluation.judge import (
    EndpointJudge,
    JudgeSpec,
    bootstrap_ci,
    judge_pairwise,
    judge_rubric,
    parse_score,
    parse_winner,
    run_points,
)

ROOT = Path(__file__).resolve().parent.parent


# ---- a fake OpenAI-compatible judge ------------------------------------------------------------------
class FakeJudge:
    """Serves /v1/models and /v1/chat/completions; `decide(prompt) -> reply`; keeps every prompt it was sent."""

    def __init__(self, decide):
        self.decide, self.prompts = decide, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, body: dict):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "fake-judge", "object": "model", "created": 0,
                                                        "owned_by": "test"}]})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = request["messages"][-1]["content"]
                fake.prompts.append(prompt)
                self._send({"id": "x", "object": "chat.completion", "created": 0, "model": request["model"],
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": fake.decide(prompt)}}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


def always_first(prompt: str) -> str:
    return "Winner: A\nThe first answer is better."


def rows(n: int = 4) -> list[dict]:
    return [{"prompt": f"question {i}", "reference": f"reference {i}", "generated": f"run answer {i}",
             "base_generated": f"base answer {i}"} for i in range(n)]


def answers_in(prompt: str) -> tuple[str, str]:
    return re.search(r"Answer A: (.*)", prompt).group(1), re.search(r"Answer B: (.*)", prompt).group(1)


# ---- pure pieces -----------------------------------------------------------------------------------
def test_verdicts_are_read_from_replies():
    assert parse_score("Score: 4\nclose to the reference") == 4
    assert parse_score("**Score:** 2 because ...") == 2
    assert parse_score("I would give it a 5.") == 5
    assert parse_score("Score: 7") is None and parse_score("no idea") is None
    assert parse_winner("Winner: B\nmore precise") == "B"
    assert parse_winner("winner: tie") == "tie"
    assert parse_winner("Answer A is clearly better") == "A"
    assert parse_winner("Both are fine.") is None
    # the run's points: run shown first, then second
    assert run_points("A", "B") == 1.0 and run_points("B", "A") == 0.0
    assert run_points("A", "A") == 0.5 and run_points("tie", "tie") == 0.5 and run_points(None, "B") == 1.0
    assert run_points(None, None) is None


def test_bootstrap_interval_contains_the_mean_and_narrows_with_agreement():
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    low, high = bootstrap_ci([0.0, 1.0] * 10)
    assert low < 0.5 < high and 0.2 < low and high < 0.8
    assert bootstrap_ci([]) == (None, None)


# ---- position swapping against an endpoint ------------------------------------------------------------
def test_a_judge_that_always_prefers_the_first_answer_gives_fifty_percent():
    with FakeJudge(always_first) as fake:
        judge = EndpointJudge(JudgeSpec(fake.url, "pairwise"))
        assert judge.model == "fake-judge"  # the first model the endpoint lists
        examples = rows(4)
        summary = judge_pairwise(judge, examples)
    assert summary["win_rate"] == 0.5 and (summary["ci_low"], summary["ci_high"]) == (0.5, 0.5)
    assert summary["wins"] == 0 and summary["losses"] == 0 and summary["split_or_tie"] == 4
    assert summary["position_consistency"] == 0.0
    # every example was shown in both orders: the run's answer first, then the base's first
    assert len(fake.prompts) == 8
    for i in range(4):
        assert answers_in(fake.prompts[2 * i]) == (f"run answer {i}", f"base answer {i}")
        assert answers_in(fake.prompts[2 * i + 1]) == (f"base answer {i}", f"run answer {i}")
    assert examples[0]["judge"]["verdicts"][0]["reply"].startswith("Winner: A")  # the reasons are kept


def test_a_consistent_judge_is_not_cancelled_by_the_swap():
    def prefers_the_run(prompt: str) -> str:
        first, _ = answers_in(prompt)
        return "Winner: A\nIt answers." if first.startswith("run") else "Winner: B\nIt answers."

    with FakeJudge(prefers_the_run) as fake:
        summary = judge_pairwise(EndpointJudge(JudgeSpec(fake.url, "pairwise")), rows(3))
    assert summary["win_rate"] == 1.0 and summary["wins"] == 3 and summary["position_consistency"] == 1.0


def test_rubric_scores_and_reasons():
    replies = iter(["Score: 4\nclose", "Score: 2\nwrong name", "I cannot tell"])
    with FakeJudge(lambda prompt: next(replies)) as fake:
        examples = rows(3)
        summary = judge_rubric(EndpointJudge(JudgeSpec(fake.url, "rubric")), examples)
    assert summary["score"] == 3.0 and summary["judged"] == 2 and summary["unparsed"] == 1
    assert "Answer to grade: run answer 0" in fake.prompts[0] and "Reference answer: reference 0" in fake.prompts[0]
    assert [e["judge"]["score"] for e in examples] == [4, 2, None]
    assert examples[1]["judge"]["reply"] == "Score: 2\nwrong name"


def test_an_unreachable_endpoint_is_refused_with_its_address():
    from engine.core.errors import UserError

    with pytest.raises(UserError, match="127.0.0.1:9"):
        EndpointJudge(JudgeSpec("http://127.0.0.1:9/v1", "rubric"))


# ---- a judged evaluation of a real run (CLI, the tiny model) -------------------------------------------
def engine_cli(*args, home, timeout=600):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("judge-home")
    trained = engine_cli("train", "presets/quickstart.yaml", "--set", f"model={tiny_model}", "--set", "name=judged",
                         "--set", "train.max_steps=2", "--set", "train.eval_steps=0", "--set", "train.save_steps=0",
                         "--set", "train.max_seq_len=96", "--set", "data.validation_split=0.2", home=home)
    assert trained.returncode == 0, trained.stderr[-3000:]
    return home, Path(trained.stdout.strip().splitlines()[-1])


def test_judged_evaluation_of_a_run_pairwise(tiny_run):
    home, run_dir = tiny_run
    refused = engine_cli("evaluate", str(run_dir), "--base", "--judge", "http://127.0.0.1:9/v1", "--judge-mode",
                         "pairwise", home=home)
    assert refused.returncode == 2 and "drop --base" in refused.stderr
    with FakeJudge(always_first) as fake:
        result = engine_cli("evaluate", str(run_dir), "--samples", "2", "--max-new-tokens", "4", "--judge", fake.url,
                            "--judge-mode", "pairwise", "--json", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    judged = out["judge"]
    assert judged["mode"] == "pairwise" and judged["win_rate"] == 0.5 and judged["examples"] == 2
    assert len(fake.prompts) == 4
    for sample in out["samples"]:
        assert "base_generated" in sample and len(sample["judge"]["verdicts"]) == 2
        assert [v["winner"] for v in sample["judge"]["verdicts"]] == ["A", "A"]
    saved = json.loads((run_dir / "eval" / out["file"]).read_text())
    assert saved["judge"]["win_rate"] == 0.5 and saved["samples"][0]["judge"]["verdicts"][0]["reply"]


def test_a_local_model_judges_a_run(tiny_run, tiny_model):
    """The judge loaded in the evaluation process (a model folder), grading with the rubric."""
    home, run_dir = tiny_run
    result = engine_cli("evaluate", str(run_dir), "--samples", "2", "--max-new-tokens", "4", "--judge", tiny_model,
                        "--judge-tokens", "6", "--json", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    judged = out["judge"]
    assert judged["mode"] == "rubric" and judged["judge"] == tiny_model and judged["examples"] == 2
    assert judged["judged"] + judged["unparsed"] == 2
    for sample in out["samples"]:  # an untrained 2-layer judge writes noise; its reply is kept either way
        assert isinstance(sample["judge"]["reply"], str)
        assert sample["judge"]["score"] in (None, 1, 2, 3, 4, 5)
