"""The method picker's measured line (ui/method_evidence.py over engine/methods/measured.py): the recorded
numbers, and a plain warning for a preset that did not beat the base model or diverged."""
from __future__ import annotations

import json

import pytest

from engine.methods import METHODS
from engine.methods import measured as measured_module
from ui import method_evidence


def row(key, seed, loss, base, **extra):
    return {"key": key, "seed": seed, "final_eval_loss": loss, "base_eval_loss": base, "s_per_step": 2.0,
            "peak_memory_mb": 2048.0, "diverging": None, "preset": measured_module.preset_fingerprint(key), **extra}


@pytest.fixture()
def record(tmp_path, monkeypatch):
    path = tmp_path / "methods_real.json"
    monkeypatch.setattr(measured_module, "RECORD", path)

    def write(rows):
        path.write_text(json.dumps({"data": "alpaca.json", "steps": 60, "cpu": "Some CPU", "cores": 2, "rows": rows}))
    return write


def test_change_against_base_and_full_is_the_mean_over_seeds(record):
    record([row("full", 0, 1.5, 2.0), row("full", 1, 1.8, 2.0), row("lora", 0, 1.6, 2.0), row("lora", 1, 1.8, 2.0)])
    about, methods = measured_module.load()
    # lora: (1.6/2 - 1 + 1.8/2 - 1) / 2 = -15%; against full: (1.6/1.5 - 1 + 1.8/1.8 - 1) / 2 = +3.33%
    assert methods["lora"].versus_base == pytest.approx(-0.15)
    assert methods["lora"].versus_full == pytest.approx((1.6 / 1.5 - 1) / 2)
    said = method_evidence.line("lora", "en")
    assert "-15.0% against the base model" in said and "+3.3%" in said and "alpaca.json, 60 steps, seeds 0, 1" in said
    assert "Some CPU, 2 cores" in said and "2.00 s/step" in said and "peak memory (RSS) 2.0 GiB" in said
    assert "far longer" not in said and "against the base model" in said
    assert "-15.0%" in method_evidence.line("lora", "zh") and "实测" in method_evidence.line("lora", "zh")


def test_a_preset_above_the_base_or_diverging_is_said_plainly(record):
    record([row("prompt_tuning", 0, 1.9, 2.0), row("prompt_tuning", 1, 2.09, 2.0),
            row("prefix_tuning", 0, 7.9, 1.7, diverging=10), row("prefix_tuning", 1, 1.6, 1.7)])
    said = method_evidence.line("prompt_tuning", "en")  # one seed of two ended above the base, the mean below
    assert "On seed 1 it ended above" in said and "far longer" in said
    assert "长得多" in method_evidence.line("prompt_tuning", "zh")
    said = method_evidence.line("prefix_tuning", "en")
    assert "diverged (seed 0 at step 10)" in said and "lower the learning rate" in said
    assert method_evidence.line("lora", "en") == ""  # no row: nothing claimed


def test_quantised_methods_are_compared_with_their_quantised_base(record):
    record([row("qlora", 0, 1.7, 1.9), row("lora8bit", 0, 1.7, 1.8), row("lora", 0, 1.6, None)])
    assert "against its 4-bit base model" in method_evidence.line("qlora", "en")
    assert "它的 8-bit 基础模型" in method_evidence.line("lora8bit", "zh")
    assert method_evidence.line("lora", "en") == ""  # a row without its base loss is not trusted


def test_a_row_measured_with_an_earlier_preset_is_not_shown(record):
    record([row("lora", 0, 1.6, 2.0, preset="measured-before"), row("ia3", 0, 1.7, 2.0),
            {k: v for k, v in row("adapter", 0, 1.7, 2.0).items() if k != "preset"}])
    assert method_evidence.line("lora", "en") == "" and method_evidence.line("adapter", "en") == ""
    assert "-15.0%" in method_evidence.line("ia3", "en")


def test_the_fingerprint_follows_what_the_preset_trains_with(tmp_path):
    from pathlib import Path

    text = (Path(measured_module.PRESETS) / "lora.yaml").read_text()
    (tmp_path / "lora.yaml").write_text(text)
    before = measured_module.preset_fingerprint("lora", tmp_path)
    assert before == measured_module.preset_fingerprint("lora")
    (tmp_path / "lora.yaml").write_text(text + "\n  eval_steps: 7\n")  # the bench sets its own evaluation
    assert measured_module.preset_fingerprint("lora", tmp_path) == before
    (tmp_path / "lora.yaml").write_text(text + "\n  learning_rate: 3.0e-4\n")
    assert measured_module.preset_fingerprint("lora", tmp_path) != before
    (tmp_path / "lora.yaml").write_text(text.replace("  r: 16", "  r: 8"))
    assert measured_module.preset_fingerprint("lora", tmp_path) != before


def test_the_shipped_record_covers_every_method():
    about, methods = measured_module.load()
    assert about["data"] and about["steps"] and about["cpu"]
    assert set(methods) == set(METHODS), set(METHODS) ^ set(methods)
    for key, m in methods.items():
        assert not m.error and m.seeds, (key, m)
        said = method_evidence.line(key, "en")
        assert f"held-out loss {100 * m.versus_base:+.1f}% against" in said
        assert ("far longer" in said or "diverged" in said) == (not m.beats_base), said
