"""Continual learning on the tiny model: task A (identity), then task B (fictional planets) starting from
A, plain / with EWC / with replay. Forgetting = loss on A's data after B minus after A; EWC and replay
must forget less. Real training runs (in-process, one after another), no mocks."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.core import runs

ROOT = Path(__file__).resolve().parent.parent
TASK_A, TASK_B = "presets/data/identity.jsonl", "presets/data/planets.jsonl"
COMMON = ["train.max_seq_len=128", "data.validation_split=0", "train.learning_rate=1e-2", "train.warmup_steps=0",
          "train.eval_steps=0", "train.save_steps=0", "train.max_steps=30", "method.dropout=0.0",
          "train.scheduler=constant", "method.r=8", "method.alpha=16", "train.ewc_samples=16"]


def train(tiny_model, *extra) -> Path:
    from engine.core.config import RunConfig
    from engine.training.launcher import create_run
    from engine.training.recipe import run

    cfg = RunConfig.load(ROOT / "presets" / "quickstart.yaml", [f"model={tiny_model}", *COMMON, *extra])
    run_dir = create_run(cfg)
    run(run_dir / "config.yaml")
    assert runs.read_status(run_dir)["state"] == "done"
    return run_dir


@pytest.fixture(scope="module")
def sequence(tiny_model, tmp_path_factory):
    import os

    old = os.environ.get("TUNELOOM_HOME")
    os.environ["TUNELOOM_HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        a = train(tiny_model, "name=A", f"data.train={TASK_A}", "train.ewc_lambda=1")  # stores its Fisher
        found = {"A": a}
        found["B"] = train(tiny_model, "name=B", f"data.train={TASK_B}", f"train.start_from={a}")
        found["B+ewc"] = train(tiny_model, "name=B-ewc", f"data.train={TASK_B}", f"train.start_from={a}",
                               "train.ewc_lambda=1e5")
        found["B+replay"] = train(tiny_model, "name=B-replay", f"data.train={TASK_B}", f"train.start_from={a}",
                                  f"data.replay={a}", "data.replay_fraction=0.5")
        yield found
    finally:
        if old is None:
            os.environ.pop("TUNELOOM_HOME", None)
        else:
            os.environ["TUNELOOM_HOME"] = old


def test_ewc_and_replay_forget_less_of_task_a(sequence):
    from engine.training.continual import run_loss_on

    loss_a = {k: run_loss_on(d, TASK_A, 128) for k, d in sequence.items()}
    loss_b = {k: run_loss_on(d, TASK_B, 128) for k, d in sequence.items()}
    forgetting = {k: loss_a[k] - loss_a["A"] for k in ("B", "B+ewc", "B+replay")}
    print("\nloss on A:", loss_a, "\nloss on B:", loss_b, "\nforgetting of A:", forgetting)
    assert forgetting["B"] > 0.2  # plain sequential training forgets A
    assert forgetting["B+ewc"] < 0.5 * forgetting["B"]
    assert forgetting["B+replay"] < 0.5 * forgetting["B"]
    for key in ("B", "B+ewc", "B+replay"):
        assert loss_b[key] < loss_b["A"]  # and every variant still learned B


def test_start_from_continues_the_same_adapter_and_records_how(sequence):
    from engine.core.runs import read_json
    from engine.training.continual import START_FILE

    plan = read_json(sequence["B"] / START_FILE)
    assert plan["mode"] == "continue" and plan["adapter"].endswith("adapter")
    assert "continuing the lora adapter" in (sequence["B"] / "train.log").read_text()


def test_fisher_is_stored_and_the_penalty_is_logged_beside_the_task_loss(sequence):
    from engine.training.continual import FISHER_FILE, load_fisher

    fisher, theta = load_fisher(sequence["A"] / FISHER_FILE)
    assert fisher and set(fisher) == set(theta) and all("lora_" in n for n in fisher)
    assert all(float(f.min()) >= 0 for f in fisher.values()) and any(float(f.max()) > 0 for f in fisher.values())
    rows = [r for r in runs.read_metrics(sequence["B+ewc"]) if "loss" in r]
    assert all({"task_loss", "ewc_penalty"} <= set(r) for r in rows)
    # the first step starts exactly at theta* (A's stored weights): B continued A's adapter
    assert rows[0]["ewc_penalty"] == pytest.approx(0.0, abs=1e-6)
    assert max(r["ewc_penalty"] for r in rows) > 0
    for r in rows:
        assert r["loss"] == pytest.approx(r["task_loss"] + r["ewc_penalty"], rel=1e-4, abs=1e-5)
    assert (sequence["B+ewc"] / FISHER_FILE).is_file()  # consolidated for a later task C
    assert "ewc_penalty" not in runs.read_metrics(sequence["B"])[-1]


def test_replay_mixes_the_chosen_fraction_of_the_earlier_training_data(sequence):
    data = runs.read_status(sequence["B+replay"])["data"]
    assert data["replayed_examples"] == 20 and data["train_examples"] == 60  # 40 planets + half of 40 identity


def test_ewc_penalty_formula():
    import torch

    from engine.training.continual import EWC

    model = torch.nn.Linear(3, 2)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    ewc = EWC(4.0, fisher, theta)
    assert float(ewc.penalty(model)) == 0.0
    with torch.no_grad():
        model.weight += 0.5
    expected = 0.5 * 4.0 * float((fisher["weight"] * 0.25).sum())
    assert float(ewc.penalty(model)) == pytest.approx(expected, rel=1e-5)


def test_config_problems_for_continual_keys():
    from engine.core.config import ConfigError, RunConfig

    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"data": {"replay_fraction": 1.5}, "train": {"ewc_lambda": -1}})
    text = str(err.value)
    assert "data.replay_fraction" in text and "train.ewc_lambda" in text
    with pytest.raises(ConfigError, match="data.replay:"):
        RunConfig.from_dict({"data": {"replay_fraction": 0.3}})
