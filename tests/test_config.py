"""The run schema: defaults, overrides, and every problem reported at once."""
from pathlib import Path

import pytest

from engine.core.config import ConfigError, RunConfig, apply_overrides

PRESETS = Path(__file__).resolve().parent.parent / "presets"


def test_quickstart_preset_loads_with_method_defaults_filled():
    cfg = RunConfig.load(PRESETS / "quickstart.yaml")
    assert cfg.method.name == "lora"
    assert cfg.method.params["r"] == 16
    assert cfg.train.max_steps == 60
    assert RunConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()  # round trip


def test_overrides_parse_yaml_scalars_and_reach_nested_keys():
    raw = {"method": "lora"}
    apply_overrides(raw, ["train.learning_rate=1e-4", "method.r=4", "train.gradient_checkpointing=true"])
    cfg = RunConfig.from_dict(raw)
    assert cfg.train.learning_rate == pytest.approx(1e-4)
    assert cfg.method.params["r"] == 4
    assert cfg.train.gradient_checkpointing is True


def test_every_problem_is_reported_together():
    raw = {"method": {"name": "lora", "r": 0, "target_modules": "q_proj,nonsense"},
           "train": {"learning_rate": -1, "batch_size": 0, "optimizer": "adam9"},
           "data": {"mask": "everything"}, "colour": "blue"}
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(raw)
    text = str(info.value)
    for expected in ("method.r: 0 is below the minimum 1", "train.learning_rate", "train.batch_size",
                     "train.optimizer", "data.mask", "colour: unknown key"):
        assert expected in text  # module names are checked against the model itself: tests/test_presets_short.py
    assert len(info.value.problems) >= 6


def test_wrong_types_are_named():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"train": {"batch_size": "four"}, "method": {"name": "lora", "alpha": "x"}})
    assert "train.batch_size: expected a whole number, got 'four'" in str(info.value)
    assert "method.alpha: expected a number" in str(info.value)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown method 'lorax'.*lora"):
        RunConfig.from_dict({"method": "lorax"})
