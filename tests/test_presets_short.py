"""Every preset, 3 steps, on the tiny model, through the CLI's own entry point: it trains (exit 0), or it is
refused before a run folder exists (exit 2, a message naming the setting, no traceback). Settings that
can only fail against the run (AdaLoRA's schedule vs the number of steps, virtual tokens vs positions, ...)
are checked before loading (Method.check via engine/training/preflight.py), never from inside training.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
# presets that cannot run as they are with 3 steps, and what the refusal must name
REFUSED = {
    "adalora": "method.tinit",  # tinit 6 + tfinal 12 need more than 3 steps
    "continual_b": "REPLACE-WITH-RUN-A",  # names the earlier run to fill in
}


def cli(args: list[str], capsys) -> tuple[int, str]:
    from engine.__main__ import main

    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_or_is_refused_up_front(preset, tiny_model, workspace, capsys):
    from engine.core import runs

    code, err = cli(["train", f"presets/{preset}.yaml", "--set", f"model={tiny_model}",
                     "--set", "train.max_steps=3"], capsys)
    if preset in REFUSED:
        assert code == 2, err
        assert REFUSED[preset] in err and "Traceback" not in err, err
        assert not list((workspace / "runs").glob("*/config.yaml")), "a refused run must not leave a run folder"
        return
    assert code == 0, err
    run_dir = next((workspace / "runs").glob("*/status.json")).parent
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["step"] == 3, status
    assert "Traceback" not in (run_dir / "train.log").read_text()


def test_adalora_with_epochs_is_checked_against_the_data(tiny_model, workspace, capsys):
    """Training for epochs, the number of steps depends on the data: counted from the file before loading
    (an upper bound), and exactly once the data is prepared, still before the model loads."""
    code, err = cli(["train", "presets/adalora.yaml", "--set", f"model={tiny_model}", "--set", "train.max_steps=0",
                     "--set", "train.epochs=1", "--set", "train.batch_size=8"], capsys)
    # identity.jsonl: 40 records -> at most 5 steps of 8; tinit 6 + tfinal 12 cannot fit
    assert code == 2 and "at most 5" in err and "Traceback" not in err, err


def test_adalora_with_epochs_is_checked_again_with_the_exact_step_count_before_loading(tiny_model, workspace,
                                                                                      capsys):
    """40 records bound the run to 10 steps of 4 (passes before the run); 4 go to validation, so it has 9:
    the trainer says so once the data is prepared, before the model loads, without a traceback."""
    from engine.core import runs

    code, err = cli(["train", "presets/adalora.yaml", "--set", f"model={tiny_model}", "--set", "train.max_steps=0",
                     "--set", "train.epochs=1", "--set", "method.tinit=4", "--set", "method.tfinal=5"], capsys)
    assert code == 2 and "this run has at most 9" in err, err
    run_dir = next((workspace / "runs").glob("*/status.json")).parent
    log = (run_dir / "train.log").read_text()
    assert runs.read_status(run_dir)["state"] == "failed" and "Traceback" not in log and "loading" not in log.split(
        "training failed")[0].split("data:")[-1], log


def test_adalora_schedule_is_refused_by_the_real_cli_with_exit_2(tiny_model, workspace):
    env = {**os.environ, "TUNELOOM_HOME": str(workspace), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/adalora.yaml", "--set",
                             f"model={tiny_model}", "--set", "train.max_steps=3"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "tinit + tfinal (6 + 12)" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("preset, override, words", [
    ("prompt_tuning", ["method.num_virtual_tokens=600", "train.max_seq_len=8000"], "above this model's 8192"),
    ("prompt_tuning", ["method.init=text", "method.init_text= "], "method.init_text"),
    ("freeze", ["method.layers=0", "method.extra="], "train nothing"),
    ("freeze", ["method.modules=attn"], "no such module"),
    ("adalora", ["method.target_r=16", "method.init_r=8"], "method.target_r"),
    ("lora", ["method.init=pissa", "method.r=128"], "method.r"),
    ("lora", ["method.target_modules=c_attn"], "q_proj, k_proj"),
    ("continual_b", [], "train.start_from"),
])
def test_settings_that_cannot_work_on_the_model_are_config_errors(preset, override, words, tiny_model, workspace):
    from engine.core.config import ConfigError
    from engine.training.preflight import load_checked

    with pytest.raises(ConfigError) as caught:
        load_checked(ROOT / "presets" / f"{preset}.yaml", [f"model={tiny_model}", *override])
    assert any(words in p for p in caught.value.problems), caught.value.problems


def test_the_models_module_names_are_reported_with_the_configs_own_problems(tiny_model, workspace, tmp_path):
    """The schema cannot know a model's module names; the pre-run checks read them from the model's structure
    and report a wrong one together with the config's own problems, before anything is loaded."""
    import yaml

    from engine.core.config import ConfigError
    from engine.training.preflight import load_checked

    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"model": tiny_model, "method": {"name": "lora", "r": 0,
                                                                      "target_modules": "q_proj,nonsense"},
                                      "train": {"optimizer": "adam9"}}))
    with pytest.raises(ConfigError) as caught:
        load_checked(config)
    text = str(caught.value)
    assert "method.r: 0 is below the minimum 1" in text and "train.optimizer" in text
    assert "nonsense: no such linear layer" in text and "q_proj, k_proj, v_proj, o_proj" in text


def test_continual_b_takes_run_a_as_its_own_comment_writes_it(tiny_model, workspace, capsys, monkeypatch):
    """presets/continual_b.yaml says to run it with `--set train.start_from=runs/<A> --set data.replay=runs/<A>`:
    `runs/<id>` is a run of the workspace, whatever folder the command runs in (here the repository, which has
    no runs/ folder of its own)."""
    import re

    from engine.core import runs

    monkeypatch.chdir(ROOT)
    code, err = cli(["train", "presets/continual_a.yaml", "--set", f"model={tiny_model}", "--set", "train.max_steps=2",
                     "--set", "train.ewc_samples=4"], capsys)
    assert code == 0, err
    run_a = next((workspace / "runs").glob("*continual-a/status.json")).parent
    instruction = re.search(r"python -m engine train presets/continual_b\.yaml (.*)",
                            (ROOT / "presets" / "continual_b.yaml").read_text()).group(1)
    given = instruction.replace("<A>", run_a.name).split()
    assert given == ["--set", f"train.start_from=runs/{run_a.name}", "--set", f"data.replay=runs/{run_a.name}"]
    assert not (ROOT / "runs").exists()
    code, err = cli(["train", "presets/continual_b.yaml", *given, "--set", f"model={tiny_model}",
                     "--set", "train.max_steps=2", "--set", "train.ewc_samples=4"], capsys)
    assert code == 0, err
    run_b = next((workspace / "runs").glob("*continual-b/status.json")).parent
    assert runs.read_status(run_b)["state"] == "done"
    assert runs.read_json(run_b / runs.START_FILE)["start_from"] == str(run_a)
