"""A run that diverges says so while it trains (issue 27): the watch on hand-written loss traces, then a real run
of the tiny model at a learning rate far too high, in its status, its log and on the Train tab (en and zh)."""
from __future__ import annotations

import math

import pytest

from engine.core import runs
from engine.core.config import RunConfig
from engine.training.divergence import DivergenceWatch


def watched(losses, grad_norms=None, learning_rate=1e-2):
    watch, said = DivergenceWatch(), []
    for step, loss in enumerate(losses, start=1):
        grad = grad_norms[step - 1] if grad_norms else None
        warning = watch.see(step, loss, grad, learning_rate)
        if warning is not None:
            said.append((step, warning))
    return said


def test_the_prefix_tuning_trace_of_issue_27_is_called_diverging_once_with_its_gradient_spike():
    # issue 27's prefix tuning run: 1.97 -> 3.21 (step 9) -> 11.28 (step 13, gradient norm 104), then near 8
    losses = [1.97, 1.95, 1.99, 2.1, 2.3, 2.6, 2.9, 3.0, 3.21, 4.5, 6.0, 8.9, 11.28, 8.1, 7.9, 8.0]
    grads = [2.1, 1.9, 2.0, 2.2, 2.4, 3.0, 3.5, 4.0, 5.0, 9.0, 20.0, 60.0, 104.0, 30.0, 20.0, 18.0]
    said = watched(losses, grads, learning_rate=3e-2)
    start = (1.97 + 1.95 + 1.99) / 3  # 1.97: 1.5 x start = 2.955; steps 8 (3.0) and 9 (3.21) are above it
    assert [step for step, _ in said] == [9]  # the second row in a row above 1.5 x the start; said once
    step, warning = said[0]
    assert warning.code == "run.diverging"
    assert warning.params["start"] == f"{start:.3f}" and warning.params["loss"] == "3.210"
    assert warning.params["lower"] == "0.0075"  # a quarter of the learning rate


def test_a_gradient_explosion_is_named_when_the_loss_runs_away_with_it():
    losses = [2.0, 2.0, 2.0, 2.1, 3.5, 9.0]
    grads = [1.0, 1.2, 0.8, 1.1, 1.0, 40.0]  # 40 > 20 x the median (1.05) of the earlier norms
    (step, warning), = watched(losses, grads)
    assert step == 6 and warning.code == "run.diverging_spike" and warning.params["grad_norm"] == "40"


@pytest.mark.parametrize("losses", [
    [2.0, 1.9, 1.8, 3.5, 1.7, 1.6, 3.2, 1.5],  # single noisy batches above 1.5 x the start, never two in a row
    [2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.9],  # a run that learns
    [0.0, 0.0, 0.0, 0.5, 0.6],  # a loss that starts at 0 has no ratio to rise by
])
def test_noise_and_learning_are_not_divergence(losses):
    assert watched(losses) == []


def test_a_loss_that_is_not_a_number_is_divergence_at_once():
    (step, warning), = watched([2.0, math.nan, 1.0])
    assert step == 2 and warning.code == "run.loss_not_finite" and warning.params["loss"] == "nan"


def test_every_divergence_message_reads_in_chinese_with_its_numbers():
    from ui import messages

    for code, extra in (("run.diverging", {}), ("run.diverging_spike", {"grad_norm": "40"}),
                        ("run.loss_not_finite", {})):
        warning = DivergenceWatch()._warn(code, start="1.970", loss="3.210", step=9, learning_rate="0.03",
                                          lower="0.0075", **extra)
        zh = messages.say(warning, "zh")
        assert "发散" in zh and "0.0075" in zh and "9" in zh, zh


def test_a_real_run_at_a_learning_rate_far_too_high_says_it_diverges_while_it_trains(tiny_model, tmp_path,
                                                                                     monkeypatch):
    from engine.training.launcher import create_run
    from engine.training.recipe import run
    from ui import train_tab

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))

    def train(learning_rate: float, name: str):
        cfg = RunConfig.from_dict({
            "model": tiny_model, "name": name, "data": {"train": "presets/data/identity.jsonl", "validation_split": 0},
            "method": {"name": "full"},
            "train": {"max_steps": 12, "batch_size": 2, "learning_rate": learning_rate, "warmup_steps": 0,
                      "max_seq_len": 64, "save_steps": 0, "eval_steps": 0, "max_grad_norm": 0.0}})
        return run(create_run(cfg) / "config.yaml")

    wild = train(3.0, "wild")  # AdamW at 3.0 on every weight: the tiny model's loss runs away within a few steps
    status = runs.read_status(wild)
    assert status["state"] == "done" and status["diverging"]["code"].startswith("run.")
    assert "diverging" in status["diverging"]["message"] and "train.learning_rate 0.75" in status["diverging"]["message"]
    losses = [r["loss"] for r in runs.read_metrics(wild) if "loss" in r]
    assert status["diverging"]["step"] < 12 or not math.isfinite(losses[-1])  # said before the run ended
    assert "WARNING: The run is diverging" in (wild / "train.log").read_text()
    view = train_tab.tick(wild.name, {}, "en")
    assert "needs your attention" in view.failure and "The run is diverging" in view.failure
    assert "需要你注意" in train_tab.tick(wild.name, {}, "zh").failure

    calm = train(1e-3, "calm")
    assert "diverging" not in runs.read_status(calm) and train_tab.tick(calm.name, {}, "en").failure == ""
