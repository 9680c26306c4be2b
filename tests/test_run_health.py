"""A run says when it goes wrong (issue 27): one that diverges says so while it trains (the watch on hand-written
loss traces, then a real run of the tiny model at a learning rate far too high, in its status, its log and on the
Train tab, en and zh); the base model's eval loss is measured once before training, drawn across the loss plot, and
a run whose eval loss ends above it is told so."""
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
            "model": tiny_model, "name": name,
            "data": {"train": "presets/data/identity.jsonl", "validation_split": 0.2},
            "method": {"name": "full"},
            "train": {"max_steps": 12, "batch_size": 2, "learning_rate": learning_rate, "warmup_steps": 0,
                      "max_seq_len": 64, "save_steps": 0, "eval_steps": 0, "max_grad_norm": 0.0}})
        return run(create_run(cfg) / "config.yaml")

    wild = train(3.0, "wild")  # AdamW at 3.0 on every weight: the tiny model's loss runs away within a few steps
    status = runs.read_status(wild)
    assert status["state"] == "done" and status["diverging"]["code"].startswith("run.")
    said = status["diverging"]["message"]
    assert "diverging" in said and "train.learning_rate 0.75" in said
    losses = [r["loss"] for r in runs.read_metrics(wild) if "loss" in r]
    assert status["diverging"]["step"] < 12 or not math.isfinite(losses[-1])  # said before the run ended
    assert "WARNING: The run is diverging" in (wild / "train.log").read_text()
    view = train_tab.tick(wild.name, {}, "en")
    assert "needs your attention" in view.failure and "The run is diverging" in view.failure
    assert "需要你注意" in train_tab.tick(wild.name, {}, "zh").failure
    # its eval loss ended far above the base model's on the same held-out examples: said too
    assert status["final_eval_loss"] > status["base_eval_loss"] > 0
    assert status["worse_than_base"]["code"] == "run.worse_than_base" and "above the base model" in view.failure

    calm = train(1e-3, "calm")
    status = runs.read_status(calm)
    assert "diverging" not in status and status["worse_than_base"] is None
    assert status["final_eval_loss"] < status["base_eval_loss"] and train_tab.tick(calm.name, {}, "en").failure == ""
    assert "measured before, same model and held-out examples" in (calm / "train.log").read_text()  # once per data


@pytest.mark.parametrize("method", ["prefix_tuning", "adalora"])
def test_the_base_eval_loss_is_the_base_models_mean_loss_on_the_held_out_examples(method, tiny_model, tmp_path,
                                                                                  monkeypatch):
    """Prefix tuning starts with random virtual tokens, so the model as it starts is not the base: the reference
    is measured with the adapter disabled. Expected value from the definition: the tiny model loaded with plain
    transformers, each held-out example's mean loss over its trained tokens (eval batches of one), averaged.
    AdaLoRA: peft adds its orthogonality regulariser to every loss its forward returns, eval too; the base's and
    the run's eval losses are the token loss alone, like every other method's (its training keeps the term)."""
    import torch
    from transformers import AutoModelForCausalLM

    from engine.training import recipe
    from ui import follow

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    cfg = RunConfig.from_dict({
        "model": tiny_model, "name": f"{method}-base",
        "data": {"train": "presets/data/identity.jsonl", "validation_split": 0.2},
        "method": {"name": method},
        "train": {"max_steps": 2, "batch_size": 1, "max_seq_len": 64, "save_steps": 0, "eval_steps": 0}})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    callback = recipe.build_callback(run_dir, recipe.rss_bytes(), True)
    setup = recipe.set_up(cfg, run_dir, callback, True)
    recipe.train(setup, callback, resume=False)
    measured = runs.read_status(run_dir)["base_eval_loss"]

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    losses = []
    with torch.no_grad():
        for example in setup.data.validation:
            ids, labels = torch.tensor([example.input_ids]), torch.tensor([example.labels])
            losses.append(base(input_ids=ids, labels=labels).loss.item())
    assert len(losses) == 8 and measured == pytest.approx(sum(losses) / len(losses), rel=1e-4)
    final_eval = runs.read_metrics(run_dir)[-1]["eval_loss"]
    if method == "prefix_tuning":  # the prefix-tuned model after 2 steps: another number
        assert final_eval != pytest.approx(measured, rel=1e-3)
    tuned, tuned_losses = setup.trainer.model.eval(), []
    with torch.no_grad():  # the trained model's token loss, from its logits (no labels: no loss of peft's own)
        for example in setup.data.validation:
            labels = torch.tensor([example.labels])
            logits = tuned(input_ids=torch.tensor([example.input_ids])).logits[:, -labels.shape[1]:]
            tuned_losses.append(torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:]).item())
    assert final_eval == pytest.approx(sum(tuned_losses) / len(tuned_losses), rel=1e-4)

    frame = follow.loss_frame(runs.read_metrics(run_dir), "zh", measured)
    line = frame[frame["series"] == "基础模型（验证）"]
    assert line["loss"].tolist() == [measured, measured] and line["step"].tolist() == [1, 2]


def test_the_base_eval_cache_tells_a_quantised_base_from_the_plain_one(tiny_model):
    """QLoRA's 4-bit base and 8-bit LoRA's int8 base are other models with other losses: the cached base eval of
    one must not stand for another (it did: a QLoRA run's 1.919 became the next LoRA-family run's base)."""
    from types import SimpleNamespace

    from engine.training.base_reference import cache_key

    held_out = [SimpleNamespace(input_ids=[1, 2, 3], labels=[-100, 2, 3])]

    def key(method: str) -> str:
        return cache_key(RunConfig.from_dict({"model": tiny_model, "method": {"name": method}}), "fp32", held_out)

    assert len({key("qlora"), key("lora8bit"), key("lora")}) == 3
    assert key("lora") == key("adalora") == key("full")  # one base in its own dtype, measured once


def test_a_run_still_catching_up_from_random_virtual_tokens_is_told_to_train_longer():
    """P-tuning v2's preset on alpaca_en_demo (bench/methods_real.py, seed 0): training loss 5.36 at step 1 against
    the base's eval loss 1.728, falling to ~2.0, eval 2.130 at step 60: it needs more steps, not a lower learning
    rate. Prefix tuning at 5e-3 began at the base's level and rose to ~8: that is the learning rate."""
    from engine.training.base_reference import verdict

    catching_up = [5.36, 4.4, 4.44, 3.83, 3.04, 3.41, 2.42, 1.72, 2.34, 2.2, 2.24, 2.1, 1.62, 2.22, 1.78, 1.94, 2.07]
    said = verdict(2.130, 1.728, 0.01, catching_up)
    assert said["code"] == "run.behind_base" and "5.36" in said["message"] and "more steps" in said["message"]
    # started as far above, but its loss no longer falls (the last 5 steps no lower than the 5 before): not a
    # question of more steps
    levelled = catching_up[:12] + [2.3, 2.25, 2.4, 2.2, 2.35]
    assert verdict(2.130, 1.728, 0.01, levelled)["code"] == "run.worse_than_base"
    assert verdict(2.130, 1.728, 0.01, None)["code"] == "run.worse_than_base"  # no comparable training loss
    ran_away = [1.97, 1.78, 1.6, 1.3, 1.86, 2.04, 3.21, 11.28, 8.4, 7.9, 8.1, 7.7]
    assert verdict(7.889, 1.728, 0.005, ran_away)["code"] == "run.worse_than_base"
    assert verdict(1.6, 1.728, 0.005, ran_away) is None  # below the base: nothing to say
