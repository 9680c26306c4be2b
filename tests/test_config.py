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


# ---- one declaration per setting, one set of defaults ---------------------------------------------
def test_numbers_are_coerced_one_way_everywhere():
    from engine.core.config import schema_param

    steps = schema_param("train", "max_steps")
    assert steps.coerce("3.0") == 3 and steps.coerce(3.0) == 3 and steps.coerce("12") == 12
    for bad in ("3.5", 3.5, True, "three"):
        with pytest.raises(ValueError):
            steps.coerce(bad)
    assert schema_param("train", "learning_rate").coerce("1e-4") == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match="train.max_steps: expected a whole number, got '3.5'"):
        RunConfig.from_dict({"train": {"max_steps": "3.5"}})
    assert RunConfig.from_dict({"train": {"max_steps": "3.0"}}).train.max_steps == 3


def test_a_config_with_only_max_steps_is_the_quickstart():
    """The API, the CLI and the page start from the same values: the schema's defaults."""
    from_api = RunConfig.from_dict({"name": "quickstart", "train": {"max_steps": 60}}).to_dict()
    assert from_api == RunConfig.load(PRESETS / "quickstart.yaml").to_dict()
    from ui import train_tab  # the page starts from the quickstart preset

    assert train_tab.preset_defaults().to_dict() == from_api


def test_every_method_starts_from_its_own_learning_rate():
    from engine.methods import METHODS

    for key, method in METHODS.items():
        cfg = RunConfig.from_dict({"method": key})
        assert cfg.train.learning_rate == method.train_defaults.get("learning_rate", 1e-3), key
    assert RunConfig.from_dict({"method": "full"}).train.learning_rate == 5e-5
    assert RunConfig.from_dict({"method": "full", "train": {"learning_rate": 1e-4}}).train.learning_rate == 1e-4


# ---- switching method on the command line (the page follows the same rule) --------------------------
def test_switching_method_drops_the_old_methods_parameters_and_says_so():
    cfg = RunConfig.load(PRESETS / "quickstart.yaml", ["method.name=ia3"])
    assert cfg.method.name == "ia3" and set(cfg.method.params) == {"target_modules", "feedforward_modules"}
    assert cfg.train.learning_rate == 1e-2  # IA3's own rate: the preset kept LoRA's starting value
    assert len(cfg.notes) == 1 and cfg.notes[0].startswith("method lora -> ia3")
    full = RunConfig.load(PRESETS / "lora.yaml", ["method.name=full"])
    assert full.method.params == {} and full.train.learning_rate == 5e-5
    assert "dropped lora's parameters" in full.notes[0]


def test_settings_the_user_gives_survive_a_switch():
    cfg = RunConfig.load(PRESETS / "quickstart.yaml", ["method.name=full", "train.learning_rate=2e-5"])
    assert cfg.train.learning_rate == 2e-5
    raw = {"method": {"name": "lora", "r": 4}, "train": {"learning_rate": 3e-4, "batch_size": 2}}
    switch = apply_overrides(raw, ["method.name=freeze"])
    cfg = RunConfig.from_dict(raw)
    assert (cfg.train.learning_rate, cfg.train.batch_size) == (3e-4, 2)  # changed by the user: kept
    assert "train.learning_rate" not in switch[0]


def test_a_parameter_the_new_method_lacks_is_still_an_error():
    with pytest.raises(ConfigError, match="method.r: unknown parameter"):
        RunConfig.load(PRESETS / "quickstart.yaml", ["method.name=ia3", "method.r=4"])


@pytest.mark.parametrize("command", ["train", "estimate"])
def test_cli_switches_method_on_a_preset(command, tmp_path):
    import os
    import subprocess
    import sys

    root = PRESETS.parent
    args = [sys.executable, "-m", "engine", command, str(PRESETS / "quickstart.yaml"), "--set", "method.name=ia3",
            "--set", "model=/no/such/model-folder"]
    if command == "estimate":
        args[-1] = "model=smollm2-135m-instruct"
        args += ["--device", "cpu", "--json"]
    env = {**os.environ, "TUNELOOM_HOME": str(tmp_path)}
    result = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert "unknown parameter" not in result.stderr, result.stderr
    if command == "estimate":
        assert result.returncode == 0 and "note: method lora -> ia3" in result.stderr
    else:  # the switch is accepted; the missing model is the one problem left, reported before any run folder
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "model: /no/such/model-folder is not a folder" in result.stderr
        assert not (tmp_path / "runs").is_dir() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("model, expected", [
    ("/no/such/folder", "/no/such/folder is not a folder (not found)"),
    ("/etc", "/etc has no config.json"),
    ("some-owner/some-model", "some-owner/some-model is not a local folder, the Hugging Face Hub is not reachable"),
])
def test_a_missing_model_is_reported_with_the_other_problems_before_anything_runs(model, expected, tmp_path,
                                                                                  monkeypatch):
    from engine.training.preflight import load_checked

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what a machine without network sees
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as info:
        load_checked(PRESETS / "quickstart.yaml", [f"model={model}", "train.batch_size=0"])
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert any("batch_size" in p for p in info.value.problems)
    if "/" in model and not model.startswith("/"):
        assert any("offline mode" in p and "cache" in p for p in info.value.problems)


def test_every_preset_trains_the_bundled_default_model(workspace):
    """Presets run offline out of the box: they name the bundled default model (or leave the model to the
    default), never a Hub id. BitFit included: the default model has no biases, so BitFit adds zero ones
    (tests/test_methods.py), and its preset passes every pre-run check on it."""
    from engine.core.config import DEFAULT_MODEL
    from engine.training.preflight import load_checked

    for preset in sorted(PRESETS.glob("*.yaml")):
        assert RunConfig.load(preset).model == DEFAULT_MODEL, preset.name
    assert load_checked(PRESETS / "bitfit.yaml").method.name == "bitfit"
